"""NVT stability runs with one Ge model trained on few samples (one method, one seed)."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import stability

smk = snakemake  # noqa: F821
method, seed = smk.wildcards.method, int(smk.wildcards.seed)
with rule_log(smk.log[0], f"md_stability {method} seed={seed}"):
    stability(
        models={seed: (smk.input.model, smk.params.run_ids)},
        data=smk.params.data_dir,
        out_json=smk.output.runs,
        out_frames=smk.output.frames,
        method=method,
        md=smk.params.md,
        repeats=smk.params.repeats,
        threads=smk.threads,
    )
