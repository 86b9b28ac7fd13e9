"""Merge one element's sampled sets into its canonical dataset with provenance."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import assemble_dataset

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], f"sw_dataset {smk.wildcards.element}"):
    assemble_dataset(
        parts=list(smk.input.parts),
        folder=Path(smk.output.frames).parent,
        element=smk.wildcards.element,
        sampling=smk.params.sampling,
    )
