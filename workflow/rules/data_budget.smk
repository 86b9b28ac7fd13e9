# Data-budget estimate (issue 18): small fine-tunes on nested subsamples of the training split,
# one job per method x fraction x seed, each with the full-size training's recipe; a collect
# rule extrapolates them to the full size beside the measured full-size errors.

DATA_BUDGET = config["data_budget"]
BUDGET_DIR = f"{OUT}/data_budget"
BUDGET_FIGURE = "data_budget"


rule budget:
    input:
        data_budget_targets(),


rule data_budget_point:
    input:
        unpack(data_budget_atomref),
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
    output:
        result=f"{BUDGET_DIR}/{{method}}/f{{fraction}}_seed{{seed}}/result.json",
    log:
        f"{LOGS}/data_budget/{{method}}_f{{fraction}}_seed{{seed}}.log",
    wildcard_constraints:
        method="|".join(DATA_BUDGET["methods"]),
        fraction=r"0\.\d+",
        seed=r"\d+",
    conda:
        "../../envs/chgnet.yaml"
    # One torch thread per job: on 2 cores two small jobs side by side beat one with 2 threads.
    threads: 1
    resources:
        mem_mb=DATA_BUDGET["mem_mb"],
        gpu=TRAINING["gpus_per_job"],
        runtime=720,
    params:
        training=TRAINING,
        data_budget=DATA_BUDGET,
        out_dir=lambda wildcards, output: Path(output.result).parent,
    script:
        "../scripts/data_budget_point.py"


rule data_budget:
    input:
        results=data_budget_jobs(),
        histories=data_budget_histories(),
        provenance=f"{DATA}/provenance.json",
    output:
        summary=f"{BUDGET_DIR}/data_budget.json",
        markdown=f"{BUDGET_DIR}/data_budget.md",
        points=f"{BUDGET_DIR}/data_budget_points.csv",
    log:
        f"{LOGS}/data_budget.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        training=TRAINING,
        data_budget=DATA_BUDGET,
        out_dir=lambda wildcards, output: Path(output.summary).parent,
    script:
        "../scripts/data_budget.py"


rule data_budget_figure:
    input:
        notebook=f"notebooks/{BUDGET_FIGURE}.ipynb",
        summary=f"{BUDGET_DIR}/data_budget.json",
        points=f"{BUDGET_DIR}/data_budget_points.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/{BUDGET_FIGURE}.ipynb",
        figures=report_figures(
            BUDGET_FIGURE,
            caption="../report/data_budget_figure.rst",
            subcategory="Benchmarks (Figs. 5, 6)",
        ),
    log:
        f"{LOGS}/{BUDGET_FIGURE}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        budget_dir=lambda wildcards, input: Path(input.summary).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir", "budget_dir")
