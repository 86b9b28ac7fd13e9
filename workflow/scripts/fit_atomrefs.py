"""Refit each functional's AtomRef (Eq. 2) and tabulate it beside CHGNet's shipped fits."""

import json

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.dataset import iter_frames, read_materials
from mlip_transfer.data.split import read_split
from mlip_transfer.energy_scale.refits import atomref_table, fit_functional_atomrefs, fit_summary

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "fit_atomrefs") as log:
    fits = fit_functional_atomrefs(
        iter_frames(smk.input.frames),
        read_materials(smk.input.materials),
        split=read_split(smk.input.split),
        fit_split=smk.params.fit_split,
    )
    atomref_table({f: fit for f, (fit, _) in fits.items()}).to_csv(smk.output.table, index=False)
    summary = fit_summary(fits)
    with open(smk.output.summary, "w") as handle:
        json.dump(summary, handle, indent=2)
    for functional, info in summary.items():
        log.info(
            "%s: %d elements from %s, rank %d, residual MAE %.3f eV/atom, missing %s",
            functional,
            info["n_elements"] - len(info["missing"]),
            info["fit_on"],
            info["rank"],
            info["residual_mae"],
            sorted(info["missing"]) or "none",
        )
