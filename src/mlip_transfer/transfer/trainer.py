"""Training a CHGNet model of one transfer method, resumable from its checkpoints.

chgnet's ``Trainer`` cannot do what the study needs without patching its internals (it builds
Adam over ALL parameters, including a frozen AtomRef; it records no gradients, no per-epoch
loss or learning rate, saves no RNG state, and cannot resume inside ``train``), so
:func:`train` is a faithful re-implementation of ``Trainer._train`` / ``Trainer._validate``
(chgnet 0.4.2) built from chgnet's own pieces:

* loss: ``chgnet.trainer.trainer.CombinedLoss`` (targets ``efsm``, ``allow_missing_labels``,
  Huber delta 0.1 as the Trainer's default), ratios energy:force:stress:magmom;
* optimizer: ``torch.optim.Adam`` (weight decay 0), over the TRAINABLE parameters only, so a
  frozen AtomRef (``requires_grad=False``) can never be moved;
* schedule: ``CosineAnnealingLR`` stepped every tenth of an epoch exactly as the Trainer does
  (after batch ``floor(k n / 10)``, k = 1..10; fewer steps when an epoch has < 10 batches),
  ``T_max`` = number of scheduler steps in the whole run, ``eta_min = final_learning_rate``:
  1e-3 decays to 1e-5 by the last batch;
* graphs and batches: :mod:`mlip_transfer.transfer.graphs`; forward pass (forces and stress
  from one gradient, checked against ``CHGNet.forward``): :mod:`mlip_transfer.transfer.forward`;
  gradient norms of Fig. 3a: :class:`~mlip_transfer.transfer.gradients.GradientRecorder`.

The loop reads as chgnet's Trainer and MACE's ``train``: :func:`train` sets up
(:func:`~mlip_transfer.transfer.trainer_setup.set_up`), resumes or starts (:func:`_resume`,
:func:`_start`), then per epoch :func:`_train_epoch` (batches through :func:`_take_step`) ->
:func:`_validate` -> :func:`_save_epoch`, then :func:`_finish` writes the summary.

Outputs of :func:`train` in ``out_dir``: ``checkpoint_epoch{N}.pt`` (model, optimizer,
scheduler, epoch, RNG states, history so far), ``history.csv``, ``steps.csv`` (the learning
curve: loss per optimiser step), ``gradients.csv``,
``model_step0.pt`` (the model before the first step), ``model_final.pt`` and
``model_best.pt`` (all three loadable with ``CHGNet.from_file`` or
:func:`mlip_transfer.transfer.models.load_chgnet`), ``train_summary.json``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mlip_transfer.core.checkpoints import (
    epoch_checkpoint,
    epoch_checkpoints,
    prune_checkpoints,
    restore_rng_state,
    resume_checkpoint,
    rng_state,
    save_checkpoint,
)
from mlip_transfer.core.files import save_torch_atomic
from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.forward import predict_efsm
from mlip_transfer.transfer.gradients import GradientRecorder
from mlip_transfer.transfer.graphs import GraphCache, make_loader, to_device
from mlip_transfer.transfer.metrics import ErrorSums, format_errors
from mlip_transfer.transfer.outputs import (
    OUTPUT_FILES,
    model_file,
    summary,
    write_summary,
    write_tables,
)
from mlip_transfer.transfer.settings import TrainSettings
from mlip_transfer.transfer.trainer_setup import TrainingRun, set_up

logger = logging.getLogger("mlip_transfer.transfer.trainer")
@dataclass
class TrainResult:
    """What :func:`train` produced (the files are in ``out_dir``)."""

    out_dir: Path
    model: Any
    history: pd.DataFrame
    gradients: pd.DataFrame
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class Progress:
    """What a checkpoint restores: the run's tables, best epoch and time so far."""

    history: list[dict] = field(default_factory=list)
    gradients: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "energy_mae": math.inf})
    val_before: dict[str, float] = field(default_factory=dict)
    start_epoch: int = 1
    prior_train_s: float = 0.0
    resumed: bool = False
    run_train_s: float = 0.0
    run_structures: int = 0


