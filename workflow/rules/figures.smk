# Figures: one papermill-executed notebook per figure. Notebooks in notebooks/ have no outputs;
# executed copies go to the output folder beside the figures they draw.


rule dataset_summary:
    input:
        notebook="notebooks/dataset_summary.ipynb",
        frames=f"{DATA}/frames.jsonl.gz",
        materials=f"{DATA}/materials.csv",
        split=f"{DATA}/split.csv",
        provenance=f"{DATA}/provenance.json",
    output:
        notebook=f"{NOTEBOOKS}/dataset_summary.ipynb",
        figures=report_figures(
            "dataset_summary",
            caption="../report/dataset_summary.rst",
            subcategory="Dataset",
        )
        + report_figures(
            "dataset_elements",
            caption="../report/dataset_elements.rst",
            subcategory="Dataset",
        ),
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
        "papermill {input.notebook} {output.notebook} --cwd . --no-progress-bar --start-timeout 300"
        " -p data_dir {params.data_dir} -p figure_dir {params.figure_dir}"
        " -p formats {params.formats} -p dpi {params.dpi} > {log} 2>&1"
