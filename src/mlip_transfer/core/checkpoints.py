"""Training checkpoints shared by both trainers: save, load, find, prune, resume, set aside.

A checkpoint is a ``torch.save`` dict written atomically (a killed job never leaves half a
file). Numbered checkpoints are ``checkpoint_epoch{N}.pt``; a trainer that keeps one file
(``elements.training``) names it itself and keeps the one before as its fallback. Resuming
loads on the CPU (RNG states must stay CPU tensors; ``load_state_dict`` copies into a model
wherever it is).

A checkpoint that cannot be read (truncated by a full disk or a crash of the file system, or
copied in part) is renamed aside to ``<name>.corrupt`` with a warning naming it, and the next
older one is tried; with none left, training starts afresh. A readable checkpoint written with
other settings is refused (:class:`ConfigError` naming each setting that changed) rather than
mixing two runs.

Pruning (``keep_checkpoints``) deletes old checkpoints only after the new one is complete, so
a complete checkpoint exists at every moment; with ``keep_checkpoints: 1`` there is no older
one to fall back on, and a corrupt newest checkpoint means training starts again from epoch 1.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.core.files import save_torch_atomic

logger = logging.getLogger("mlip_transfer.core.checkpoints")
EPOCH_CHECKPOINT = re.compile(r"^checkpoint_epoch(\d+)\.pt$")
CORRUPT_SUFFIX = ".corrupt"


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


def epoch_checkpoints(folder: str | Path, *, last_epoch: int) -> list[Path]:
    """The ``checkpoint_epoch{N}.pt`` with ``1 <= N <= last_epoch``, newest first."""
    found = [(epoch, path) for epoch, path in _numbered(Path(folder)) if 1 <= epoch <= last_epoch]
    return [path for _, path in sorted(found, reverse=True)]


def latest_checkpoint(folder: str | Path, *, last_epoch: int) -> Path | None:
    """The newest ``checkpoint_epoch{N}.pt`` with ``1 <= N <= last_epoch`` (None: there is none)."""
    found = epoch_checkpoints(folder, last_epoch=last_epoch)
    return found[0] if found else None


def prune_checkpoints(folder: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` (at least one) numbered checkpoints."""
    found = _numbered(Path(folder))
    for _, path in found[: max(0, len(found) - max(1, keep))]:
        path.unlink()


def set_aside(path: Path, reason: BaseException | str) -> Path:
    """Rename an unreadable checkpoint to ``<name>.corrupt`` (``.corrupt1``, ... if taken)."""
    aside = path.with_name(path.name + CORRUPT_SUFFIX)
    count = 0
    while aside.exists():
        count += 1
        aside = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{count}")
    path.rename(aside)
    logger.warning(
        "checkpoint %s is unreadable (%s: %s); renamed to %s, trying an older one",
        path, type(reason).__name__ if isinstance(reason, BaseException) else "error",
        reason, aside.name,
    )
    return aside


def newest_readable(candidates: Iterable[Path | None]) -> tuple[Path, dict[str, Any]] | None:
    """The first of ``candidates`` (newest first) that loads, and its state.

    Missing files are skipped; unreadable ones are set aside (:func:`set_aside`). None: no
    candidate loads (a warning says training starts afresh if any was set aside).
    """
    failed = False
    for path in candidates:
        if path is None or not Path(path).is_file():
            continue
        try:
            state = load_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - truncated zip, bad pickle, EOF: all unreadable
            set_aside(Path(path), exc)
            failed = True
            continue
        if not isinstance(state, dict):
            set_aside(Path(path), f"holds a {type(state).__name__}, not a checkpoint dict")
            failed = True
            continue
        if failed:
            logger.warning("resuming from the older checkpoint %s", path)
        return Path(path), state
    if failed:
        logger.warning("no readable checkpoint left: training starts from the beginning")
    return None


def changed_settings(
    saved: Mapping[str, Any] | None, expected: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """``{setting: (checkpoint value, current value)}`` of the settings that differ."""
    saved = saved or {}
    return {k: (saved.get(k), v) for k, v in expected.items() if saved.get(k) != v}


def other_settings_message(
    path: Path, differing: Mapping[str, tuple[Any, Any]], *, out_dir: Path
) -> str:
    """What changed between the checkpoint at ``path`` and now, and how to start over."""
    lines = [
        f"{path} was written with other settings; resuming would mix two runs:",
        *(f"  {name}: checkpoint {old!r}, now {new!r}" for name, (old, new) in differing.items()),
        (
            "Go back to the checkpoint's settings to resume it, or start over: delete the "
            f"folder {out_dir} (rm -r '{out_dir}') or give this run another out_dir."
        ),
    ]
    return "\n".join(lines)


def resume_state(
    path: Path | None,
    *,
    expected: Mapping[str, Any],
    section: str | None,
    refuse: Callable[[dict[str, tuple[Any, Any]]], str],
    fallbacks: Iterable[Path] = (),
) -> dict[str, Any] | None:
    """The state of the checkpoint at ``path`` (or a fallback) if written with these settings.

    Args:
        path: The checkpoint (None or a missing file: try the fallbacks).
        expected: Settings the checkpoint must hold with equal values.
        section: The key of the state holding the settings (None: the state itself).
        refuse: The :class:`ConfigError` message, given ``{key: (checkpoint, now)}`` of the
            settings that differ.
        fallbacks: Older checkpoints, newest first, tried when ``path`` is unreadable.

    Raises:
        ConfigError: The checkpoint was written with other settings.
    """
    found = newest_readable([path, *fallbacks])
    if found is None:
        return None
    state = found[1]
    saved = state if section is None else state.get(section)
    differing = changed_settings(saved, expected)
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


def save_keeping_previous(state: Mapping[str, Any], path: Path, previous: Path) -> None:
    """Write ``state`` to ``path`` after moving the checkpoint there to ``previous``.

    For a trainer that keeps one checkpoint file: the one before stays as the fallback of
    :func:`newest_readable` (between the move and the write only ``previous`` exists).
    """
    if path.exists():
        os.replace(path, previous)
    save_checkpoint(state, path)


def resume_checkpoint(
    candidates: Iterable[Path | None],
    *,
    expected: Mapping[str, Any],
    out_dir: Path,
    section: str = "settings",
    signature: str | None = None,
) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable of ``candidates`` and its state, if written with these settings.

    Args:
        candidates: Checkpoint paths, newest first (:func:`newest_readable`).
        expected: The settings by name; the checkpoint's ``state[section]`` must equal them.
        out_dir: The training's folder, named in the message of how to start over.
        section: The key of the state holding the settings.
        signature: Also accept a checkpoint whose ``signature`` equals this (checkpoints of
            earlier versions store only a hash of the settings).

    Raises:
        ConfigError: The checkpoint was written with other settings (each one named, with
            both values, and how to start over).
    """
    found = newest_readable(candidates)
    if found is None:
        return None
    path, state = found
    differing = changed_settings(state.get(section), expected)
    if differing and (signature is None or state.get("signature") != signature):
        raise ConfigError(other_settings_message(path, differing, out_dir=out_dir))
    return found
