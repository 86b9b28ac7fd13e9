"""Each teacher against real DFT (MatPES r2SCAN elements, WBM corrected PBE) and the r2SCAN
teachers against each other on the test frames."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.teachers.jobs import teacher_accuracy

smk = snakemake  # noqa: F821
teachers = smk.params.teachers
with rule_log(smk.log[0], "teacher_accuracy"):
    teacher_accuracy(
        matpes_r2scan=smk.input.matpes,
        wbm=smk.input.wbm,
        frames=smk.input.frames,
        split=smk.input.split,
        data_dir=smk.params.data_dir,
        r2scan_teachers=teachers["r2scan"],
        gga_teacher=teachers["gga"],
        max_wbm=teachers["max_wbm"],
        max_frames=teachers["max_frames"],
        out_matpes=smk.output.matpes,
        out_wbm=smk.output.wbm,
        out_pair_frames=smk.output.pair_frames,
        out_pair_elements=smk.output.pair_elements,
        out_summary=smk.output.summary,
    )
