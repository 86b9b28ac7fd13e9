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
        notebooks=executed_notebooks(all_targets()),
    output:
        [
            report(
                html,
                caption="../report/notebook.rst",
                category="Executed notebooks",
                labels={"notebook": Path(html).stem},
            )
            for html in notebook_pages(all_targets())
        ],
    log:
        f"{LOGS}/notebook_html.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/notebook_html.py"


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
