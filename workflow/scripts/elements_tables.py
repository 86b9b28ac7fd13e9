"""Collect the Ge models' test errors: the data-efficiency and temperature tables."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import tables

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "elements_tables"):
    tables(
        metrics=smk.input.metrics,
        pretrained=smk.input.pretrained,
        data_dir=Path(smk.input.provenance).parent,
        settings=smk.params.elements,
        out_metrics=smk.output.metrics,
        out_efficiency=smk.output.efficiency,
        out_temperature=smk.output.temperature,
        out_markdown=smk.output.markdown,
        curves=smk.input.curves,
        out_curves=smk.output.curves,
    )
