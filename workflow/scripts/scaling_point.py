"""One scaling-law job: train a method on a seeded subset of the training split, record its
validation errors (size 0: the untrained starting model, the paper's zero point)."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.scaling.jobs import scaling_point

smk = snakemake  # noqa: F821
method, size, seed = smk.wildcards.method, int(smk.wildcards.size), int(smk.wildcards.seed)
with rule_log(smk.log[0], f"scaling {method} n={size} seed={seed}"):
    scaling_point(
        frames=smk.input.frames, split=smk.input.split, method=method, size=size, seed=seed,
        out_dir=smk.params.out_dir, result=smk.output.result, history=smk.output.history,
        training=smk.params.training, scaling=smk.params.scaling, threads=smk.threads,
    )
