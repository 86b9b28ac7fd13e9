# Data: fetch or build the raw inputs, parse them into the canonical format with the paper's
# filters, and split by material id.

# The dataset_summary notebook draws both (the last rule here).
DATASET_FIGURES = ["dataset_summary", "dataset_elements"]


# Download and fetch rules exist only for files that are absent: a user's local copy is then a
# plain input that Snakemake never reruns, overwrites or deletes, whatever its timestamps.
if not Path(MP["r2scan_json"]).exists():

    rule download_mp_r2scan:
        output:
            protected(MP["r2scan_json"]),
        log:
            f"{LOGS}/download_mp_r2scan.log",
        conda:
            "../../envs/data.yaml"
        resources:
            runtime=240,
        params:
            entry="mp_r2scan",
        script:
            "../scripts/download_registry_file.py"


if MP["mptrj_json"] and not Path(MP["mptrj_json"]).exists():

    rule download_mptrj:
        output:
            protected(MP["mptrj_json"]),
        log:
            f"{LOGS}/download_mptrj.log",
        conda:
            "../../envs/data.yaml"
        resources:
            runtime=480,
        params:
            entry="mptrj",
        script:
            "../scripts/download_registry_file.py"


if not Path(MP["thermo_json"]).exists():

    rule fetch_mp_thermo:
        input:
            r2scan=MP["r2scan_json"],
        output:
            protected(MP["thermo_json"]),
        log:
            f"{LOGS}/fetch_mp_thermo.log",
        conda:
            "../../envs/data.yaml"
        resources:
            runtime=120,
        script:
            "../scripts/fetch_mp_thermo.py"


rule build_default_dataset:
    input:
        wbm="resources/reference/wbm-random-pbe52-equilibrium-2025.1.json.gz",
        elements="resources/reference/MatPES-PBE-Element-Refs.json.gz",
    output:
        frames=f"{OUT}/default_dataset_rebuilt/frames.jsonl.gz",
        materials=f"{OUT}/default_dataset_rebuilt/materials.csv",
        summary=f"{OUT}/default_dataset_rebuilt/build_summary.json",
    log:
        f"{LOGS}/build_default_dataset.log",
    conda:
        "../../envs/chgnet.yaml"
    threads: DEFAULT["build"]["processes"]
    resources:
        mem_mb=4000 * DEFAULT["build"]["processes"],
        runtime=120,
    params:
        settings=DEFAULT["build"],
    script:
        "../scripts/build_default_dataset.py"


rule parse_dataset:
    input:
        raw_inputs,
    output:
        frames=f"{DATA}/frames.jsonl.gz",
        materials=f"{DATA}/materials.csv",
        report=f"{DATA}/parse_report.json",
        dropped=f"{DATA}/dropped.csv",
        provenance=f"{DATA}/provenance.json",
    log:
        f"{LOGS}/parse_dataset.log",
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=8000,
    params:
        source=SOURCE,
        default=DEFAULT,
        mp=MP,
        extxyz=EXTXYZ,
        filters=config["filters"],
        default_folder=default_dataset_folder(),
    script:
        "../scripts/parse_dataset.py"


rule split_dataset:
    input:
        materials=f"{DATA}/materials.csv",
        frames=f"{DATA}/frames.jsonl.gz",
        provenance=f"{DATA}/provenance.json",
    output:
        split=f"{DATA}/split.csv",
        statistics=f"{DATA}/dataset_statistics.json",
    log:
        f"{LOGS}/split_dataset.log",
    conda:
        "../../envs/data.yaml"
    params:
        split=config["split"],
    script:
        "../scripts/split_dataset.py"


# Figures of the dataset: one papermill-executed notebook (notebooks/ holds it without
# outputs; the executed copy goes to the output folder beside the figures it draws).
rule dataset_summary:
    input:
        notebook="notebooks/dataset_summary.ipynb",
        frames=f"{DATA}/frames.jsonl.gz",
        materials=f"{DATA}/materials.csv",
        split=f"{DATA}/split.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/dataset_summary.ipynb",
        figures=[
            path
            for figure in DATASET_FIGURES
            for path in report_figures(
                figure, caption=f"../report/{figure}.rst", subcategory="Dataset"
            )
        ],
    log:
        f"{LOGS}/dataset_summary.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        data_dir=lambda wildcards, input: Path(input.frames).parent,
        figure_dir=lambda wildcards, output: Path(output.figures[0]).parent,
        formats=",".join(FORMATS),
        dpi=config["figures"]["dpi"],
    shell:
        papermill_command("data_dir")
