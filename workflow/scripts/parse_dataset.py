"""Parse the configured data source into the canonical format, applying the paper's filters."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.jobs import parse_dataset

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "parse_dataset"):
    # parse_dataset logs its own summary (records read, kept, dropped per reason).
    parse_dataset(
        source=smk.params.source,
        default=smk.params.default,
        mp=smk.params.mp,
        extxyz=smk.params.extxyz,
        filters=smk.params.filters,
        default_folder=smk.params.default_folder,
        out_dir=Path(smk.output.frames).parent,
    )
