# Gradient ablation (Fig. 3a's ≥ 10x question): which loss, terms, batch size, statistic and
# AtomRef give the paper's ratio of Method 3's gradients to Method 4's, on the same seeded
# batches; static (at the source GNN) and over a few Adam steps.

ABLATION = config["gradient_ablation"]
ABLATION_DIR = f"{OUT}/gradient_ablation"
ABLATION_FIGURE = "fig3a_ablation"
# The trainings whose fitted AtomRefs the ablation reuses (Eq. 2 is refit when M4 is absent).
ABLATION_METHODS = [
    m for m in METHODS if m in ("4_refit_atomref", "4r_residual_atomref")
]


rule gradient_ablation:
    input:
        frames=f"{DATA}/frames.jsonl.gz",
        split=f"{DATA}/split.csv",
        summaries=expand(
            f"{TRAIN_DIR}/{{method}}/train_summary.json", method=ABLATION_METHODS
        ),
    output:
        table=f"{ABLATION_DIR}/gradients.csv",
        summary=f"{ABLATION_DIR}/ablation.json",
    log:
        f"{LOGS}/gradient_ablation.log",
    conda:
        "../../envs/chgnet.yaml"
    threads: 1
    resources:
        mem_mb=ABLATION["mem_mb"],
        runtime=240,
    params:
        training=TRAINING,
        ablation=ABLATION,
    script:
        "../scripts/gradient_ablation.py"


rule ablation_figure:
    input:
        notebook=f"notebooks/{ABLATION_FIGURE}.ipynb",
        summary=f"{ABLATION_DIR}/ablation.json",
        table=f"{ABLATION_DIR}/gradients.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/{ABLATION_FIGURE}.ipynb",
        figures=report_figures(
            ABLATION_FIGURE,
            caption="../report/transfer_figure.rst",
            subcategory="Transfer methods (Table 1, Fig. 3)",
        ),
    log:
        f"{LOGS}/{ABLATION_FIGURE}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        ablation_dir=lambda wildcards, input: Path(input.summary).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir", "ablation_dir")
