"""Pre-train the source DimeNet++ on the Si pool."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import pretrain

smk = snakemake  # noqa: F821
settings = smk.params.elements
with rule_log(smk.log[0], "pretrain_si"):
    pretrain(
        data=Path(smk.input.frames).parent,
        out_dir=Path(smk.output.model).parent,
        model_settings=settings["model"],
        training=settings["pretrain"],
        seed=settings["seed"],
        device=settings["device"],
        test_temperature=settings["train_temperature"],
        threads=smk.threads,
    )
