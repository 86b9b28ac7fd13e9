"""Collect every model's metrics into Table 1 (CSV and markdown beside the paper's numbers)."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.transfer.jobs import table1

smk = snakemake  # noqa: F821
step0 = None
if smk.params.step0_source:
    step0 = {
        "source": smk.params.step0_source,
        "predictions": smk.input.source_predictions,
        "summaries": smk.input.summaries,
        "atomrefs": smk.input.atomrefs,
    }
with rule_log(smk.log[0], "table1"):
    table1(
        metrics=smk.input.metrics,
        provenance=smk.input.provenance,
        training=smk.params.training,
        out_csv=smk.output.csv,
        out_markdown=smk.output.markdown,
        histories=smk.input.histories,
        step0=step0,
        retention=getattr(smk.input, "retention", []),
    )
