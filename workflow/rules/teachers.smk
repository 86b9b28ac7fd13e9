# Teacher comparison: how far the potentials that label the surrogate data ("teachers") are from
# real DFT (MatPES r2SCAN elements, WBM corrected PBE), and from each other on the test frames:
# the noise floor any ranking of transfer methods on surrogate labels must clear.

TEACHERS = config["teachers"]
TEACHER_DIR = f"{OUT}/teachers"
TEACHER_FIGURE = "teacher_comparison"


# The teacher stage alone: `snakemake --profile profiles/local teachers`.
rule teachers:
    input:
        teacher_targets(),


rule teacher_accuracy:
    input:
        matpes="resources/reference/MatPES-r2SCAN-Element-Refs.json.gz",
        wbm="resources/reference/wbm-random-pbe52-equilibrium-2025.1.json.gz",
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        matpes=f"{TEACHER_DIR}/r2scan_vs_matpes.csv",
        wbm=f"{TEACHER_DIR}/gga_vs_wbm.csv",
        pair_frames=f"{TEACHER_DIR}/teacher_pair_frames.csv",
        pair_elements=f"{TEACHER_DIR}/teacher_pair_elements.csv",
        summary=f"{TEACHER_DIR}/teacher_accuracy.json",
    log:
        f"{LOGS}/teacher_accuracy.log",
    conda:
        "../../envs/chgnet.yaml"
    # Single points of small structures: one torch thread is fastest (as in the build).
    threads: 1
    resources:
        mem_mb=TEACHERS["mem_mb"],
        runtime=60,
    params:
        teachers=TEACHERS,
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
    script:
        "../scripts/teacher_accuracy.py"


rule teacher_figure:
    input:
        notebook=f"notebooks/{TEACHER_FIGURE}.ipynb",
        summary=f"{TEACHER_DIR}/teacher_accuracy.json",
        matpes=f"{TEACHER_DIR}/r2scan_vs_matpes.csv",
        pair_elements=f"{TEACHER_DIR}/teacher_pair_elements.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/{TEACHER_FIGURE}.ipynb",
        figures=report_figures(
            TEACHER_FIGURE,
            caption="../report/teacher_figure.rst",
            subcategory="Teachers (not in the paper)",
        ),
    log:
        f"{LOGS}/{TEACHER_FIGURE}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        teacher_dir=lambda wildcards, input: Path(input.summary).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir", "teacher_dir")


# The method ranking under each teacher (issue 13): this run's Table 1 beside those of runs on
# other r2SCAN teachers (teachers.compare_runs), for example the circular case of
# config/overlays/chgnet_r2scan_teacher.yaml, which must have run first.
rule teacher_ranking:
    input:
        tables=[f"{OUT}/evaluation/table1.csv"]
        + [f"{run}/evaluation/table1.csv" for run in TEACHERS["compare_runs"]],
        provenance=[f"{DATA}/provenance.json"]
        + [f"{run}/data/provenance.json" for run in TEACHERS["compare_runs"]],
    output:
        markdown=f"{TEACHER_DIR}/ranking/method_ranking.md",
        csv=f"{TEACHER_DIR}/ranking/method_ranking.csv",
        json=f"{TEACHER_DIR}/ranking/method_ranking.json",
    log:
        f"{LOGS}/teacher_ranking.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        runs=[OUT] + list(TEACHERS["compare_runs"]),
        tolerance=config["claims"]["point_tolerance"],
        out_dir=lambda wildcards, output: Path(output.markdown).parent,
    script:
        "../scripts/teacher_ranking.py"
