"""The files a CHGNet training writes besides its checkpoints: tables, model files, summary."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mlip_transfer.core.files import write_json_atomic, write_text_atomic
from mlip_transfer.transfer.gradients import GRADIENT_COLUMNS
from mlip_transfer.transfer.methods import METHOD_NAMES, TRAINABLE_ATOMREF
from mlip_transfer.transfer.metrics import errors_from_row

HISTORY_COLUMNS = (
    "epoch",
    "split",
    "energy_mae",
    "force_mae",
    "stress_mae",
    "magmom_mae",
    "loss",
    "lr",
    "wall_s",
)
# The learning curve: one row per optimiser step (the running epoch error is the mean over the
# epoch's batches so far, as the progress bar shows it).
STEP_COLUMNS = ("step", "epoch", "batch", "loss", "train_energy_mae_running", "lr")
OUTPUT_FILES = (
    "history.csv",
    "steps.csv",
    "gradients.csv",
    "model_step0.pt",
    "model_final.pt",
    "model_best.pt",
    "train_summary.json",
)


def write_tables(
    out_dir: Path, history: list[dict], gradients: list[dict], steps: list[dict] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``history.csv``, ``gradients.csv`` and ``steps.csv`` (header only when empty); the first
    two as data frames too."""
    hist = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    grads = pd.DataFrame(gradients, columns=list(GRADIENT_COLUMNS))
    write_text_atomic(out_dir / "history.csv", hist.to_csv(index=False))
    write_text_atomic(out_dir / "gradients.csv", grads.to_csv(index=False))
    curve = pd.DataFrame(steps or [], columns=list(STEP_COLUMNS))
    write_text_atomic(out_dir / "steps.csv", curve.to_csv(index=False))
    return hist, grads


def model_file(
    model: Any, method: str, info: Mapping[str, Any] | None, epoch: int
) -> dict[str, Any]:
    """Content of ``model_best.pt`` / ``model_final.pt`` (loadable with ``CHGNet.from_file``)."""
    return {
        "model": model.as_dict(),
        "mlip_transfer": {"method": method, "epoch": epoch, "info": dict(info or {})},
    }


def val_after(history: list[dict], epochs: int) -> dict[str, float]:
    """Validation errors after the last epoch in report units ({} without validation)."""
    last_val = [row for row in history if row["split"] == "val" and row["epoch"] == epochs]
    return errors_from_row(last_val[0]) if last_val else {}


def summary(run: Any, state: Any) -> dict[str, Any]:
    """The content of ``train_summary.json`` (``run``: a ``TrainingRun``, ``state``: its
    ``Progress``; the keys' order is the file's)."""
    settings = run.settings
    total_train_s = state.prior_train_s + state.run_train_s
    n_train = len(run.train_set)
    return {
        "method": run.method,
        "display_name": METHOD_NAMES[run.method],
        "atomref_trainable": TRAINABLE_ATOMREF[run.method],
        "device": str(run.device),
        "torch_threads": torch.get_num_threads(),
        "settings": run.fingerprint,
        "n_train": n_train,
        "n_val": len(run.val_set),
        "skipped_train_frames": run.skipped_train,
        "skipped_val_frames": run.skipped_val,
        "n_trainable_parameters": run.n_trainable,
        "fused_force_stress": run.fused,
        "batched_collation": settings.batched_collation,
        "projected_layers": run.projected,
        "val_elements_absent_from_training": run.unseen,
        "n_optimizer_tensors": sum(len(g["params"]) for g in run.optimizer.param_groups),
        "val_before": state.val_before,
        "val_after": val_after(state.history, settings.epochs),
        "best_epoch": state.best["epoch"],
        "best_val_energy_mae_mev_per_atom": 1000 * state.best["energy_mae"]
        if state.best["epoch"]
        else None,
        "resumed_from_epoch": state.start_epoch - 1 if state.resumed else None,
        "train_time_s": total_train_s,
        "wall_time_s_this_run": time.perf_counter() - run.wall_start,
        "train_structures_per_s": (_structures_trained(n_train, settings) / total_train_s)
        if total_train_s > 0
        else None,
        "train_structures_per_s_this_run": (state.run_structures / state.run_train_s)
        if state.run_train_s > 0
        else None,
        "graphs_converted_this_run": run.cache.n_converted - run.converted_before,
        "graph_conversion_s_this_run": run.cache.conversion_s - run.conversion_before,
        "model_info": dict(run.info),
    }


def _structures_trained(n_train: int, settings: Any) -> int:
    """Structure-passes of the whole training: every epoch, the last one cut at max_steps."""
    if settings.max_steps is None:
        return n_train * settings.epochs
    per_epoch = -(-n_train // settings.batch_size)
    full = settings.max_steps // per_epoch
    rest = settings.max_steps - full * per_epoch
    return full * n_train + min(rest * settings.batch_size, n_train)


def write_summary(out_dir: Path, content: Mapping[str, Any]) -> None:
    """``train_summary.json`` (standard JSON: a NaN error is written as null)."""
    write_json_atomic(out_dir / "train_summary.json", content, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
