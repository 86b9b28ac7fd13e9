# Density benchmark against experiment (paper Fig. 5): strain every lattice vector, relax with
# each model, compare the relaxed density with the experimental one.

DENSITY = config["density"]
DENSITY_DIR = f"{OUT}/density"
DENSITY_FIGURE = "fig5_density"


# Like the data downloads: defined only while the cache is absent, so a user's copy is never
# rerun over (and deleted) by a changed rule.
if DENSITY["structures"] == "mp_api" and not Path(DENSITY["mp_structures"]).exists():

    rule fetch_mp_density_structures:
        input:
            DENSITY["experimental_csv"],
        output:
            protected(DENSITY["mp_structures"]),
        log:
            f"{LOGS}/fetch_mp_density_structures.log",
        conda:
            "../../envs/data.yaml"
        resources:
            runtime=30,
        script:
            "../scripts/fetch_mp_density_structures.py"


rule density_model:
    input:
        unpack(model_input),
        reference=density_reference(),
    output:
        table=f"{DENSITY_DIR}/{{model}}/density.csv",
        relaxed=f"{DENSITY_DIR}/{{model}}/relaxed.csv",
    log:
        f"{LOGS}/density_{{model}}.log",
    wildcard_constraints:
        model="|".join(MODEL_LABELS),
    conda:
        "../../envs/chgnet.yaml"
    threads: DENSITY["processes"]
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        density=DENSITY,
        reference=lambda wildcards: REFERENCE_MODELS.get(wildcards.model),
    script:
        "../scripts/density_model.py"


rule density_summary:
    input:
        tables=expand(f"{DENSITY_DIR}/{{model}}/density.csv", model=MODEL_LABELS),
        provenance=f"{DATA}/provenance.json",
    output:
        table=f"{DENSITY_DIR}/density_all.csv",
        summary=f"{DENSITY_DIR}/density_summary.csv",
    log:
        f"{LOGS}/density_summary.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        structures=DENSITY["structures"],
        # A density ratio at the strained start's (1 + strain)^3 is flagged: nothing relaxed.
        strain=DENSITY["strain"],
        # Each method's before-training model: its own start (Method 1) or the source model.
        step0_models=(
            {
                m: (f"{m}_step0" if f"{m}_step0" in OWN_STEP0 else SOURCE_LABEL)
                for m in METHODS
            }
            if STEP0
            else {}
        ),
    script:
        "../scripts/density_summary.py"


rule density_figure:
    input:
        notebook=f"notebooks/{DENSITY_FIGURE}.ipynb",
        table=f"{DENSITY_DIR}/density_all.csv",
        summary=f"{DENSITY_DIR}/density_summary.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/{DENSITY_FIGURE}.ipynb",
        figures=report_figures(
            DENSITY_FIGURE,
            caption="../report/density_figure.rst",
            subcategory="Benchmarks (Figs. 5, 6)",
        ),
    log:
        f"{LOGS}/{DENSITY_FIGURE}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        density_dir=lambda wildcards, input: Path(input.table).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
        structures=DENSITY["structures"],
    shell:
        papermill_command("data_dir", "density_dir", "structures")
