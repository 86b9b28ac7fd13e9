"""Count unstable runs per method, and compare RDF/ADF of the stable runs with Stillinger-Weber."""

import json
from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements import experiments as X
from mlip_transfer.elements.jobs import structure

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "elements_stability_structure") as log:
    settings = smk.params.elements
    records = [r for path in smk.input.runs for r in json.loads(Path(path).read_text())["runs"]]
    table = X.stability_table(records)
    table.to_csv(smk.output.stability, index=False)
    reference = json.loads(Path(smk.input.reference_runs).read_text())["runs"]
    frames = {}
    for path in smk.input.frames:  # <method>_s<seed>.npz: pool the seeds of each method
        frames.setdefault(Path(path).stem.rsplit("_s", 1)[0], []).append(path)
    curves, distances = structure(
        frames=frames,
        reference=smk.input.reference_frames,
        rdf_max=settings["structure"]["rdf_max"],
        rdf_bins=settings["structure"]["rdf_bins"],
        adf_cutoff=settings["structure"]["adf_cutoff"],
        adf_bins=settings["structure"]["adf_bins"],
    )
    curves.to_csv(smk.output.curves, index=False)
    summary = {
        "data_source": "stillinger-weber",
        "scale": X.scale_statement(settings),
        "train_temperature": settings["train_temperature"],
        "stability": table.to_dict("records"),
        "stability_settings": settings["stability"],
        "reference_runs_stable": sum(r["stable"] for r in reference),
        "reference_runs": len(reference),
        "structure": distances,
        "paper": X.PAPER["stability"] | {"structure": X.PAPER["structure"]},
    }
    Path(smk.output.summary).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("\n%s\n%s", table.to_string(), distances)
