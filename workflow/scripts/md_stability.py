"""NVT stability runs with the Ge models of one method trained on few samples (one per seed)."""

import torch

from mlip_transfer.elements.jobs import stability
from mlip_transfer.logs import rule_log

smk = snakemake  # noqa: F821
method = smk.wildcards.method
with rule_log(smk.log[0], f"md_stability {method}") as log:
    torch.set_num_threads(smk.threads)
    records = stability(
        models={
            seed: (path, smk.params.run_ids[seed])
            for seed, path in zip(smk.params.seeds, smk.input.models)
        },
        data=smk.params.data_dir,
        out_json=smk.output.runs,
        out_frames=smk.output.frames,
        method=method,
        md=smk.params.md,
        repeats=smk.params.repeats,
    )
    log.info("%d of %d runs stable", sum(r["stable"] for r in records), len(records))