def train(
    *,
    model: Any,
    train_frames: Sequence[Frame],
    val_frames: Sequence[Frame],
    method: str,
    out_dir: str | Path,
    settings: TrainSettings,
    gradients: GradientRecorder | None = None,
    progress: bool = True,
    graph_cache: GraphCache | None = None,
    info: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a model built by :func:`~mlip_transfer.transfer.methods.build_model`; resumes.

    Args:
        model: The starting model (modified in place and returned in the result).
        train_frames, val_frames: Labelled frames; validation errors are computed before
            training (``epoch`` 0) and after every ``settings.validate_every`` epochs.
        method: One of :data:`~mlip_transfer.transfer.methods.METHODS`; decides whether the
            AtomRef is trained (Method 2 only).
        out_dir: Output folder (created).
        settings: Epochs, optimizer, loss, device, seed, validation and checkpoint settings.
        gradients: Records layer gradients after each ``backward()`` (Fig. 3a); None: none
            (``gradients.csv`` has the header only).
        progress: tqdm bars (to stderr).
        graph_cache: Graph cache (default: the process-wide one for the model's converter).
        info: The ``info`` of ``build_model``, copied into ``train_summary.json``.

    Resume: if ``out_dir`` holds ``checkpoint_epoch{N}.pt``, the model, optimizer, scheduler,
    RNG states, history and gradients of the newest readable one are restored and training
    continues with epoch ``N + 1``; an unreadable checkpoint is renamed to ``<name>.corrupt``
    (with a warning) and the next older one is used. The settings must match (else
    :class:`ConfigError` naming each changed setting and how to start over).

    Raises:
        ConfigError: Unknown method, or checkpoints made with other settings.
        DataError: No usable training frames.
        FloatingPointError: The training loss became NaN (history up to then is written).
    """
    run = set_up(
        model=model, train_frames=train_frames, val_frames=val_frames, method=method,
        out_dir=out_dir, settings=settings, recorder=gradients, progress=progress,
        graph_cache=graph_cache, info=info,
    )
    state = _resume(run) or _start(run)
    if run.recorder is not None:
        run.recorder.rows = state.gradients  # restored rows continue; new ones append
    run.log_start()
    for epoch in range(state.start_epoch, settings.epochs + 1):
        lr = run.optimizer.param_groups[0]["lr"]
        sums, train_s = _train_epoch(run, state, epoch)
        metric = _validate(run, state, epoch, sums=sums, lr=lr, train_s=train_s)
        _save_epoch(run, state, epoch, metric)
    return _finish(run, state)


def _resume(run: TrainingRun) -> Progress | None:
    """The progress of the newest readable checkpoint in ``out_dir`` restored into the run.

    Unreadable checkpoints are set aside and the next older one is tried
    (:func:`~mlip_transfer.core.checkpoints.newest_readable`); None: nothing to resume.
    """
    found = resume_checkpoint(
        epoch_checkpoints(run.out_dir, last_epoch=run.settings.epochs),
        expected=run.fingerprint,
        out_dir=run.out_dir,
    )
    if found is None:
        return None
    checkpoint, state = found
    if not (run.out_dir / "model_step0.pt").exists():
        # Snakemake deletes a failed job's outputs but not its checkpoints: the model is still
        # as built (before loading the checkpoint), which is exactly the start to save.
        _save_model(run, 0, "model_step0.pt")
    run.model.load_state_dict(state["model"]["state_dict"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    logger.info(
        "%s: resuming from %s (epoch %d of %d)",
        run.method, checkpoint.name, state["epoch"], run.settings.epochs,
    )
    return Progress(
        history=state["history"],
        gradients=state["gradients"],
        steps=state.get("steps", []),  # checkpoints before the learning curve have none
        best=state["best"],
        val_before=state["val_before"],
        start_epoch=state["epoch"] + 1,
        prior_train_s=state["train_s"],
        resumed=True,
    )


def _start(run: TrainingRun) -> Progress:
    """A fresh run: the global RNGs seeded, the validation errors before training recorded."""
    seed = run.settings.seed
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    state = Progress()
    # The model before any optimiser step: the "step 0" rows of Table 1 evaluate it.
    _save_model(run, 0, "model_step0.pt")
    if run.val_loader is not None and run.settings.validate_before:
        t0 = time.perf_counter()
        sums = run.evaluate(desc="val (before)")
        state.history.append(
            {
                "epoch": 0,
                "split": "val",
                **sums.row(),
                "lr": run.settings.learning_rate,
                "wall_s": time.perf_counter() - t0,
            }
        )
        state.val_before = sums.errors()
        logger.info(
            "%s: validation before training: %s", run.method, format_errors(state.val_before)
        )
    return state


def _train_epoch(run: TrainingRun, state: Progress, epoch: int) -> tuple[ErrorSums, float]:
    """One pass over the shuffled training set; the train errors and seconds it took."""
    run.model.train()
    sums = ErrorSums()
    t0 = time.perf_counter()
    loader = make_loader(
        run.train_set, run.settings.batch_size, shuffle_seed=run.settings.seed * 1_000_003 + epoch
    )
    bar = run.bar(loader, desc=f"{run.method} epoch {epoch}/{run.settings.epochs}")
    cap, structures = run.settings.max_steps, 0
    for idx, (graphs, targets) in enumerate(bar, start=1):
        step = (epoch - 1) * run.n_batches + idx  # optimiser steps of the whole run
        if cap is not None and step > cap:
            break  # compute-matched: the last epoch ends at max_steps
        graphs, targets = to_device(graphs, targets, run.device, forces=True)
        prediction = predict_efsm(
            run.model, graphs, fused=run.fused, batched=run.settings.batched_collation
        )
        lr = run.optimizer.param_groups[0]["lr"]
        loss = _take_step(run, state, targets, prediction, epoch=epoch, idx=idx)
        sums.add(targets, prediction, loss)
        state.steps.append({"step": step, "epoch": epoch, "batch": idx,
                            "loss": loss, "train_energy_mae_running": sums.mae("e"), "lr": lr})
        structures += len(graphs)
        if run.progress:
            bar.set_postfix(loss=f"{loss:.4g}", e_mae=f"{sums.mae('e'):.4g}")
        del graphs, targets, prediction
    train_s = time.perf_counter() - t0
    state.run_train_s += train_s
    state.run_structures += structures
    return sums, train_s


def _take_step(
    run: TrainingRun, state: Progress, targets: dict, prediction: dict, *, epoch: int, idx: int
) -> float:
    """Loss, backward, gradient record, optimizer and (every tenth) scheduler step."""
    loss = run.loss_fn(targets, prediction)["loss"]
    if not torch.isfinite(loss):
        write_tables(run.out_dir, state.history, state.gradients, state.steps)
        raise FloatingPointError(
            f"{run.method}: training loss is {float(loss)} at epoch {epoch}, batch {idx}"
        )
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.recorder is not None:
        run.recorder.after_backward(epoch=epoch, step=idx)
    run.optimizer.step()
    if idx in run.sched_steps:
        run.scheduler.step()
    return float(loss)


def _validate(
    run: TrainingRun, state: Progress, epoch: int, *, sums: ErrorSums, lr: float, train_s: float
) -> float | None:
    """History rows of the epoch (train, and val when due); the model-selection metric."""
    state.history.append(
        {"epoch": epoch, "split": "train", **sums.row(), "lr": lr, "wall_s": train_s}
    )
    epochs, every = run.settings.epochs, run.settings.validate_every
    message = (
        f"{run.method} epoch {epoch}/{epochs}: train E {1000 * sums.mae('e'):.1f} meV/atom, "
        f"F {1000 * sums.mae('f'):.1f} meV/Å ({train_s:.1f} s)"
    )
    validate_now = epoch == epochs or bool(every and epoch % every == 0)
    metric: float | None = None
    if run.val_loader is not None and validate_now:
        t0 = time.perf_counter()
        vsums = run.evaluate(desc="val")
        state.history.append(
            {
                "epoch": epoch,
                "split": "val",
                **vsums.row(),
                "lr": lr,
                "wall_s": time.perf_counter() - t0,
            }
        )
        metric = vsums.mae("e")
        message += f"; val E {1000 * metric:.1f} meV/atom, F {1000 * vsums.mae('f'):.1f} meV/Å"
    elif run.val_loader is None:
        metric = sums.mae("e")
    logger.info(message)
    return metric


def _save_epoch(run: TrainingRun, state: Progress, epoch: int, metric: float | None) -> None:
    """The best model (if this epoch is), the epoch's checkpoint, and the tables so far."""
    if metric is not None and metric < state.best["energy_mae"]:
        state.best = {"epoch": epoch, "energy_mae": metric}
        _save_model(run, epoch, "model_best.pt")
    save_checkpoint(
        {
            "epoch": epoch,
            "model": run.model.as_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "rng": rng_state(),
            "settings": run.fingerprint,
            "history": state.history,
            "gradients": state.gradients,
            "steps": state.steps,
            "best": state.best,
            "val_before": state.val_before,
            "train_s": state.prior_train_s + state.run_train_s,
            "mlip_transfer": {"method": run.method, "info": dict(run.info)},
        },
        epoch_checkpoint(run.out_dir, epoch),
    )
    if run.settings.keep_checkpoints is not None:
        prune_checkpoints(run.out_dir, run.settings.keep_checkpoints)
    write_tables(run.out_dir, state.history, state.gradients, state.steps)


def _finish(run: TrainingRun, state: Progress) -> TrainResult:
    """Tables, final (and, if no epoch was ever best, best) model, ``train_summary.json``."""
    epochs = run.settings.epochs
    hist, grads = write_tables(run.out_dir, state.history, state.gradients, state.steps)
    _save_model(run, epochs, "model_final.pt")
    if not (run.out_dir / "model_best.pt").exists():  # every epoch's metric was NaN
        _save_model(run, epochs, "model_best.pt")
    content = summary(run, state)
    write_summary(run.out_dir, content)
    logger.info(
        "%s: done; best epoch %s, val before %s, after %s",
        run.method,
        state.best["epoch"],
        format_errors(state.val_before),
        format_errors(content["val_after"]),
    )
    return TrainResult(
        out_dir=run.out_dir,
        model=run.model,
        history=hist,
        gradients=grads,
        summary=content,
        files={name: run.out_dir / name for name in OUTPUT_FILES},
    )


def _save_model(run: TrainingRun, epoch: int, name: str) -> None:
    """``model_step0.pt``, ``model_best.pt`` or ``model_final.pt``: the model as it is after
    ``epoch`` (0: before training)."""
    save_torch_atomic(model_file(run.model, run.method, run.info, epoch), run.out_dir / name)
