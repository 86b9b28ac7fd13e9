# The retention report (issue 18): after every fine-tune, what it forgot on the source
# functional: error against the source model's labels on the test structures, the repulsive
# wall of homonuclear dimers, short NVT runs. One reference per run, one job per model (the
# trained methods and the source model); Table 1 gains the columns (rule table1).

# RETENTION, RETENTION_DIR and RETENTION_MODELS are set in transfer.smk (rule transfer needs them).


rule retention_reference:
    input:
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        labelled=f"{RETENTION_DIR}/source_labelled.jsonl.gz",
        source_frames=f"{RETENTION_DIR}/source_frames.jsonl.gz",
        md_starts=f"{RETENTION_DIR}/md_starts.jsonl.gz",
        dimers=f"{RETENTION_DIR}/source_dimers.csv",
        summary=f"{RETENTION_DIR}/reference.json",
    log:
        f"{LOGS}/retention_reference.log",
    conda:
        "../../envs/chgnet.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        evaluation=EVALUATION,
        training=TRAINING,
        out_dir=lambda wildcards, output: Path(output.summary).parent,
    script:
        "../scripts/retention_reference.py"


rule retention_model:
    input:
        unpack(retention_model_input),
        reference=f"{RETENTION_DIR}/reference.json",
        labelled=f"{RETENTION_DIR}/source_labelled.jsonl.gz",
    output:
        report=f"{EVAL_DIR}/{{model}}/retention.json",
        dimers=f"{EVAL_DIR}/{{model}}/dimers.csv",
        md=f"{EVAL_DIR}/{{model}}/md.csv",
    log:
        f"{LOGS}/retention_{{model}}.log",
    wildcard_constraints:
        model="|".join(RETENTION_MODELS) if RETENTION_MODELS else "^$",
    conda:
        "../../envs/chgnet.yaml"
    # One torch thread: small graphs and MD steps scale poorly across threads, and two jobs
    # side by side use both cores.
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        evaluation=EVALUATION,
        training=TRAINING,
        model=lambda wildcards: REFERENCE_MODELS.get(
            wildcards.model, TRAINING["source_model"]
        ),
        reference_dir=lambda wildcards, input: Path(input.reference).parent,
    script:
        "../scripts/retention_model.py"


rule retention_figure:
    input:
        notebook="notebooks/retention.ipynb",
        reports=expand(f"{EVAL_DIR}/{{model}}/retention.json", model=RETENTION_MODELS),
        dimers=expand(f"{EVAL_DIR}/{{model}}/dimers.csv", model=RETENTION_MODELS),
        md=expand(f"{EVAL_DIR}/{{model}}/md.csv", model=RETENTION_MODELS),
        # Its flags: which models training barely moved.
        table=f"{EVAL_DIR}/table1.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/retention.ipynb",
        figures=report_figures(
            "retention",
            caption="../report/retention_figure.rst",
            subcategory="Transfer methods (Table 1, Fig. 3)",
        ),
    log:
        f"{LOGS}/retention.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        evaluation_dir=lambda wildcards, input: Path(input.reports[0]).parent.parent,
        models=",".join(RETENTION_MODELS),
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir", "evaluation_dir", "models")
