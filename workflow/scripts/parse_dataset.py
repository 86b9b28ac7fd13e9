"""Parse the configured data source into the canonical format, applying the paper's filters."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.filters import FilterConfig
from mlip_transfer.data.parse import parse_dataset

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "parse_dataset"):
    source = smk.params.source
    if source == "default":
        settings = {"path": smk.params.default_folder, "max_materials": smk.params.default.get("max_materials")}
    elif source == "mp":
        settings = dict(smk.params.mp)
    else:
        settings = dict(smk.params.extxyz)
    # parse_dataset logs its own summary (records read, kept, dropped per reason).
    parse_dataset(
        source=source,
        settings=settings,
        filters=FilterConfig.from_dict(smk.params.filters),
        out_dir=Path(smk.output.frames).parent,
    )
