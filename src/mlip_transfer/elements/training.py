"""Force-matching training of DimeNet++ models, the energy shift, and test errors.

* Loss: mean squared error over force components (force matching only, as the study).
* Optimiser: Adam, learning rate cosine-decayed from ``learning_rate`` to ``final_learning_rate``
  over ``max_steps`` updates.
* Length: with validation frames and ``patience``, the run validates every ``validate_every``
  updates and stops when ``patience`` updates bring no new best validation force MAE, or at
  ``max_steps``; the best-validation weights are kept (:mod:`.convergence`), and the learning
  curve goes to ``curve.csv``. Without them it runs ``max_steps`` updates.
* Batches: frames are visited in a fresh seeded permutation per pass over the data, so the
  batch of every step is fixed by (seed, step) and a resumed run continues identically.
* Energy shift: after training, fitted on the training energies (:mod:`.evaluation`, which also
  holds the test errors; ``evaluate`` and ``fit_energy_shift`` are re-exported here).
* Checkpoints every ``checkpoint_every`` steps (model, optimiser, step, history, settings); a
  rerun with the same settings resumes from the newest readable one (an unreadable one is
  renamed to ``<name>.corrupt`` with a warning), one with other settings stops with a
  ConfigError naming each changed setting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from ase.data import atomic_numbers
from tqdm.auto import tqdm

from mlip_transfer.core.checkpoints import save_keeping_previous
from mlip_transfer.core.device import resolve_device
from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.files import write_csv_atomic
from mlip_transfer.data.dataset import Frame
from mlip_transfer.elements.compiled import CompiledForces
from mlip_transfer.elements.convergence import CURVE_COLUMNS, EarlyStopping
from mlip_transfer.elements.dimenet import (
    DimeNetPP,
    DimeNetSettings,
    copy_species_embedding,
    energy_and_forces,
    inputs_per_graph,
    load_model,
)
from mlip_transfer.elements.edge_basis import EdgeInputs
from mlip_transfer.elements.evaluation import evaluate, fit_energy_shift, frame_graph
from mlip_transfer.elements.graph import PeriodicGraph, collate
from mlip_transfer.elements.run_state import CHECKPOINT, PREVIOUS_CHECKPOINT, resume_run, run_signature

METHODS = ("scratch", "transfer")
TRAIN_ERROR_FRAMES = 20
__all__ = ["TrainSettings", "evaluate", "fit_energy_shift", "frame_graph", "frame_graphs",
           "new_optimizer", "start_model", "train_force_matching"]


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """One training run.

    Attributes:
        max_steps: Optimiser updates at most (the cap; all of them without early stopping).
        batch_size: Frames per update (capped at the number of training frames).
        learning_rate, final_learning_rate: Cosine schedule from the first to the second.
        seed: Seeds the batches (and, for scratch models, the initial weights).
        checkpoint_every: Steps between checkpoints (0: only at the end).
        device: ``cpu``, ``cuda``, ``cuda:0`` or ``auto``.
        patience: Updates without a new best validation error before stopping (0: none).
        validate_every: Updates between validations (0: never; needs validation frames).
        min_rel_improvement: A relative gain below this does not restart the patience clock
            (the lower error is still kept as the best).
        compile: Compute the training forces through ``torch.compile``
            (:mod:`mlip_transfer.elements.compiled`): ~1.4x faster updates after a compile of
            ~1 min (cold cache) or ~6 s (warm) per process; the same forces within float rounding,
            so it is left out of the run's signature and a run may resume with it switched.
    """

    max_steps: int
    batch_size: int = 4
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    seed: int = 0
    checkpoint_every: int = 50
    device: str = "cpu"
    patience: int = 0
    validate_every: int = 0
    min_rel_improvement: float = 0.0
    compile: bool = False

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1:
            raise ConfigError(
                f"max_steps and batch_size must be >= 1, got {self.max_steps}, {self.batch_size}"
            )
        if self.patience < 0 or self.validate_every < 0:
            raise ConfigError("patience and validate_every must be >= 0")
        if self.patience and not self.validate_every:
            raise ConfigError("patience needs validate_every >= 1")
        if not 0 < self.final_learning_rate <= self.learning_rate:
            raise ConfigError(
                "need 0 < final_learning_rate <= learning_rate, got "
                f"{self.final_learning_rate}, {self.learning_rate}"
            )
        if self.checkpoint_every < 0:
            raise ConfigError("checkpoint_every must be >= 0")


def frame_graphs(frames: Sequence[Frame], *, cutoff: float, progress: bool = False) -> list[PeriodicGraph]:
    return [
        frame_graph(frame, cutoff=cutoff)
        for frame in tqdm(frames, desc="graphs", unit="frame", disable=not progress, leave=False)
    ]


def new_model(settings: DimeNetSettings, *, seed: int) -> DimeNetPP:
    """A randomly initialised model (seeded)."""
    torch.manual_seed(seed)
    return DimeNetPP(settings=settings)


def new_optimizer(model: DimeNetPP, settings: TrainSettings) -> torch.optim.Adam:
    """Adam over the trainable weights; the fused kernel where torch has one (CPU, CUDA)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = params[0].device.type in ("cpu", "cuda") and params[0].dtype.is_floating_point
    return torch.optim.Adam(params, lr=settings.learning_rate, fused=fused)


