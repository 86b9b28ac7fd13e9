"""Train one transfer method (1-4, 4r) from the source CHGNet on the target training split."""

import json
from pathlib import Path

import torch

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.dataset import iter_frames
from mlip_transfer.data.split import read_split
from mlip_transfer.transfer.frames import frames_by_split, optimizer_settings
from mlip_transfer.transfer.training import build_model, train

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], f"train {smk.wildcards.method}") as log:
    torch.set_num_threads(smk.threads)
    settings = smk.params.training
    frames = frames_by_split(
        iter_frames(smk.input.frames),
        read_split(smk.input.split),
        functional=settings["functional"],
        max_train_frames=settings["max_train_frames"],
        seed=settings["seed"],
    )
    log.info("%d training and %d validation frames", len(frames["train"]), len(frames["val"]))
    out_dir = Path(smk.params.out_dir)
    model, info = build_model(
        smk.wildcards.method,
        train_frames=frames["train"],
        source_model_name=settings["source_model"],
        seed=settings["seed"],
    )
    log.info("start: %s", json.dumps(info, default=str)[:2000])
    train(
        model=model,
        train_frames=frames["train"],
        val_frames=frames["val"],
        method=smk.wildcards.method,
        out_dir=out_dir,
        epochs=settings["epochs"],
        **optimizer_settings(settings),
        seed=settings["seed"],
        info=info,
    )
