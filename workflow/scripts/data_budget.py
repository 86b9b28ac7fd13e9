"""Collect the data-budget points, extrapolate to the full size beside the measured errors."""

from mlip_transfer.budget.jobs import data_budget_report
from mlip_transfer.core.logs import rule_log

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "data_budget"):
    data_budget_report(
        results=smk.input.results, histories=smk.input.histories,
        provenance=smk.input.provenance, out_dir=smk.params.out_dir,
        training=smk.params.training, data_budget=smk.params.data_budget,
    )