def start_model(
    method: str,
    *,
    settings: DimeNetSettings,
    seed: int,
    source_model: str | Path | None = None,
    source_element: str = "Si",
    target_element: str = "Ge",
) -> tuple[DimeNetPP, dict[str, Any]]:
    """The starting model of a target-element training.

    ``scratch``: random weights (seeded). ``transfer``: every weight of the source model, the
    source element's species embedding copied into the target element's row (so the target
    never starts from an untrained embedding); the energy shift is refitted after training.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if method == "scratch":
        return new_model(settings, seed=seed), {"method": method, "seed": seed}
    if source_model is None:
        raise ConfigError("method 'transfer' needs a source model file")
    model, info = load_model(source_model)
    if asdict(model.settings) != asdict(settings):
        raise ConfigError(
            f"source model {source_model} has architecture {asdict(model.settings)}, the config "
            f"asks for {asdict(settings)}"
        )
    z_source, z_target = atomic_numbers[source_element], atomic_numbers[target_element]
    copy_species_embedding(model, source=z_source, target=z_target)
    return model, {
        "method": method,
        "seed": seed,
        "source_model": str(source_model),
        "source_info": info,
        "embedding": f"row {z_source} ({source_element}) copied into row {z_target} ({target_element})",
    }


def _force_targets(frames: Sequence[Frame], dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.as_tensor(np.asarray(f.forces), dtype=dtype) for f in frames]


def _batch_indices(step: int, n: int, batch_size: int, seed: int) -> np.ndarray:
    """Frames of update ``step``: consecutive slots of per-pass seeded permutations."""
    slots = np.arange(step * batch_size, (step + 1) * batch_size)
    passes = slots // n
    out = np.empty(len(slots), dtype=np.int64)
    for p in np.unique(passes):
        order = np.random.default_rng([seed, int(p)]).permutation(n)
        out[passes == p] = order[slots[passes == p] % n]
    return np.unique(out)


def cosine_lr(step: int, settings: TrainSettings) -> float:
    lr0, lr1 = settings.learning_rate, settings.final_learning_rate
    return lr1 + 0.5 * (lr0 - lr1) * (1 + math.cos(math.pi * step / settings.max_steps))


def _validate(model: DimeNetPP, frames: Sequence[Frame], graphs: Sequence[PeriodicGraph]) -> float:
    """Force MAE (meV/Å) on the validation frames; leaves the model in training mode."""
    mae = evaluate(model, frames, graphs=graphs)["force_mae_mev_per_a"]
    model.train()
    return mae


def _mean_loss(history: Sequence[dict[str, float]], since: int) -> float:
    losses = [row["loss"] for row in history if row["step"] > since]
    return float(np.mean(losses)) if losses else float("nan")


def train_force_matching(
    *,
    model: DimeNetPP,
    frames: Sequence[Frame],
    settings: TrainSettings,
    out_dir: str | Path,
    label: str = "model",
    progress: bool = True,
    val_frames: Sequence[Frame] = (),
) -> dict[str, Any]:
    """Train ``model`` in place on the frames' forces, then fit its energy shift.

    Writes ``history.csv`` (step, loss, force RMSE of the batch, learning rate, wall time),
    ``curve.csv`` (step, mean training loss, validation force MAE; only with ``val_frames``)
    and ``checkpoint.pt`` (the one before kept as ``checkpoint.previous.pt``, the fallback when
    ``checkpoint.pt`` is unreadable) in ``out_dir``; returns a summary (updates, best step,
    whether the stop rule ended the run, wall time, resumed step, shift, errors on up to
    :data:`TRAIN_ERROR_FRAMES` training frames).

    Args:
        val_frames: Validation frames (never training frames); with them the run validates
            every ``settings.validate_every`` updates, stops after ``settings.patience``
            updates without a new best, and ends with the best-validation weights.

    Raises:
        DataError: No frames, or a frame without forces.
        ConfigError: A checkpoint in ``out_dir`` was written with other settings or frames,
            or ``patience`` is set without validation frames.
        FloatingPointError: The loss became NaN or infinite.
    """
    frames = _labelled_frames(frames)
    val_frames = _labelled_frames(val_frames) if val_frames else []
    if settings.patience and not val_frames:
        raise ConfigError(f"{label}: patience {settings.patience} needs validation frames")
    validate_every = settings.validate_every if val_frames else 0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    dtype = next(model.parameters()).dtype
    model.to(device)
    graphs = frame_graphs(frames, cutoff=model.cutoff, progress=progress)
    val_graphs = frame_graphs(val_frames, cutoff=model.cutoff)
    targets = _force_targets(frames, dtype)
    edge_inputs = inputs_per_graph(model, graphs, dtype=dtype, device=device)  # fixed geometry
    forces_of = CompiledForces(model) if settings.compile and edge_inputs else None
    batch_size = min(settings.batch_size, len(frames))
    optimizer = new_optimizer(model, settings)
    stopper = EarlyStopping(patience=settings.patience,
                            min_rel_improvement=settings.min_rel_improvement)
    signature, run_settings = run_signature(settings, frames, model, val_frames)
    start_step, history, resumed = resume_run(
        out_dir, signature, run_settings, model, optimizer, stopper, label
    )
    resumed_or_saved = resumed

    def save(step: int) -> None:
        state = {"signature": signature, "settings": run_settings, "step": step, "history": history}
        state.update(model=model.state_dict(), optimizer=optimizer.state_dict(),
                     early_stop=stopper.state_dict())
        save_keeping_previous(state, out_dir / CHECKPOINT, out_dir / PREVIOUS_CHECKPOINT)

    def validate(step: int) -> bool:
        value = _validate(model, val_frames, val_graphs)
        since = stopper.curve[-1]["step"] if stopper.curve else 0
        return stopper.record(step=step, train_loss=_mean_loss(history, since), value=value,
                              state=model.state_dict())

    wall_start = time.perf_counter()
    model.train()
    if validate_every and not stopper.curve:
        validate(0)  # the starting model: transfer may already be the best
    end = start_step if stopper.stopped_at is not None else settings.max_steps
    bar = tqdm(range(start_step, end), desc=label, unit="step", disable=not progress, mininterval=5)
    for step in bar:
        chosen = _batch_indices(step, len(frames), batch_size, settings.seed)
        batch = collate([graphs[k] for k in chosen], dtype=dtype).to(device)
        target = torch.cat([targets[k] for k in chosen]).to(device)
        inputs = EdgeInputs.concatenate([edge_inputs[k] for k in chosen]) if edge_inputs else None
        row = _take_step(model, optimizer, batch, target, lr=cosine_lr(step, settings), label=label,
                         step=step, inputs=inputs, forces_of=forces_of)
        history.append({**row, "wall_s": time.perf_counter() - wall_start})
        stop = bool(validate_every and (step + 1) % validate_every == 0 and validate(step + 1))
        if stop or (settings.checkpoint_every and (step + 1) % settings.checkpoint_every == 0):
            save(step + 1)
            resumed_or_saved = step + 1
        if stop:
            break
    bar.close()
    trained = len(history)
    if resumed_or_saved != trained:  # not twice: the one before stays the fallback
        save(trained)
    write_csv_atomic(out_dir / "history.csv", pd.DataFrame(history), index=False)
    if val_frames:
        write_csv_atomic(out_dir / "curve.csv", pd.DataFrame(stopper.curve, columns=CURVE_COLUMNS),
                         index=False)
    if stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
    fitted = _after_training(model, graphs, frames, seed=settings.seed)  # before wall_s: counted
    return {
        "label": label,
        "frames": len(frames),
        "validation_frames": len(val_frames),
        "steps": trained,
        "max_steps": settings.max_steps,
        "best_step": trained if stopper.best_step is None else stopper.best_step,
        "best_val_force_mae_mev_per_a": stopper.best_value,
        "stopped_early": stopper.stopped_at is not None,
        "converged": stopper.stopped_at is not None,
        "batch_size": batch_size,
        "forces": _forces_path(forces_of, edge_inputs is not None),
        "resumed_from_step": resumed,
        "wall_s": time.perf_counter() - wall_start,
        **fitted,
        "settings": asdict(settings),
    }


def _forces_path(forces_of: CompiledForces | None, edge_path: bool) -> str:
    """How the training forces were computed, for the summary."""
    if not edge_path:
        return "reference (triplets, autograd through the positions)"
    if forces_of is None:
        return "edge path, eager"
    return "edge path, compiled" if forces_of.failed is None else f"edge path, eager (compile failed: {forces_of.failed})"


def _labelled_frames(frames: Sequence[Frame]) -> list[Frame]:
    """The frames as a list; DataError if there are none or one has no forces."""
    frames = list(frames)
    if not frames:
        raise DataError("no training frames")
    for frame in frames:
        if frame.forces is None:
            raise DataError("training frame has no forces", record=frame.frame_id, field="forces")
    return frames


def _take_step(
    model: DimeNetPP,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    target: torch.Tensor,
    *,
    lr: float,
    label: str,
    step: int,
    inputs: EdgeInputs | None = None,
    forces_of: CompiledForces | None = None,
) -> dict[str, float]:
    """One Adam update on the force MSE at learning rate ``lr``; its history row (no time).

    ``inputs``: the batch's edge inputs, if already computed (see ``energy_and_forces``);
    ``forces_of``: compiled forces to use with them (``TrainSettings.compile``).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    if forces_of is not None and inputs is not None:
        forces = forces_of(batch, inputs)
    else:
        _, forces = energy_and_forces(model, batch, create_graph=True, inputs=inputs)
    loss = torch.mean((forces - target) ** 2)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{label}: loss is {loss.item()} at step {step}")
    optimizer.zero_grad(set_to_none=True)
    # Only the weights: differentiating the loss by the geometry as well costs ~10 % of a step.
    loss.backward(inputs=[p for group in optimizer.param_groups for p in group["params"]])
    optimizer.step()
    return {
        "step": step + 1,
        "loss": float(loss.detach()),
        "batch_force_rmse": float(loss.detach().sqrt()),
        "lr": lr,
    }


def _after_training(
    model: DimeNetPP, graphs: Sequence[PeriodicGraph], frames: Sequence[Frame], *, seed: int
) -> dict[str, Any]:
    """The fitted energy shift and the errors on up to :data:`TRAIN_ERROR_FRAMES` frames."""
    model.eval()
    shift = fit_energy_shift(model, graphs, frames)
    # Training errors on at most TRAIN_ERROR_FRAMES frames: forces of all 195 cost as much as
    # a third of the training itself on 2 CPU cores.
    shown = sorted(np.random.default_rng(seed).permutation(len(frames))[:TRAIN_ERROR_FRAMES])
    errors = evaluate(model, [frames[k] for k in shown], graphs=[graphs[k] for k in shown])
    return {"energy_shift_per_atom": shift, "train_errors": errors}
