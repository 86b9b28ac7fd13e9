# The browsable report (`snakemake --report results/report.html`, or `make report`): every figure
# with a caption (workflow/report/*.rst: what it shows, which data, which configuration), the
# executed notebooks as HTML, and a provenance record (package versions, configuration, input
# checksums). Figures are marked in their own rules (report_figures in common_report.smk).
import os


# Seconds of work each: on a cluster they run where Snakemake runs, not through the queue.
localrules:
    notebook_html,
    report_provenance,


rule notebook_html:
    input:
        f"{NOTEBOOKS}/{{notebook}}.ipynb",
    output:
        report(
            f"{NOTEBOOKS}/{{notebook}}.html",
            caption="../report/notebook.rst",
            category="Executed notebooks",
            labels={"notebook": "{notebook}"},
        ),
    log:
        f"{LOGS}/notebook_html_{{notebook}}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        folder=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "jupyter nbconvert --to html --output-dir {params.folder} --output {wildcards.notebook}"
        " {input} > {log} 2>&1"


rule report_provenance:
    input:
        raw=raw_inputs,
        data_provenance=f"{DATA}/provenance.json",
        parse_report=f"{DATA}/parse_report.json",
        registry="resources/registry.yaml",
    output:
        html=report(
            f"{OUT}/report/provenance.html",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
        json=f"{OUT}/report/provenance.json",
    log:
        f"{LOGS}/report_provenance.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        config=config,
        configfiles=[os.path.relpath(path) for path in workflow.configfiles],
    script:
        "../scripts/report_provenance.py"
