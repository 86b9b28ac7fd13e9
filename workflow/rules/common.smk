# Configuration checks and path helpers shared by every stage.
from pathlib import Path

from snakemake.utils import min_version, validate

from mlip_transfer.core.config import check_config

min_version("9.0")


validate(config, "../schemas/config.schema.yaml")
check_config(config)

OUT = config["output_dir"]
DATA = f"{OUT}/data"
FIGURES = f"{OUT}/figures"
NOTEBOOKS = f"{OUT}/notebooks"
LOGS = f"{OUT}/logs"
FORMATS = config["figures"]["formats"]
SOURCE = config["data"]["source"]
DEFAULT = config["data"]["default"]
MP = config["data"]["mp"]
EXTXYZ = config["data"]["extxyz"]


def figure_files(stem):
    """The files of figure `stem`: one per configured format, then `stem`.json, the plotted
    data read back from the figure (mlip_transfer.plots.figure_data)."""
    return [f"{FIGURES}/{stem}.{fmt}" for fmt in FORMATS] + [f"{FIGURES}/{stem}.json"]


def notebook_targets(figures, notebook=None):
    """Each executed notebook followed by the files of its figures: one notebook per figure of
    `figures` (a stage's list of figure stems), or one `notebook` drawing them all."""
    drawn_by = (
        {notebook: figures} if notebook else {figure: [figure] for figure in figures}
    )
    return [
        path
        for name, stems in drawn_by.items()
        for path in [
            f"{NOTEBOOKS}/{name}.ipynb",
            *[file for stem in stems for file in figure_files(stem)],
        ]
    ]


def papermill_command(*folders, extra=""):
    """The shell command of a figure rule: papermill runs {input.notebook} into
    {output.notebook}, passing the rule's params named in `folders`, then figure_dir, formats
    and dpi, as the notebook's parameters (and `extra`, already spelled as papermill options).
    """
    names = [*folders, "figure_dir", "formats", "dpi"]
    options = [f"-p {name} {{params.{name}}}" for name in names] + (
        [extra] if extra else []
    )
    return " ".join(
        [
            "papermill {input.notebook} {output.notebook} --cwd . --no-progress-bar",
            "--start-timeout 300",
            *options,
            "> {log} 2>&1",
        ]
    )


def all_targets():
    return [
        f"{DATA}/split.csv",
        f"{DATA}/dataset_statistics.json",
        *notebook_targets(DATASET_FIGURES, notebook="dataset_summary"),
        f"{OUT}/energy_scale/matpes_shift.json",
        f"{OUT}/energy_scale/diagnose.md",
        *notebook_targets(ENERGY_SCALE_FIGURES),
        *transfer_targets(),
        *benchmark_targets(),
        *elements_targets(),
        *teacher_targets(),
        *claims_targets(),
    ]


def claims_targets():
    """The claims table (`snakemake claims`): each claim, what this run shows, a verdict."""
    return [
        f"{OUT}/claims/{name}"
        for name in ("claims.csv", "claims.json", "claims.md", "claims.html")
    ]


def benchmark_targets():
    """Fig. 5 (density against experiment) and Fig. 6 (scaling law), with their tables."""
    return [
        f"{OUT}/scaling/scaling_fits.json",
        f"{OUT}/density/density_summary.csv",
        *notebook_targets([DENSITY_FIGURE, SCALING_FIGURE]),
        *data_budget_targets(),
    ]


def data_budget_targets():
    """The data-budget estimate (`snakemake budget`): its report and figure."""
    return [
        f"{OUT}/data_budget/data_budget.md",
        *notebook_targets([BUDGET_FIGURE]),
    ]


def elements_targets():
    """The Si -> Ge stage (`snakemake elements`): tables, machine-readable results, figures."""
    results = f"{OUT}/elements/results"
    return [
        f"{results}/data_efficiency.md",
        f"{results}/stability_structure.json",
        *notebook_targets(ELEMENT_FIGURES),
    ]


def teacher_targets():
    """The teacher comparison (`snakemake teachers`): its tables and figure."""
    return [
        f"{OUT}/teachers/teacher_accuracy.json",
        *notebook_targets([TEACHER_FIGURE]),
        *(
            [f"{OUT}/teachers/ranking/method_ranking.md"]
            if config["teachers"]["compare_runs"]
            else []
        ),
    ]


def transfer_targets():
    """Table 1 and Fig. 3: training and evaluating the transfer methods (`snakemake transfer`)."""
    return [
        f"{OUT}/evaluation/table1.md",
        *notebook_targets(TRANSFER_FIGURES),
        *(notebook_targets(["retention"]) if RETENTION_MODELS else []),
        f"{OUT}/gradient_ablation/ablation.json",
        *notebook_targets(["fig3a_ablation"]),
    ]


def default_dataset_folder():
    return (
        f"{OUT}/default_dataset_rebuilt" if DEFAULT["rebuild"] else DEFAULT["shipped"]
    )


def raw_inputs(wildcards):
    """The files the parse step reads, for the configured data source."""
    if SOURCE == "default":
        folder = default_dataset_folder()
        return [f"{folder}/frames.jsonl.gz", f"{folder}/materials.csv"]
    if SOURCE == "mp":
        files = [MP["r2scan_json"], MP["thermo_json"]]
        return files + ([MP["mptrj_json"]] if MP["mptrj_json"] else [])
    return list(EXTXYZ["paths"]) + (
        [EXTXYZ["materials_csv"]] if EXTXYZ.get("materials_csv") else []
    )


