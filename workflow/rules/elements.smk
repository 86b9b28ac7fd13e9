# Transfer across chemical elements (the sibling study, Si -> Ge with DimeNet++): sample
# Stillinger-Weber reference data, pre-train on Si, train Ge models from scratch and by transfer
# for each training size and seed, then the four experiments (data efficiency, temperature
# transferability, MD stability, structure) and their figures.

ELEMENTS = config["elements"]
EL = f"{OUT}/elements"
EL_DATA = f"{EL}/data"
EL_MODELS = f"{EL}/models"
EL_MD = f"{EL}/md"
EL_RESULTS = f"{EL}/results"
EL_METHODS = ["scratch", "transfer"]
EL_SIZES = ELEMENTS["data_efficiency"]["sizes"]
EL_SEEDS = ELEMENTS["data_efficiency"]["seeds"]
EL_TRAIN_T = ELEMENTS["train_temperature"]
EL_TEST_T = sorted(set(ELEMENTS["test_temperatures"]) | {EL_TRAIN_T})
EL_STABILITY = ELEMENTS["stability"]
ELEMENT_FIGURES = [
    "elements_data_efficiency",
    "elements_temperature",
    "elements_stability",
    "elements_structure",
]


rule elements:
    input:
        elements_targets(),


rule sw_frames:
    output:
        f"{EL_DATA}/parts/{{element}}_{{set}}.jsonl.gz",
    log:
        f"{LOGS}/elements/sw_frames_{{element}}_{{set}}.log",
    wildcard_constraints:
        element="Si|Ge",
        set="pool|test",
    conda:
        "../../envs/elements.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=240,
    params:
        sizes=set_sizes,
        sampling=ELEMENTS["sampling"],
        seed=ELEMENTS["seed"],
    script:
        "../scripts/sw_frames.py"


rule sw_dataset:
    input:
        parts=expand(
            f"{EL_DATA}/parts/{{{{element}}}}_{{set}}.jsonl.gz", set=["pool", "test"]
        ),
    output:
        frames=f"{EL_DATA}/{{element}}/frames.jsonl.gz",
        index=f"{EL_DATA}/{{element}}/frames.csv",
        materials=f"{EL_DATA}/{{element}}/materials.csv",
        provenance=f"{EL_DATA}/{{element}}/provenance.json",
        summary=f"{EL_DATA}/{{element}}/summary.json",
    log:
        f"{LOGS}/elements/sw_dataset_{{element}}.log",
    wildcard_constraints:
        element="Si|Ge",
    conda:
        "../../envs/elements.yaml"
    params:
        sampling=ELEMENTS["sampling"],
    script:
        "../scripts/sw_dataset.py"


rule pretrain_si:
    input:
        frames=f"{EL_DATA}/Si/frames.jsonl.gz",
    output:
        model=f"{EL_MODELS}/Si/pretrained/model.pt",
        history=f"{EL_MODELS}/Si/pretrained/history.csv",
        metrics=f"{EL_MODELS}/Si/pretrained/metrics.csv",
        summary=f"{EL_MODELS}/Si/pretrained/summary.json",
    log:
        f"{LOGS}/elements/pretrain_si.log",
    conda:
        "../../envs/elements.yaml"
    threads: ELEMENTS["threads"]
    resources:
        mem_mb=ELEMENTS["mem_mb"],
        gpu=ELEMENTS["gpus_per_job"],
        runtime=1440,
    params:
        elements=ELEMENTS,
    script:
        "../scripts/pretrain_si.py"


rule train_ge:
    input:
        unpack(source_model),
        frames=f"{EL_DATA}/Ge/frames.jsonl.gz",
    output:
        model=f"{EL_MODELS}/Ge/{{method}}/n{{size}}_s{{seed}}/model.pt",
        history=f"{EL_MODELS}/Ge/{{method}}/n{{size}}_s{{seed}}/history.csv",
        curve=f"{EL_MODELS}/Ge/{{method}}/n{{size}}_s{{seed}}/curve.csv",
        metrics=f"{EL_MODELS}/Ge/{{method}}/n{{size}}_s{{seed}}/metrics.csv",
        summary=f"{EL_MODELS}/Ge/{{method}}/n{{size}}_s{{seed}}/summary.json",
    log:
        f"{LOGS}/elements/train_ge_{{method}}_n{{size}}_s{{seed}}.log",
    wildcard_constraints:
        method="scratch|transfer",
        size="[0-9]+",
        seed="[0-9]+",
    conda:
        "../../envs/elements.yaml"
    threads: ELEMENTS["threads"]
    resources:
        mem_mb=ELEMENTS["mem_mb"],
        gpu=ELEMENTS["gpus_per_job"],
        runtime=1440,
    params:
        elements=ELEMENTS,
        test_temperatures=evaluated_temperatures,
    script:
        "../scripts/train_ge.py"


