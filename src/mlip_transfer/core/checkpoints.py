"""Training checkpoints shared by both trainers: save, load, find the newest, prune, resume.

A checkpoint is a ``torch.save`` dict written atomically (a killed job never leaves half a
file). Numbered checkpoints are ``checkpoint_epoch{N}.pt``; a trainer that keeps one file
(``elements.training``) names it itself. Resuming loads on the CPU (RNG states must stay CPU
tensors; ``load_state_dict`` copies into a model wherever it is) and refuses a checkpoint
written with other settings rather than mixing two runs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.core.files import save_torch_atomic

EPOCH_CHECKPOINT = re.compile(r"^checkpoint_epoch(\d+)\.pt$")


def epoch_checkpoint(folder: str | Path, epoch: int) -> Path:
    """Path of the checkpoint written after ``epoch``."""
    return Path(folder) / f"checkpoint_epoch{epoch}.pt"


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically."""
    save_torch_atomic(dict(state), path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's state, every tensor on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=False)


def _numbered(folder: Path) -> list[tuple[int, Path]]:
    return sorted(
        (int(match.group(1)), path)
        for path in folder.glob("checkpoint_epoch*.pt")
        if (match := EPOCH_CHECKPOINT.match(path.name))
    )


def latest_checkpoint(folder: str | Path, *, last_epoch: int) -> Path | None:
    """The newest ``checkpoint_epoch{N}.pt`` with ``1 <= N <= last_epoch`` (None: there is none)."""
    found = [(epoch, path) for epoch, path in _numbered(Path(folder)) if 1 <= epoch <= last_epoch]
    return max(found)[1] if found else None


def prune_checkpoints(folder: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` (at least one) numbered checkpoints."""
    found = _numbered(Path(folder))
    for _, path in found[: max(0, len(found) - max(1, keep))]:
        path.unlink()


def resume_state(
    path: Path | None,
    *,
    expected: Mapping[str, Any],
    section: str | None,
    refuse: Callable[[dict[str, tuple[Any, Any]]], str],
) -> dict[str, Any] | None:
    """The state of the checkpoint at ``path`` if there is one written with these settings.

    Args:
        path: The checkpoint (None or a missing file: nothing to resume).
        expected: Settings the checkpoint must hold with equal values.
        section: The key of the state holding the settings (None: the state itself).
        refuse: The :class:`ConfigError` message, given ``{key: (checkpoint, now)}`` of the
            settings that differ.

    Raises:
        ConfigError: The checkpoint was written with other settings.
    """
    if path is None or not Path(path).exists():
        return None
    state = load_checkpoint(path)
    saved = state if section is None else state[section]
    differing = {k: (saved.get(k), v) for k, v in expected.items() if saved.get(k) != v}
    if differing:
        raise ConfigError(refuse(differing))
    return state


def rng_state() -> dict[str, Any]:
    """The global torch, NumPy, Python (and CUDA) random states, to store in a checkpoint."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Set the global random states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
