"""Collect every model's densities: one long table and the MAE / ratio summary per model."""

from pathlib import Path

import pandas as pd

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.density.benchmark import density_summary

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "density_summary") as log:
    tables = [pd.read_csv(path) for path in smk.input.tables]
    pd.concat(tables, ignore_index=True).to_csv(smk.output.table, index=False)
    summary = pd.DataFrame([density_summary(table) for table in tables])
    # The reference structures are experimental; the models were trained on this data.
    summary["training_data"] = DataSource.read(Path(smk.input.provenance).parent).name
    summary["structures"] = smk.params.structures
    summary.to_csv(smk.output.summary, index=False)
    log.info("\n%s", summary.to_string())
