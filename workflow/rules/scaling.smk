# Scaling law (paper Fig. 6): validation error against training-set size, one job per
# method x size x seed, so a cluster runs them side by side and a rerun redoes only what changed.

SCALING = config["scaling"]
SCALING_DIR = f"{OUT}/scaling"
SCALING_FIGURE = "fig6_scaling_law"
ZERO_POINT_METHODS = [m for m in SCALING["methods"] if m.startswith("4")]


rule scaling_point:
    input:
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
    output:
        result=f"{SCALING_DIR}/{{method}}/n{{size}}_seed{{seed}}/result.json",
        history=f"{SCALING_DIR}/{{method}}/n{{size}}_seed{{seed}}/history.csv",
    log:
        f"{LOGS}/scaling/{{method}}_n{{size}}_seed{{seed}}.log",
    wildcard_constraints:
        method="|".join(SCALING["methods"]),
        size=r"\d+",
        seed=r"\d+",
    conda:
        "../../envs/chgnet.yaml"
    # One torch thread per job: on 2 cores two small jobs side by side beat one with 2 threads.
    threads: 1
    resources:
        mem_mb=SCALING["mem_mb"],
        gpu=TRAINING["gpus_per_job"],
        runtime=720,
    params:
        training=TRAINING,
        scaling=SCALING,
        out_dir=lambda wildcards, output: Path(output.result).parent,
    script:
        "../scripts/scaling_point.py"


rule scaling_fit:
    input:
        results=scaling_jobs(),
        provenance=f"{DATA}/provenance.json",
    output:
        table=f"{SCALING_DIR}/scaling_results.csv",
        fits=f"{SCALING_DIR}/scaling_fits.json",
    log:
        f"{LOGS}/scaling_fit.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        scaling=SCALING,
    script:
        "../scripts/scaling_fit.py"


rule scaling_figure:
    input:
        notebook=f"notebooks/{SCALING_FIGURE}.ipynb",
        table=f"{SCALING_DIR}/scaling_results.csv",
        fits=f"{SCALING_DIR}/scaling_fits.json",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/{SCALING_FIGURE}.ipynb",
        figures=report_figures(
            SCALING_FIGURE,
            caption="../report/scaling_figure.rst",
            subcategory="Benchmarks (Figs. 5, 6)",
        ),
    log:
        f"{LOGS}/{SCALING_FIGURE}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        scaling_dir=lambda wildcards, input: Path(input.fits).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir", "scaling_dir")
