"""The teacher relaxes the test materials under the models' protocol: the fair reference hull."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.transfer.reference_hull import relax_with_teacher

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "reference_relaxations"):
    relax_with_teacher(
        frames=smk.input.frames, split=smk.input.split, teacher=smk.params.teacher,
        evaluation=smk.params.evaluation, functional=smk.params.functional,
        out=smk.output.relaxed,
    )
