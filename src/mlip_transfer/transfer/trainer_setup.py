"""Everything a CHGNet training holds fixed while it runs, set up once before the first epoch.

Graphs of both splits, the trainable parameters (the AtomRef only in Method 2), Adam, the
tenth-of-epoch cosine schedule, chgnet's ``CombinedLoss`` and the fused-forward check.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mlip_transfer.core.device import resolve_device
from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.forward import TASK, check_fused
from mlip_transfer.transfer.gradients import GradientRecorder
from mlip_transfer.transfer.graphs import (
    GraphCache,
    GraphDataset,
    make_loader,
    shared_graph_cache,
    short_sha,
)
from mlip_transfer.transfer.methods import TRAINABLE_ATOMREF, check_method
from mlip_transfer.transfer.metrics import ErrorSums, evaluate_loader
from mlip_transfer.transfer.settings import TrainSettings

CHECK_GRAPHS = 4  # graphs of the training set the fused path is checked on
logger = logging.getLogger("mlip_transfer.transfer.trainer")


def tenth_steps(n_batches: int) -> list[int]:
    """Batches (1-based) after which chgnet's Trainer steps its scheduler: every tenth."""
    return sorted({max(1, (k * n_batches) // 10) for k in range(1, 11)}) if n_batches else []


@dataclass(kw_only=True)
class TrainingRun:
    """The fixed parts of one training (see :func:`set_up`)."""

    model: Any
    method: str
    out_dir: Path
    settings: TrainSettings
    info: dict[str, Any]
    recorder: GradientRecorder | None
    progress: bool
    device: torch.device
    wall_start: float
    cache: GraphCache
    converted_before: int
    conversion_before: float
    train_set: GraphDataset
    val_set: GraphDataset
    skipped_train: list[str]
    skipped_val: list[str]
    fingerprint: dict[str, Any]
    n_trainable: int
    optimizer: torch.optim.Optimizer
    unseen: list[str]
    fused: bool
    projected: bool
    n_batches: int
    sched_steps: set[int]
    scheduler: Any
    loss_fn: Any
    val_loader: DataLoader | None

    def evaluate(self, *, desc: str) -> ErrorSums:
        """Errors and loss on the validation set."""
        return evaluate_loader(
            self.model, self.val_loader, self.device, self.loss_fn, progress=self.progress,
            desc=desc, fused=self.fused,
        )

    def bar(self, batches: Iterable, *, desc: str) -> Any:
        """A tqdm bar over batches (silent without ``progress``)."""
        return tqdm(batches, desc=desc, unit="batch", disable=not self.progress, leave=False)

    def log_start(self) -> None:
        logger.info(
            "%s: %d train / %d val frames (%d / %d without graph), %d batches per epoch, "
            "device %s, %d trainable parameters (AtomRef %s)",
            self.method,
            len(self.train_set),
            len(self.val_set),
            len(self.skipped_train),
            len(self.skipped_val),
            self.n_batches,
            self.device,
            self.n_trainable,
            "trainable" if TRAINABLE_ATOMREF[self.method] else "frozen",
        )


def _check_step_cap(settings: TrainSettings, n_batches: int) -> None:
    """``max_steps`` must end within the last epoch: more would leave it unreached, fewer
    would run epochs without a step."""
    first, last = (settings.epochs - 1) * n_batches + 1, settings.epochs * n_batches
    if not first <= settings.max_steps <= last:
        raise ConfigError(
            f"max_steps {settings.max_steps} does not end within epoch {settings.epochs} "
            f"({n_batches} batches per epoch: steps {first}-{last}); use "
            f"epochs = ceil(max_steps / {n_batches}) = {-(-settings.max_steps // n_batches)}"
        )


def set_up(
    *,
    model: Any,
    train_frames: Sequence[Frame],
    val_frames: Sequence[Frame],
    method: str,
    out_dir: str | Path,
    settings: TrainSettings,
    recorder: GradientRecorder | None,
    progress: bool,
    graph_cache: GraphCache | None,
    info: Mapping[str, Any] | None,
) -> TrainingRun:
    """Graphs, trainable parameters, optimizer, schedule, loss and checks of one training.

    Raises:
        ConfigError: Unknown method, or gradient layers the model does not have.
        DataError: No usable training frames.
    """
    from chgnet.trainer.trainer import CombinedLoss

    from mlip_transfer.transfer.layers import project_before_gather, restore_stock_layers

    check_method(method)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings.device)
    wall_start = time.perf_counter()
    train_frames, val_frames = list(train_frames), list(val_frames)
    cache = shared_graph_cache(model.graph_converter) if graph_cache is None else graph_cache
    converted_before, conversion_before = cache.n_converted, cache.conversion_s
    train_set, skipped_train = GraphDataset.from_frames(train_frames, cache, progress=progress)
    val_set, skipped_val = GraphDataset.from_frames(val_frames, cache, progress=progress)
    if not len(train_set):
        raise DataError("no training frames (none given, or none convertible to graphs)")
    optimizer, n_trainable = _optimizer(model, method, settings, device)
    unseen = _unseen_elements(method, train_frames, val_frames)
    if not settings.project_before_gather:  # load_chgnet hands models over projected
        restore_stock_layers(model)
    projected = settings.project_before_gather and project_before_gather(model) > 0
    # A few graphs are enough to catch a model the fused path does not fit; a whole batch
    # costs two second-order passes of CHGNet.forward per training.
    fused = settings.fused_force_stress and check_fused(
        model, train_set.graphs[:CHECK_GRAPHS], device, batched=settings.batched_collation
    )
    if projected and not fused:  # the check did not pass, or did not run: chgnet's layers
        restore_stock_layers(model)
        projected = False
    n_batches = math.ceil(len(train_set) / settings.batch_size)
    sched_steps = set(tenth_steps(n_batches))
    if settings.max_steps is not None:
        _check_step_cap(settings, n_batches)
    planned = settings.epochs * n_batches if settings.max_steps is None else settings.max_steps
    # Scheduler steps the run will take: every tenth of each epoch, up to the last step.
    n_sched = sum(1 for epoch in range(settings.epochs) for idx in sched_steps
                  if epoch * n_batches + idx <= planned)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer,
        T_max=max(1, n_sched),
        eta_min=settings.final_learning_rate,
    )
    ratios = settings.loss_ratios
    loss_fn = CombinedLoss(
        target_str=TASK,
        criterion=settings.criterion,
        energy_loss_ratio=ratios[0],
        force_loss_ratio=ratios[1],
        stress_loss_ratio=ratios[2],
        mag_loss_ratio=ratios[3],
        allow_missing_labels=True,
    )
    if recorder is not None:
        recorder.start(model, method=method, n_batches=n_batches, steps=sched_steps, rows=[])
    return TrainingRun(
        model=model, method=method, out_dir=out_dir, settings=settings, info=dict(info or {}),
        recorder=recorder, progress=progress, device=device, wall_start=wall_start, cache=cache,
        converted_before=converted_before, conversion_before=conversion_before,
        train_set=train_set, val_set=val_set, skipped_train=skipped_train,
        skipped_val=skipped_val,
        fingerprint=settings.fingerprint(
            method=method,
            train_frames=short_sha("\n".join(train_set.frame_ids)),
            val_frames=short_sha("\n".join(val_set.frame_ids)),
        ),
        n_trainable=n_trainable, optimizer=optimizer, unseen=unseen, fused=fused,
        projected=projected,
        n_batches=n_batches, sched_steps=sched_steps, scheduler=scheduler, loss_fn=loss_fn,
        val_loader=make_loader(val_set, settings.batch_size) if len(val_set) else None,
    )


def _optimizer(
    model: Any, method: str, settings: TrainSettings, device: torch.device
) -> tuple[torch.optim.Optimizer, int]:
    """Adam over the trainable parameters (the AtomRef only in Method 2), and their count."""
    model.to(device)
    for name, param in model.named_parameters():
        param.requires_grad_(
            TRAINABLE_ATOMREF[method] if name.startswith("composition_model.") else True
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=settings.learning_rate, weight_decay=0)
    return optimizer, sum(p.numel() for p in trainable)


def _unseen_elements(
    method: str, train_frames: list[Frame], val_frames: list[Frame]
) -> list[str]:
    """Elements of the validation frames that no training frame holds (logged as a warning)."""
    unseen = sorted(
        {el for f in val_frames for el in f.species}
        - {el for f in train_frames for el in f.species}
    )
    if unseen:
        logger.warning(
            "%s: validation frames hold elements absent from the training frames (%s): no "
            "AtomRef fit or training reaches them",
            method,
            ", ".join(unseen),
        )
    return unseen