rule elements_tables:
    input:
        metrics=expand(
            f"{EL_MODELS}/Ge/{{method}}/n{{size}}_s{{seed}}/metrics.csv",
            method=EL_METHODS,
            size=EL_SIZES,
            seed=EL_SEEDS,
        ),
        curves=expand(
            f"{EL_MODELS}/Ge/{{method}}/n{{size}}_s{{seed}}/curve.csv",
            method=EL_METHODS,
            size=EL_SIZES,
            seed=EL_SEEDS,
        ),
        pretrained=f"{EL_MODELS}/Si/pretrained/summary.json",
        provenance=f"{EL_DATA}/Ge/provenance.json",
    output:
        metrics=f"{EL_RESULTS}/test_errors.csv",
        curves=f"{EL_RESULTS}/learning_curves.csv",
        efficiency=f"{EL_RESULTS}/data_efficiency.csv",
        temperature=f"{EL_RESULTS}/temperature.csv",
        markdown=f"{EL_RESULTS}/data_efficiency.md",
    log:
        f"{LOGS}/elements/elements_tables.log",
    conda:
        "../../envs/elements.yaml"
    params:
        elements=ELEMENTS,
    script:
        "../scripts/elements_tables.py"


rule md_stability:
    input:
        model=f"{EL_MODELS}/Ge/{{method}}/n{EL_STABILITY['train_size']}_s{{seed}}/model.pt",
        frames=f"{EL_DATA}/Ge/frames.jsonl.gz",
    output:
        runs=f"{EL_MD}/{{method}}_s{{seed}}.json",
        frames=f"{EL_MD}/{{method}}_s{{seed}}.npz",
    log:
        f"{LOGS}/elements/md_stability_{{method}}_s{{seed}}.log",
    wildcard_constraints:
        method="scratch|transfer",
        seed="[0-9]+",
    conda:
        "../../envs/elements.yaml"
    threads: ELEMENTS["threads"]
    resources:
        mem_mb=ELEMENTS["mem_mb"],
        gpu=ELEMENTS["gpus_per_job"],
        runtime=1440,
    params:
        data_dir=lambda wildcards, input: Path(input.frames).parent,
        run_ids=lambda wildcards: stability_runs()[int(wildcards.seed)],
        md=EL_STABILITY,
        repeats=ELEMENTS["sampling"]["cell_repeats"],
    script:
        "../scripts/md_stability.py"


rule sw_reference_md:
    input:
        frames=f"{EL_DATA}/Ge/frames.jsonl.gz",
    output:
        runs=f"{EL_MD}/stillinger_weber.json",
        frames=f"{EL_MD}/stillinger_weber.npz",
    log:
        f"{LOGS}/elements/sw_reference_md.log",
    conda:
        "../../envs/elements.yaml"
    resources:
        mem_mb=1000,
        runtime=240,
    params:
        data_dir=lambda wildcards, input: Path(input.frames).parent,
        runs=ELEMENTS["structure"]["reference_runs"],
        md=EL_STABILITY,
        repeats=ELEMENTS["sampling"]["cell_repeats"],
        seed=ELEMENTS["seed"],
    script:
        "../scripts/sw_reference_md.py"


rule elements_stability_structure:
    input:
        runs=expand(
            f"{EL_MD}/{{method}}_s{{seed}}.json", method=EL_METHODS, seed=EL_SEEDS
        ),
        frames=expand(
            f"{EL_MD}/{{method}}_s{{seed}}.npz", method=EL_METHODS, seed=EL_SEEDS
        ),
        reference_runs=f"{EL_MD}/stillinger_weber.json",
        reference_frames=f"{EL_MD}/stillinger_weber.npz",
    output:
        stability=f"{EL_RESULTS}/stability.csv",
        curves=f"{EL_RESULTS}/structure_curves.csv",
        summary=f"{EL_RESULTS}/stability_structure.json",
    log:
        f"{LOGS}/elements/elements_stability_structure.log",
    conda:
        "../../envs/elements.yaml"
    params:
        elements=ELEMENTS,
    script:
        "../scripts/elements_stability_structure.py"


rule elements_figure:
    input:
        notebook="notebooks/{figure}.ipynb",
        efficiency=f"{EL_RESULTS}/data_efficiency.csv",
        learning_curves=f"{EL_RESULTS}/learning_curves.csv",
        temperature=f"{EL_RESULTS}/temperature.csv",
        stability=f"{EL_RESULTS}/stability_structure.json",
        curves=f"{EL_RESULTS}/structure_curves.csv",
        provenance=f"{EL_DATA}/Ge/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/{{figure}}.ipynb",
        figures=report_figures(
            "{figure}",
            caption="../report/elements_figure.rst",
            subcategory="Si to Ge transfer (sibling study)",
        ),
    log:
        f"{LOGS}/{{figure}}.log",
    wildcard_constraints:
        figure="|".join(ELEMENT_FIGURES),
    conda:
        "../../envs/elements.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.provenance).parent,
        results_dir=lambda wildcards, input: Path(input.efficiency).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir", "results_dir")
