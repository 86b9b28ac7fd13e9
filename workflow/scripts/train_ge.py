"""Train one Ge DimeNet++ (scratch or transfer from Si) on a seeded subset of the pool."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import train_target

smk = snakemake  # noqa: F821
w, settings = smk.wildcards, smk.params.elements
with rule_log(smk.log[0], f"train_ge {w.method} n={w.size} seed={w.seed}"):
    train_target(
        data=Path(smk.input.frames).parent,
        out_dir=Path(smk.output.model).parent,
        method=w.method,
        size=int(w.size),
        seed=int(w.seed),
        model_settings=settings["model"],
        training=settings["finetune"],
        device=settings["device"],
        test_temperatures=smk.params.test_temperatures,
        source_model=smk.input.get("source"),
        threads=smk.threads,
        validation_size=settings["validation_size"],
    )
