"""NVT runs with the Stillinger-Weber Ge potential: the RDF/ADF reference."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import reference_md

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "sw_reference_md"):
    reference_md(
        data=smk.params.data_dir,
        out_json=smk.output.runs,
        out_frames=smk.output.frames,
        runs=smk.params.runs,
        md=smk.params.md,
        repeats=smk.params.repeats,
        seed=smk.params.seed,
    )
