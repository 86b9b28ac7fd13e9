"""Which loss, terms, batch size, statistic and AtomRef give the paper's ≥ 10x gradient ratio."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.transfer.jobs import gradient_ablation

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "gradient_ablation"):
    gradient_ablation(
        frames=smk.input.frames, split=smk.input.split, summaries=smk.input.summaries,
        out_table=smk.output.table, out_summary=smk.output.summary,
        training=smk.params.training, ablation=smk.params.ablation, threads=smk.threads,
    )
