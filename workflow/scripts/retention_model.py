"""One model's retention report: source-functional error, dimer walls, NVT stability."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.transfer.retention_jobs import retention_model

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], f"retention {smk.wildcards.model}"):
    retention_model(
        label=smk.wildcards.model,
        model=smk.input.model if hasattr(smk.input, "model") else smk.params.model,
        reference_dir=smk.params.reference_dir, out_json=smk.output.report,
        out_dimers=smk.output.dimers, out_md=smk.output.md, evaluation=smk.params.evaluation,
        training=smk.params.training, threads=smk.threads,
    )
