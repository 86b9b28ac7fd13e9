"""The settings of the data-budget estimate (config ``data_budget``), checked once when made."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlip_transfer.core.errors import ConfigError

SCRATCH = "1_scratch"
TRANSFER_METHODS = ("4_refit_atomref", "4r_residual_atomref")
KNOWN_METHODS = (SCRATCH, "2_trainable_gga_atomref", "3_frozen_gga_atomref", *TRANSFER_METHODS)
ATOMREF_FRAMES = ("all", "subset")


@dataclass(frozen=True, kw_only=True)
class DataBudgetSettings:
    """How the learning curves of the data-budget estimate are made and read.

    Attributes:
        methods: Methods with a learning curve; ``1_scratch`` is the baseline the transfer
            methods are compared with (no verdict without it).
        fractions: Subsample sizes as fractions of the full training size N_full (each in
            (0, 1): every point lies below N_full, which is then an extrapolation).
        max_size: Cap on the largest subsample (frames); when ``max(fractions) * N_full``
            exceeds it, every size is scaled down by the same factor, so the points keep their
            spacing in log N and only the extrapolation grows. None: no cap.
        seeds: One training per seed and size (subset, initialisation, shuffling).
        confidence: Level of the prediction interval (e.g. 0.9).
        atomref_frames: ``all``: the AtomRef of Methods 1/4/4r is fitted on the whole training
            split, as in ``train_method`` (the full-size recipe); ``subset``: on the point's own
            frames.
        mem_mb: Memory one point job declares.

    Raises:
        ConfigError: A setting out of range, naming its ``data_budget`` key.
    """

    methods: Sequence[str]
    fractions: Sequence[float]
    max_size: int | None = None
    seeds: Sequence[int] = (0,)
    confidence: float = 0.9
    atomref_frames: str = "all"
    mem_mb: int = 4000

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "fractions", tuple(sorted(float(f) for f in self.fractions)))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        unknown = [m for m in self.methods if m not in KNOWN_METHODS]
        if unknown or not self.methods or len(set(self.methods)) != len(self.methods):
            raise ConfigError(
                f"data_budget.methods: {list(self.methods)} must be distinct methods of "
                f"{list(KNOWN_METHODS)} (unknown: {unknown})"
            )
        if len(set(self.fractions)) < 2 or not all(0 < f < 1 for f in self.fractions):
            raise ConfigError(
                f"data_budget.fractions: {list(self.fractions)} must be at least two distinct "
                "fractions strictly between 0 and 1 of the full training size"
            )
        if self.max_size is not None and self.max_size < len(self.fractions):
            raise ConfigError(
                f"data_budget.max_size: {self.max_size} leaves no room for "
                f"{len(self.fractions)} distinct sizes"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"data_budget.seeds: {list(self.seeds)} must be distinct, at least one")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"data_budget.confidence: {self.confidence} must lie in (0, 1)")
        if self.atomref_frames not in ATOMREF_FRAMES:
            raise ConfigError(
                f"data_budget.atomref_frames: {self.atomref_frames!r}, expected one of {ATOMREF_FRAMES}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> DataBudgetSettings:
        """Settings from the config's ``data_budget`` section (``mem_mb`` optional)."""
        keys = ("methods", "fractions", "max_size", "seeds", "confidence", "atomref_frames", "mem_mb")
        return cls(**{key: section[key] for key in keys if key in section})

    def sizes(self, n_full: int) -> dict[float, int]:
        """Subsample size of each fraction for a training split of ``n_full`` frames.

        Raises:
            ConfigError: ``n_full`` too small for distinct sizes below it.
        """
        base = float(n_full)
        if self.max_size is not None and max(self.fractions) * base > self.max_size:
            base = self.max_size / max(self.fractions)
        sizes = {f: max(1, round(f * base)) for f in self.fractions}
        if len(set(sizes.values())) != len(sizes) or max(sizes.values()) >= n_full:
            raise ConfigError(
                f"data_budget.fractions {list(self.fractions)} of {n_full} training frames give "
                f"sizes {sorted(sizes.values())}: need distinct sizes below the full size "
                "(more training frames, or fractions further apart)"
            )
        return sizes
