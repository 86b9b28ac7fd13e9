"""Train one transfer method (1-4, 4r) from the source CHGNet on the target training split."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.transfer.jobs import train_method

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], f"train {smk.wildcards.method}"):
    train_method(
        frames=smk.input.frames, split=smk.input.split, method=smk.wildcards.method,
        out_dir=smk.params.out_dir, training=smk.params.training, threads=smk.threads,
    )
