"""Refit each functional's AtomRef (Eq. 2) and tabulate it beside CHGNet's shipped fits."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.energy_scale.jobs import fit_atomrefs

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "fit_atomrefs"):
    fit_atomrefs(
        frames=smk.input.frames,
        materials=smk.input.materials,
        split=smk.input.split,
        fit_split=smk.params.fit_split,
        table=smk.output.table,
        summary=smk.output.summary,
    )
