"""Compare refit and shipped AtomRef shifts (r2SCAN − GGA) with real MatPES DFT elemental shifts."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.energy_scale.jobs import matpes_shift

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "matpes_shift"):
    matpes_shift(
        atomrefs=smk.input.atomrefs,
        pbe=smk.input.pbe,
        r2scan=smk.input.r2scan,
        out_table=smk.output.table,
        out_stats=smk.output.stats,
    )
