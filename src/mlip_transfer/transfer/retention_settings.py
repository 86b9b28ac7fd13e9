"""The settings of the retention report (``evaluation.retention``), checked once when made.

The report itself is :mod:`mlip_transfer.transfer.retention`; the dimer curves
:mod:`mlip_transfer.transfer.dimers`; the NVT runs :mod:`mlip_transfer.transfer.retention_md`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mlip_transfer.core.errors import ConfigError

# CHGNet's graph cutoffs (CrystalGraphConverter defaults): a dimer box must keep every periodic
# image of both atoms beyond the atom-graph cutoff.
ATOM_GRAPH_CUTOFF = 6.0
BOND_GRAPH_CUTOFF = 3.0


def _from_mapping(cls: type, section: Mapping[str, Any], where: str) -> Any:
    """``cls(**section)`` naming an unknown key as ``where.key``."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(names)})")
    return cls(**dict(section))


@dataclass(frozen=True, kw_only=True)
class DimerSettings:
    """Homonuclear dimers X–X in a cubic box, the distance shrinking from ``r_max`` to ``r_min``.

    Attributes:
        max_elements: The most frequent elements of the test materials (by the number of
            materials holding them; ties alphabetical), at most this many.
        r_min, r_max, step: The distance grid (Å), both ends included.
        box: Edge of the cubic box (Å); every periodic image stays beyond CHGNet's 6 Å atom
            graph cutoff.
        min_wall_ev: A wall lower than this (eV per dimer: the highest energy at distances
            below the curve's minimum, minus the minimum) is no wall.
        min_wall_ratio: A wall lower than this fraction of the source model's wall for the same
            element is lost by the fine-tune.
    """

    max_elements: int = 12
    r_min: float = 0.6
    r_max: float = 3.0
    step: float = 0.1
    box: float = 20.0
    min_wall_ev: float = 1.0
    min_wall_ratio: float = 0.5

    def __post_init__(self) -> None:
        if self.max_elements < 1:
            raise ConfigError(
                f"retention.dimers.max_elements must be >= 1, got {self.max_elements}")
        if not 0 < self.r_min < self.r_max or self.step <= 0:
            raise ConfigError(
                "retention.dimers needs 0 < r_min < r_max and step > 0, got "
                f"{self.r_min}, {self.r_max}, {self.step}"
            )
        if self.box - self.r_max <= ATOM_GRAPH_CUTOFF:
            raise ConfigError(
                f"retention.dimers.box {self.box} Å leaves a periodic image within CHGNet's "
                f"{ATOM_GRAPH_CUTOFF} Å cutoff at r_max {self.r_max}: need box > "
                f"{ATOM_GRAPH_CUTOFF + self.r_max}"
            )
        if self.min_wall_ev < 0 or not 0 <= self.min_wall_ratio <= 1:
            raise ConfigError(
                "retention.dimers needs min_wall_ev >= 0 and 0 <= min_wall_ratio <= 1")

    @property
    def distances(self) -> np.ndarray:
        """The grid, ascending (Å), rounded to 1e-6 so 0.6 + k x 0.1 prints as it reads."""
        n = int(np.floor((self.r_max - self.r_min) / self.step + 1e-9)) + 1
        return np.round(self.r_min + self.step * np.arange(n), 6)


@dataclass(frozen=True, kw_only=True)
class NVTSettings:
    """Short Langevin NVT runs from a few test structures, each stable or not.

    Attributes:
        structures: Test materials run (chosen by a hash of the id, as the relaxations).
        steps, timestep_fs, temperature, friction_per_fs: The run.
        min_atoms: A cell with fewer atoms is repeated along its shortest axis until it has
            at least this many.
        min_distance: Two atoms closer than this (Å) make the run unstable (``overlap``).
        max_temperature_factor: A kinetic temperature above this times ``temperature`` makes
            it unstable (``runaway``); non-finite energies, forces or positions too (``nan``).
        check_every: Steps between the checks (the time to failure is known to this many).
    """

    structures: int = 2
    steps: int = 200
    timestep_fs: float = 1.0
    temperature: float = 1000.0
    friction_per_fs: float = 0.02
    min_atoms: int = 8
    min_distance: float = 0.6
    max_temperature_factor: float = 3.0
    check_every: int = 10

    def __post_init__(self) -> None:
        if self.structures < 0 or self.steps < 1 or self.min_atoms < 1 or self.check_every < 1:
            raise ConfigError(
                "retention.nvt needs structures >= 0 and steps, min_atoms, check_every >= 1"
            )
        if min(self.timestep_fs, self.temperature, self.friction_per_fs, self.min_distance) <= 0:
            raise ConfigError(
                "retention.nvt timestep_fs, temperature, friction_per_fs and min_distance must "
                "be positive"
            )
        if self.max_temperature_factor <= 1:
            raise ConfigError("retention.nvt.max_temperature_factor must exceed 1")

    @property
    def duration_ps(self) -> float:
        return self.steps * self.timestep_fs / 1000


@dataclass(frozen=True, kw_only=True)
class RetentionSettings:
    """What the retention report measures (config ``evaluation.retention``).

    Attributes:
        enabled: Run the report after every fine-tune (rules ``retention_*``) and add its
            columns to Table 1.
        reference_models: Also report on the run's other reference models
            (``evaluation.reference_models``, e.g. CHGNet ``r2scan``, the paper's own fine-tune);
            the trained methods and the source model always have one.
        source_functional: Functional of the dataset's frames labelled like the source model
            (``gga``: MPtrj-style GGA/GGA+U); their error is reported where the test materials
            have such frames.
        max_frames: At most this many test frames per reference (a seeded subset, every
            element kept; :func:`mlip_transfer.transfer.frames.seeded_subset`).
        seed: Seed of that subset and of the NVT velocities and thermostat.
        batch_size: Prediction batch size.
        dimers: :class:`DimerSettings`.
        nvt: :class:`NVTSettings`.
    """

    enabled: bool = True
    reference_models: bool = False
    source_functional: str = "gga"
    max_frames: int | None = 100
    seed: int = 0
    batch_size: int = 16
    dimers: DimerSettings = field(default_factory=DimerSettings)
    nvt: NVTSettings = field(default_factory=NVTSettings)

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"retention.max_frames must be >= 1 or null, got {self.max_frames}")
        if self.batch_size < 1:
            raise ConfigError(f"retention.batch_size must be >= 1, got {self.batch_size}")

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any], *, seed: int = 0, batch_size: int = 16
    ) -> RetentionSettings:
        """From ``evaluation.retention`` (``dimers`` and ``nvt`` sub-mappings); ``seed`` and
        ``batch_size`` from the training and evaluation sections unless the section sets them."""
        values = {"seed": seed, "batch_size": batch_size, **dict(section)}
        values["dimers"] = _from_mapping(DimerSettings, values.get("dimers", {}),
                                         "retention.dimers")
        values["nvt"] = _from_mapping(NVTSettings, values.get("nvt", {}), "retention.nvt")
        return _from_mapping(cls, values, "retention")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the ``settings`` entry of ``retention.json``)."""
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)
               if f.name not in ("dimers", "nvt")},
            "dimers": {f.name: getattr(self.dimers, f.name) for f in fields(self.dimers)},
            "nvt": {f.name: getattr(self.nvt, f.name) for f in fields(self.nvt)},
        }
