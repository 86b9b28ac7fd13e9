# The four transfer methods (paper Table 1, Fig. 3): train each method from the source CHGNet on
# the target training split, evaluate every model on the test split (errors, relaxations, hulls),
# and collect Table 1.

TRAINING = config["training"]
EVALUATION = config["evaluation"]
TRAIN_DIR = f"{OUT}/training"
EVAL_DIR = f"{OUT}/evaluation"
METHODS = TRAINING["methods"]
REFERENCE_MODELS = {k: v for k, v in EVALUATION["reference_models"].items() if v}
# Before-training rows (Table 1, density): every method's step 0 is the source model with the
# method's AtomRef, but Method 1's (a random GNN), evaluated from its own model_step0.pt.
STEP0 = EVALUATION["step0_rows"]
SOURCE_LABEL = next(
    (k for k, v in REFERENCE_MODELS.items() if v == TRAINING["source_model"]),
    "source_model",
)
if STEP0:
    REFERENCE_MODELS.setdefault(SOURCE_LABEL, TRAINING["source_model"])
OWN_STEP0 = [f"{m}_step0" for m in METHODS if STEP0 and m == "1_scratch"]
MODEL_LABELS = METHODS + OWN_STEP0 + list(REFERENCE_MODELS)
TRANSFER_FIGURES = ["table1", "fig3a_gradients", "fig3bc_energy_mae"]
# The retention report (retention.smk): the trained methods and the source model.
RETENTION = EVALUATION["retention"]
RETENTION_DIR = f"{EVAL_DIR}/retention_reference"
RETENTION_MODELS = (
    METHODS
    + [SOURCE_LABEL]
    + [
        m
        for m in REFERENCE_MODELS
        if m != SOURCE_LABEL and RETENTION["reference_models"]
    ]
    if RETENTION["enabled"]
    else []
)


# The transfer stage alone: `snakemake --profile profiles/local transfer`. Its notebooks' HTML
# pages come with `all` (rule notebook_html converts every notebook of the run at once).
rule transfer:
    input:
        transfer_targets(),


rule train_method:
    input:
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
    output:
        model=f"{TRAIN_DIR}/{{method}}/model_final.pt",
        step0=f"{TRAIN_DIR}/{{method}}/model_step0.pt",
        history=f"{TRAIN_DIR}/{{method}}/history.csv",
        gradients=f"{TRAIN_DIR}/{{method}}/gradients.csv",
        summary=f"{TRAIN_DIR}/{{method}}/train_summary.json",
    log:
        f"{LOGS}/train_{{method}}.log",
    wildcard_constraints:
        method="|".join(METHODS),
    conda:
        "../../envs/chgnet.yaml"
    # One torch thread: on 2 cores two trainings side by side finish sooner than one after the
    # other with two threads each (small graphs scale poorly across threads). On a cluster,
    # `--set-threads train_method=8` gives a job more.
    threads: 1
    resources:
        mem_mb=TRAINING["mem_mb"],
        gpu=TRAINING["gpus_per_job"],
        runtime=1440,
    params:
        training=TRAINING,
        out_dir=lambda wildcards, output: Path(output.model).parent,
    script:
        "../scripts/train_method.py"


rule evaluate_model:
    input:
        unpack(model_input),
        frames=f"{DATA}/frames.jsonl.gz",
        materials=f"{DATA}/materials.csv",
        split=f"{DATA}/split.csv",
    output:
        metrics=f"{EVAL_DIR}/{{model}}/metrics.json",
        relaxed=f"{EVAL_DIR}/{{model}}/relaxed.csv",
        hull=f"{EVAL_DIR}/{{model}}/hull.csv",
        predictions=f"{EVAL_DIR}/{{model}}/predictions.csv",
    log:
        f"{LOGS}/evaluate_{{model}}.log",
    wildcard_constraints:
        model="|".join(MODEL_LABELS),
    conda:
        "../../envs/chgnet.yaml"
    threads: EVALUATION["processes"]
    resources:
        mem_mb=8000,
        gpu=TRAINING["gpus_per_job"],
        runtime=720,
    params:
        evaluation=EVALUATION,
        functional=TRAINING["functional"],
        device=TRAINING["device"],
        reference=lambda wildcards: REFERENCE_MODELS.get(wildcards.model),
    script:
        "../scripts/evaluate_model.py"


# Surrogate labels: the teacher relaxes the test materials the models relax, under their
# protocol, so the reference hull is not the build's (looser) relaxation.
rule reference_relaxations:
    input:
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
    output:
        relaxed=f"{EVAL_DIR}/reference_hull/teacher_relaxed.csv",
    log:
        f"{LOGS}/reference_relaxations.log",
    conda:
        "../../envs/chgnet.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        teacher=DEFAULT["teacher"],
        evaluation=EVALUATION,
        functional=TRAINING["functional"],
    script:
        "../scripts/reference_relaxations.py"


rule table1:
    input:
        unpack(step0_inputs),
        unpack(retention_inputs),
        metrics=expand(f"{EVAL_DIR}/{{model}}/metrics.json", model=MODEL_LABELS),
        # Rows of models that training did not change are flagged from their histories.
        histories=expand(f"{TRAIN_DIR}/{{method}}/history.csv", method=METHODS),
        provenance=f"{DATA}/provenance.json",
    output:
        csv=f"{EVAL_DIR}/table1.csv",
        markdown=f"{EVAL_DIR}/table1.md",
    log:
        f"{LOGS}/table1.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        training=TRAINING,
        step0_source=SOURCE_LABEL if STEP0 else None,
    script:
        "../scripts/table1.py"


rule transfer_figure:
    input:
        notebook="notebooks/{figure}.ipynb",
        table=f"{EVAL_DIR}/table1.csv",
        histories=expand(f"{TRAIN_DIR}/{{method}}/history.csv", method=METHODS),
        gradients=expand(f"{TRAIN_DIR}/{{method}}/gradients.csv", method=METHODS),
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/{{figure}}.ipynb",
        figures=report_figures(
            "{figure}",
            caption="../report/transfer_figure.rst",
            subcategory="Transfer methods (Table 1, Fig. 3)",
        ),
    log:
        f"{LOGS}/{{figure}}.log",
    wildcard_constraints:
        figure="|".join(TRANSFER_FIGURES),
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        training_dir=lambda wildcards, input: Path(input.histories[0]).parent.parent,
        evaluation_dir=lambda wildcards, input: Path(input.table).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir", "training_dir", "evaluation_dir")
