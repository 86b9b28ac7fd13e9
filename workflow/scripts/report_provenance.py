"""Write the run's provenance (package versions, configuration, input checksums) for the report."""

import json
from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.report import provenance_html, provenance_record

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "report_provenance") as log:
    record = provenance_record(
        config=smk.params.config,
        configfiles=smk.params.configfiles,
        inputs=list(smk.input.raw),
        registry_path=smk.input.registry,
        data_provenance=smk.input.data_provenance,
        parse_report=smk.input.parse_report,
    )
    Path(smk.output.json).write_text(json.dumps(record, indent=2) + "\n")
    Path(smk.output.html).write_text(provenance_html(record))
    statuses = [row["status"] for row in record["inputs"]]
    log.info("%d files checksummed: %s", len(statuses), {s: statuses.count(s) for s in set(statuses)})
