"""Count unstable runs per method, and compare RDF/ADF of the stable runs with Stillinger-Weber."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import stability_structure

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "elements_stability_structure"):
    stability_structure(
        runs=smk.input.runs,
        frames=smk.input.frames,
        reference_runs=smk.input.reference_runs,
        reference_frames=smk.input.reference_frames,
        settings=smk.params.elements,
        out_stability=smk.output.stability,
        out_curves=smk.output.curves,
        out_summary=smk.output.summary,
    )
