"""Compare refit and shipped AtomRef shifts (r2SCAN − GGA) with real MatPES DFT elemental shifts."""

import json

from mlip_transfer.core.logs import rule_log
from mlip_transfer.energy_scale.elemental_shift import (
    load_matpes_elemental_energies,
    shift_agreement,
    shift_table,
)
from mlip_transfer.energy_scale.refits import read_atomref_table

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "matpes_shift") as log:
    atomrefs = read_atomref_table(smk.input.atomrefs)
    shifts = {}
    for kind in ("refit", "shipped"):
        gga, r2scan = atomrefs[("gga", kind)], atomrefs[("r2scan", kind)]
        shifts[kind] = {el: r2scan[el] - gga[el] for el in set(gga) & set(r2scan)}
    table = shift_table(
        load_matpes_elemental_energies(smk.input.pbe),
        load_matpes_elemental_energies(smk.input.r2scan),
        shifts,
    )
    table.to_csv(smk.output.table, index=False)
    stats = {kind: shift_agreement(table, f"{kind}_shift") for kind in shifts}
    with open(smk.output.stats, "w") as handle:
        json.dump(stats, handle, indent=2)
    for kind, values in stats.items():
        log.info("%s AtomRef shift vs MatPES DFT shift: r=%.4f, MAD %.3f eV over %d elements", kind, values["pearson"], values["mad"], values["n"])
