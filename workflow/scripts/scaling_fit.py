"""Collect the scaling-law jobs and fit error against training-set size (paper Fig. 6)."""

import json
from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.scaling.laws import collect_results, summarize

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "scaling_fit") as log:
    results = collect_results(json.loads(Path(path).read_text()) for path in smk.input.results)
    results.to_csv(smk.output.table, index=False)
    methods = smk.params.scaling["methods"]
    summary = summarize(
        results,
        scratch_method=methods[0],
        transfer_methods=methods[1:],
        threshold=smk.params.scaling["fit_threshold"],
    )
    source = DataSource.read(Path(smk.input.provenance).parent)
    summary["data_source"], summary["data_banner"] = source.name, source.banner
    Path(smk.output.fits).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("\n%s", results.to_string())
    for target, entry in summary["targets"].items():
        log.info("%s fits: %s; crossover %s", target, entry["fits"], entry.get("crossover"))
