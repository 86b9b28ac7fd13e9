"""The signature of a Ge/Si training run and resuming it from its checkpoint.

A run is named by its settings, its frames (ids) and the model's architecture; a checkpoint
written with another signature stops the run with a ConfigError that names each changed setting
(:func:`mlip_transfer.core.checkpoints.resume_checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mlip_transfer.core.checkpoints import resume_checkpoint
from mlip_transfer.data.dataset import Frame
from mlip_transfer.elements.convergence import EarlyStopping
from mlip_transfer.elements.dimenet import DimeNetPP

if TYPE_CHECKING:
    from mlip_transfer.elements.training import TrainSettings

logger = logging.getLogger("mlip_transfer.elements.training")
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.previous.pt"  # the fallback if checkpoint.pt is unreadable


def run_signature(
    settings: TrainSettings, frames: Sequence[Frame], model: DimeNetPP,
    val_frames: Sequence[Frame] = (),
) -> tuple[str, dict[str, Any]]:
    """The run's signature (the hash earlier versions stored) and its settings by name."""
    ids = [f.frame_id for f in frames]
    # compile changes how the forces are computed, not what they are: a run may resume with
    # it switched, and runs from before the setting keep their signature.
    training = {key: value for key, value in asdict(settings).items() if key != "compile"}
    text = json.dumps(
        {"settings": training, "frames": ids, "model": asdict(model.settings)},
        sort_keys=True,
    )
    ids_sha = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    named = {
        **training,
        "frames": f"{len(ids)} frames, ids sha256 {ids_sha}",
        **{f"model.{key}": value for key, value in asdict(model.settings).items()},
    }
    if val_frames:
        val_ids = [f.frame_id for f in val_frames]
        val_sha = hashlib.sha256("\n".join(val_ids).encode()).hexdigest()[:12]
        named["validation_frames"] = f"{len(val_ids)} frames, ids sha256 {val_sha}"
        text += "\n" + "\n".join(val_ids)
    return hashlib.sha256(text.encode()).hexdigest()[:16], named


def resume_run(
    out_dir: Path, signature: str, run_settings: dict[str, Any], model: DimeNetPP,
    optimizer: torch.optim.Optimizer, stopper: EarlyStopping, label: str,
) -> tuple[int, list[dict[str, float]], int | None]:
    """Restore model, optimizer and stop rule from ``checkpoint.pt``, else the previous one.

    Returns:
        ``(start_step, history, resumed_from_step)``; ``(0, [], None)`` without a checkpoint.
    """
    found = resume_checkpoint(
        [out_dir / CHECKPOINT, out_dir / PREVIOUS_CHECKPOINT], expected=run_settings,
        out_dir=out_dir, signature=signature,
    )
    if found is None:
        return 0, [], None
    checkpoint, state = found
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if "early_stop" in state:
        stopper.load_state_dict(state["early_stop"])
    logger.info("%s: resuming from %s, step %d", label, checkpoint.name, state["step"])
    return state["step"], state["history"], state["step"]
