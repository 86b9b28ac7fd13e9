"""One point of the data-budget learning curves: a small fine-tune with the full-size recipe."""

from mlip_transfer.budget.jobs import data_budget_point
from mlip_transfer.core.logs import rule_log

smk = snakemake  # noqa: F821
method, fraction, seed = smk.wildcards.method, float(smk.wildcards.fraction), int(smk.wildcards.seed)
with rule_log(smk.log[0], f"data_budget {method} fraction={fraction} seed={seed}"):
    data_budget_point(
        frames=smk.input.frames, split=smk.input.split, method=method, fraction=fraction,
        seed=seed, out_dir=smk.params.out_dir, result=smk.output.result,
        training=smk.params.training, data_budget=smk.params.data_budget, threads=smk.threads,
        summary=smk.input.get("summary"),
    )
