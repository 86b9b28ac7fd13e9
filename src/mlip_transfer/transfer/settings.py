"""The settings of one CHGNet training, checked once when they are made."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlip_transfer.core.errors import ConfigError

CRITERIA = ("Huber", "MSE", "mse", "MAE", "mae", "l1")
# Keys of the config's ``training`` section that every training job takes as they are.
CONFIG_KEYS = (
    "epochs", "batch_size", "learning_rate", "final_learning_rate", "loss_ratios", "criterion",
    "device", "seed",
)


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """How :func:`mlip_transfer.transfer.trainer.train` trains.

    Attributes:
        epochs: Total number of epochs (also fixes the cosine schedule length).
        batch_size: Adam batch size.
        learning_rate, final_learning_rate: Cosine learning-rate range.
        loss_ratios: Energy, force, stress, magmom weights of ``CombinedLoss``.
        criterion: ``"Huber"`` (delta 0.1), ``"MSE"`` or ``"MAE"``.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
        seed: Seed of the per-epoch shuffling (epoch ``N`` uses ``seed``, ``N``, so a resumed
            run sees the same order) and of the global RNGs at the start.
        validate_every: Validate after every this many epochs and after the last; ``None``:
            only before training and after the last epoch (many short jobs, e.g. the scaling
            law, where validation would cost more than training). The best model is chosen
            among validated epochs.
        keep_checkpoints: Keep only the newest this many ``checkpoint_epoch*.pt`` (None: all).
        max_steps: Stop after this many optimiser steps in all, within the last epoch
            (the cosine schedule then ends there); None: every batch of every epoch. The
            compute-matched scaling law gives every job the same number.
        validate_before: Validate before the first step (``epoch`` 0 of the history, the
            summary's ``val_before``); False skips it where only the last epoch counts (the
            data-budget points). Validation takes no random numbers, so training is the same.
        fused_force_stress: Forces and stress from one gradient pass
            (:func:`mlip_transfer.transfer.forward.predict_efsm`), checked against
            ``CHGNet.forward`` on the first batch (falls back if they differ).
        batched_collation: Assemble each batch with batch-wide tensors
            (:func:`mlip_transfer.transfer.batching.batch_graphs`) instead of chgnet's
            graph-by-graph ``BatchedGraph.from_graphs``; the same numbers to float32 rounding,
            so it is not part of the checkpoint fingerprint.
        project_before_gather: Run chgnet's convolution layers with their first linear layer
            applied before the gather (:mod:`mlip_transfer.transfer.layers`; same parameters,
            float32 rounding; checked with the fused path, off where that check fails).

    Raises:
        ConfigError: A setting out of range.
    """

    epochs: int
    batch_size: int = 16
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    loss_ratios: Sequence[float] = (3, 1, 0.1, 1)
    criterion: str = "Huber"
    device: str = "auto"
    seed: int = 0
    validate_every: int | None = 1
    keep_checkpoints: int | None = None
    max_steps: int | None = None
    validate_before: bool = True
    fused_force_stress: bool = True
    batched_collation: bool = True
    project_before_gather: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss_ratios", tuple(self.loss_ratios))
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.validate_every is not None and self.validate_every < 1:
            raise ConfigError(f"validate_every must be >= 1 or None, got {self.validate_every}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if len(self.loss_ratios) != 4:
            raise ConfigError(
                "loss_ratios must be four numbers (energy, force, stress, magmom), got "
                f"{self.loss_ratios}"
            )
        if not 0 < self.final_learning_rate <= self.learning_rate:
            raise ConfigError(
                "need 0 < final_learning_rate <= learning_rate, got "
                f"{self.final_learning_rate}, {self.learning_rate}"
            )
        if self.criterion not in CRITERIA:
            raise ConfigError(
                f"criterion must be 'Huber', 'MSE' or 'MAE', got {self.criterion!r}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any], **overrides: Any) -> TrainSettings:
        """Settings from the config's ``training`` section (:data:`CONFIG_KEYS`), then overrides."""
        return cls(**{**{key: section[key] for key in CONFIG_KEYS}, **overrides})

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with some settings changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def fingerprint(
        self, *, method: str, train_frames: str, val_frames: str
    ) -> dict[str, Any]:
        """What a checkpoint must share to be resumed (and ``train_summary.json``'s settings).

        Args:
            method: The transfer method.
            train_frames, val_frames: Digests of the frame ids of the two splits.
        """
        return {
            "method": method,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "final_learning_rate": self.final_learning_rate,
            "loss_ratios": [float(x) for x in self.loss_ratios],
            "criterion": self.criterion,
            "seed": self.seed,
            **({"max_steps": self.max_steps} if self.max_steps is not None else {}),
            "train_frames": train_frames,
            "val_frames": val_frames,
        }
