"""Job of the transfer stage's ``train_method`` rule (the Snakemake script only calls it)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mlip_transfer.data.dataset import iter_frames
from mlip_transfer.data.split import read_split
from mlip_transfer.transfer.frames import frames_by_split
from mlip_transfer.transfer.gradients import GradientRecorder
from mlip_transfer.transfer.methods import build_model
from mlip_transfer.transfer.settings import TrainSettings
from mlip_transfer.transfer.trainer import TrainResult, train

logger = logging.getLogger("mlip_transfer.transfer.jobs")


def train_method(
    *,
    frames: str | Path,
    split: str | Path,
    method: str,
    out_dir: str | Path,
    training: Mapping[str, Any],
    threads: int = 1,
) -> TrainResult:
    """Train one transfer method (1-4, 4r) from the source CHGNet on the target training split.

    Args:
        frames, split: The dataset's frames file and split table.
        method: One of :data:`~mlip_transfer.transfer.methods.METHODS`.
        out_dir: Where :func:`~mlip_transfer.transfer.trainer.train` writes (and resumes).
        training: The config's ``training`` section.
        threads: torch threads.
    """
    torch.set_num_threads(threads)
    grouped = frames_by_split(
        iter_frames(frames),
        read_split(split),
        functional=training["functional"],
        max_train_frames=training["max_train_frames"],
        seed=training["seed"],
    )
    logger.info("%d training and %d validation frames", len(grouped["train"]), len(grouped["val"]))
    settings = TrainSettings.from_config(training)
    model, info = build_model(
        method,
        train_frames=grouped["train"],
        source_model_name=training["source_model"],
        seed=training["seed"],
    )
    logger.info("start: %s", json.dumps(info, default=str)[:2000])
    return train(
        model=model,
        train_frames=grouped["train"],
        val_frames=grouped["val"],
        method=method,
        out_dir=Path(out_dir),
        settings=settings,
        gradients=GradientRecorder(),  # Fig. 3a
        info=info,
    )
