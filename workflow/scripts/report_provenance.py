"""Write the run's provenance (package versions, configuration, input checksums) for the report."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.report import write_provenance

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "report_provenance"):
    write_provenance(
        config=smk.params.config,
        configfiles=smk.params.configfiles,
        inputs=list(smk.input.raw),
        registry_path=smk.input.registry,
        data_provenance=smk.input.data_provenance,
        parse_report=smk.input.parse_report,
        out_json=smk.output.json,
        out_html=smk.output.html,
    )
