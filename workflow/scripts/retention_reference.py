"""The run's retention reference: test frames relabelled by the source model, its dimer curves."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.transfer.retention_jobs import retention_reference

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "retention reference"):
    retention_reference(
        frames=smk.input.frames, split=smk.input.split, provenance=smk.input.provenance,
        out_dir=smk.params.out_dir, evaluation=smk.params.evaluation,
        training=smk.params.training, threads=smk.threads,
    )
