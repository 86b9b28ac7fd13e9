# Cross-functional transfer learning for universal MLIPs: the whole workflow.
# Stages live in workflow/rules/*.smk; library code in src/mlip_transfer; thin entry points in
# workflow/scripts. Run `make run` (or `snakemake --profile profiles/local`) from this folder.


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/common_report.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/energy_scale.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/retention.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/scaling.smk"
include: "workflow/rules/data_budget.smk"
include: "workflow/rules/density.smk"
include: "workflow/rules/elements.smk"
include: "workflow/rules/teachers.smk"
# After the stages whose results it reads; its claims.html is the report's front page.
include: "workflow/rules/claims.smk"
# Last: its notebook_html rule lists the notebooks of every stage above.
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        report_targets(all_targets()),