def model_input(wildcards):
    """A trained method's model file (its step-0 model for `<method>_step0`; reference models
    load by name and need no file), and with surrogate labels the teacher's relaxations under
    the models' protocol, the fair reference hull."""
    files = {}
    if SOURCE == "default":
        files["reference_relaxed"] = f"{EVAL_DIR}/reference_hull/teacher_relaxed.csv"
    if wildcards.model in METHODS:
        files["model"] = f"{TRAIN_DIR}/{wildcards.model}/model_final.pt"
    if wildcards.model in OWN_STEP0:
        method = wildcards.model.removesuffix("_step0")
        files["model"] = f"{TRAIN_DIR}/{method}/model_step0.pt"
    return files


def step0_inputs(wildcards):
    """What Table 1's before-training rows read (none when evaluation.step0_rows is off): the
    source model's test predictions, each method's step-0 AtomRef (train_summary.json) and the
    shipped MP-r2SCAN AtomRef of the energy-scale stage (the zero-shot row)."""
    if not STEP0:
        return {}
    return {
        "source_predictions": f"{EVAL_DIR}/{SOURCE_LABEL}/predictions.csv",
        "summaries": expand(
            f"{TRAIN_DIR}/{{method}}/train_summary.json", method=METHODS
        ),
        "atomrefs": f"{OUT}/energy_scale/atomrefs.csv",
    }


def retention_model_input(wildcards):
    """A trained method's model file for its retention report (the source model loads by name)."""
    if wildcards.model in METHODS:
        return {"model": f"{TRAIN_DIR}/{wildcards.model}/model_final.pt"}
    return {}


def retention_inputs(wildcards):
    """Table 1's retention columns: every retention report of the run (none when disabled)."""
    if not RETENTION_MODELS:
        return {}
    return {
        "retention": expand(
            f"{EVAL_DIR}/{{model}}/retention.json", model=RETENTION_MODELS
        )
    }


def scaling_jobs():
    """Result files of every (method, size, seed) job, the zero points included."""
    jobs = [
        (method, size, seed)
        for method in SCALING["methods"]
        for size in SCALING["sizes"]
        for seed in SCALING["seeds"]
    ]
    if SCALING["zero_point"]:
        # The untrained model does not depend on the seed: one job.
        jobs += [(method, 0, SCALING["seeds"][0]) for method in ZERO_POINT_METHODS]
    return [
        f"{SCALING_DIR}/{method}/n{size}_seed{seed}/result.json"
        for method, size, seed in jobs
    ]


def data_budget_jobs():
    """Result files of every (method, fraction, seed) point job."""
    return [
        f"{BUDGET_DIR}/{method}/f{fraction}_seed{seed}/result.json"
        for method in DATA_BUDGET["methods"]
        for fraction in DATA_BUDGET["fractions"]
        for seed in DATA_BUDGET["seeds"]
    ]


def data_budget_atomref(wildcards):
    """The full-size training's train_summary.json, whose AtomRef (fitted on the whole
    training split) a point starts from; none when the run does not train the method or the
    points fit their own (data_budget.atomref_frames: subset)."""
    if wildcards.method in METHODS and DATA_BUDGET["atomref_frames"] == "all":
        return {"summary": f"{TRAIN_DIR}/{wildcards.method}/train_summary.json"}
    return {}


def data_budget_histories():
    """The full-size trainings' histories of the methods this run trains (the measured
    errors the estimates are set beside)."""
    return [
        f"{TRAIN_DIR}/{method}/history.csv"
        for method in DATA_BUDGET["methods"]
        if method in METHODS
    ]


def density_reference():
    """The file the reference structures come from, for the configured source."""
    if DENSITY["structures"] == "mp_api":
        return DENSITY["mp_structures"]
    return DENSITY["experimental_csv"]


# Si -> Ge stage (constants in elements.smk).
def set_sizes(wildcards):
    """Frames to sample per temperature for one element and set."""
    if wildcards.set == "test":
        temperatures = [EL_TRAIN_T] if wildcards.element == "Si" else EL_TEST_T
        return {float(t): ELEMENTS["test_size"] for t in temperatures}
    if wildcards.element == "Ge":
        return {float(EL_TRAIN_T): ELEMENTS["pool_size"]}
    temperatures = ELEMENTS["pretrain_temperatures"]
    share, extra = divmod(ELEMENTS["pretrain_pool_size"], len(temperatures))
    return {float(t): share + (k < extra) for k, t in enumerate(temperatures)}


def source_model(wildcards):
    if wildcards.method == "transfer":
        return {"source": f"{EL_MODELS}/Si/pretrained/model.pt"}
    return {}


def evaluated_temperatures(wildcards):
    """Every test temperature for the temperature-test sizes, else the training one."""
    if int(wildcards.size) in ELEMENTS["temperature"]["sizes"]:
        return EL_TEST_T
    return [EL_TRAIN_T]


def stability_runs():
    """Run ids per seed's model: each method's runs dealt round-robin over the seeds (one MD
    job per method and seed, so paper-scale runs spread over the cluster)."""
    runs = list(range(EL_STABILITY["runs"]))
    return {seed: runs[k :: len(EL_SEEDS)] for k, seed in enumerate(EL_SEEDS)}
