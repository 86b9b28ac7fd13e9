"""Training until the validation force error stops improving: the stop rule and the split.

* :class:`EarlyStopping` records each validation (step, mean training loss since the one
  before, validation force MAE), keeps a copy of the best model's weights, and says when
  ``patience`` updates have passed without a new best. Its state is a plain dict, stored in
  the training checkpoint, so a resumed run stops where an uninterrupted one would.
* :func:`validation_split` holds validation frames out of a training pool before the training
  subset is drawn, so validation frames are never training frames (also for a 1-frame model).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlip_transfer.core.errors import ConfigError, DataError

CURVE_COLUMNS = ("step", "train_loss", "val_force_mae_mev_per_a")
VALIDATION_SEED = 7907  # one validation set for every size, seed and method


@dataclass(kw_only=True)
class EarlyStopping:
    """Stop rule on a validation error; keeps the best weights.

    Attributes:
        patience: Updates without a significant improvement before the run stops (0: never
            stop early; the best weights are still kept).
        min_rel_improvement: An error restarts the patience clock only if it is below
            ``reference * (1 - min_rel_improvement)``, ``reference`` being the error at the
            last such restart; any lower error still becomes the kept best.
        curve: One row per validation (:data:`CURVE_COLUMNS`).
        best_step, best_value: The lowest validation error so far (None before the first).
        best_state: A copy of the model's state dict at ``best_step``.
        improved_step, improved_value: The last significant improvement (the patience clock).
        stopped_at: The step the rule stopped the run at (None while running).
    """

    patience: int
    min_rel_improvement: float = 0.0
    curve: list[dict[str, float]] = field(default_factory=list)
    best_step: int | None = None
    best_value: float | None = None
    best_state: dict[str, Any] | None = None
    improved_step: int | None = None
    improved_value: float | None = None
    stopped_at: int | None = None

    def __post_init__(self) -> None:
        if self.patience < 0 or not 0 <= self.min_rel_improvement < 1:
            raise ConfigError(
                f"need patience >= 0 and 0 <= min_rel_improvement < 1, got {self.patience}, "
                f"{self.min_rel_improvement}"
            )

    def record(self, *, step: int, train_loss: float, value: float, state: dict[str, Any] | None) -> bool:
        """Record one validation; returns True when the run should stop now.

        Args:
            step: Updates done when validated.
            train_loss: Mean training loss since the previous validation (NaN at step 0).
            value: The validation force MAE (meV/Å).
            state: The model's state dict (copied if this is a new best).
        """
        self.curve.append(
            {"step": step, "train_loss": train_loss, "val_force_mae_mev_per_a": value}
        )
        if self.best_value is None or value < self.best_value:
            self.best_step, self.best_value = step, float(value)
            self.best_state = copy.deepcopy(state)
        if self.improved_value is None or value < self.improved_value * (1 - self.min_rel_improvement):
            self.improved_step, self.improved_value = step, float(value)
        if self.patience and step - self.improved_step >= self.patience:
            self.stopped_at = step
        return self.stopped_at is not None

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (goes into the checkpoint)."""
        return {
            "curve": list(self.curve), "best_step": self.best_step,
            "best_value": self.best_value, "best_state": self.best_state,
            "improved_step": self.improved_step, "improved_value": self.improved_value,
            "stopped_at": self.stopped_at,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.curve = list(state["curve"])
        self.best_step, self.best_value = state["best_step"], state["best_value"]
        self.best_state, self.stopped_at = state["best_state"], state["stopped_at"]
        self.improved_step, self.improved_value = state["improved_step"], state["improved_value"]


def validation_split(n_pool: int, *, size: int, validation_size: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the training subset and of the validation frames in a pool of ``n_pool``.

    The validation frames are the first ``validation_size`` of one fixed permutation (the same
    for every size, seed and method); the training subset is a ``seed``-ed draw of ``size``
    from the rest. Both are sorted and disjoint.

    Raises:
        DataError: The pool has fewer than ``size + validation_size`` frames.
    """
    if size < 1 or validation_size < 0:
        raise ConfigError(f"need size >= 1 and validation_size >= 0, got {size}, {validation_size}")
    if size + validation_size > n_pool:
        raise DataError(
            f"asked for {size} training and {validation_size} validation frames, the pool has {n_pool}"
        )
    held = np.random.default_rng(VALIDATION_SEED).permutation(n_pool)[:validation_size]
    rest = np.setdiff1d(np.arange(n_pool), held)
    order = np.random.default_rng([seed, 7919]).permutation(len(rest))
    return sorted(int(k) for k in rest[order[:size]]), sorted(int(k) for k in held)
