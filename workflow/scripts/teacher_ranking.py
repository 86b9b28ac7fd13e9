"""Rank the transfer methods under each r2SCAN teacher; Kendall's tau and the paper's orderings."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.teachers.ranking import rank_teachers

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "teacher_ranking"):
    rank_teachers(smk.params.runs, out_dir=smk.params.out_dir, tolerance=smk.params.tolerance)
