"""Convert the run's executed notebooks to HTML pages for the report, in one process."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.notebook_html import notebooks_to_html

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "notebook_html"):
    notebooks_to_html(list(smk.input.notebooks), list(smk.output))
