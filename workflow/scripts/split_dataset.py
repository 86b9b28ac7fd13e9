"""Split the parsed dataset 8:1:1 by material id and write its size statistics."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.jobs import split_dataset

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "split_dataset"):
    split_dataset(
        materials=smk.input.materials,
        frames=smk.input.frames,
        provenance=smk.input.provenance,
        split=smk.output.split,
        statistics=smk.output.statistics,
        settings=smk.params.split,
    )
