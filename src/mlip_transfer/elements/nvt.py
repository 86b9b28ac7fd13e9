"""The NVT stability test of a learned model, for any ASE calculator (no model code here).

A run is *unstable* as soon as one of these happens (checked every ``check_every`` steps):

* ``nan``: energy, forces or positions are not finite (or the model fails on the structure);
* ``overlap``: two atoms closer than ``min_distance`` (Å);
* ``runaway``: instantaneous kinetic temperature above ``max_temperature_factor`` x target.

Stable runs also yield frames (every ``sample_every_fs`` after ``equilibration_ps``) for the
structure analysis (:mod:`mlip_transfer.elements.structure`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from matscipy.neighbours import neighbour_list
from tqdm.auto import tqdm

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.elements.sampling import LangevinSettings, langevin_nvt

logger = logging.getLogger("mlip_transfer.elements.md")
REASONS = ("nan", "overlap", "runaway")


@dataclass(frozen=True, kw_only=True)
class MDSettings(LangevinSettings):
    """One Langevin NVT run (and :class:`LangevinSettings`) and its stability criteria."""

    temperature: float = 1200.0
    duration_ps: float = 1.0
    min_distance: float = 1.6
    max_temperature_factor: float = 2.5
    check_every: int = 10
    sample_every_fs: float = 50.0
    equilibration_ps: float = 0.2

    def __post_init__(self) -> None:
        if min(self.temperature, self.duration_ps, self.timestep_fs, self.friction_per_fs) <= 0:
            raise ConfigError("MD temperature, duration, time step and friction must be positive")
        if self.check_every < 1 or self.max_temperature_factor <= 1 or self.min_distance <= 0:
            raise ConfigError("MD check_every >= 1, max_temperature_factor > 1, min_distance > 0")

    @classmethod
    def from_config(cls, settings: dict[str, Any]) -> MDSettings:
        """From the config's ``stability:`` mapping (its run count and model size are not MD settings)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in settings.items() if key in names})

    @property
    def n_steps(self) -> int:
        return max(1, round(self.duration_ps * 1000 / self.timestep_fs))


def min_distance(atoms: Atoms, below: float) -> float:
    """Smallest interatomic distance if it is below ``below``, else ``inf``."""
    d = neighbour_list(
        "d",
        positions=atoms.positions,
        cell=atoms.cell.array,
        pbc=np.array([True, True, True]),
        numbers=atoms.numbers.astype(np.int32),
        cutoff=float(below),
    )
    return float(d.min()) if len(d) else math.inf


def run_nvt(
    *,
    atoms: Atoms,
    calculator: Calculator,
    settings: MDSettings,
    seed: int,
    label: str = "md",
    progress: bool = False,
) -> dict[str, Any]:
    """One Langevin NVT run from ``atoms`` (copied) with fresh Maxwell-Boltzmann velocities.

    Returns: ``stable``, ``reason`` (one of :data:`REASONS` or ``""``), ``failed_at_ps``,
    ``steps``, ``max_temperature``, ``closest`` (smallest distance seen at the checks, capped at
    the threshold search), and ``frames``: positions sampled after equilibration (n, atoms, 3).
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    dynamics = langevin_nvt(atoms, temperature=settings.temperature, settings=settings, rng=rng)
    sample_every = max(1, round(settings.sample_every_fs / settings.timestep_fs))
    first_sample = round(settings.equilibration_ps * 1000 / settings.timestep_fs)
    frames, max_temperature, reason, step = [], 0.0, "", 0
    bar = tqdm(total=settings.n_steps, desc=label, unit="step", disable=not progress, mininterval=5)
    while step < settings.n_steps:
        chunk = min(settings.check_every, settings.n_steps - step)
        try:
            dynamics.run(chunk)
            forces = atoms.get_forces()
            energy = atoms.get_potential_energy()
        except (DataError, FloatingPointError, RuntimeError, ValueError) as exc:
            # A structure the model cannot even be evaluated on (NaN positions, fused atoms).
            logger.info("%s: model failed at step %d (%s)", label, step + chunk, exc)
            reason = "nan"
        else:
            if not (np.all(np.isfinite(atoms.positions)) and np.all(np.isfinite(forces)) and math.isfinite(energy)):
                reason = "nan"
            elif min_distance(atoms, settings.min_distance) < settings.min_distance:
                reason = "overlap"
            else:
                temperature = float(atoms.get_temperature())
                max_temperature = max(max_temperature, temperature)
                if not math.isfinite(temperature) or temperature > settings.max_temperature_factor * settings.temperature:
                    reason = "runaway"
        step += chunk
        bar.update(chunk)
        if reason:
            break
        if step >= first_sample and step % sample_every < chunk:
            frames.append(atoms.get_positions(wrap=True))
    bar.close()
    return {
        "stable": not reason,
        "reason": reason,
        "failed_at_ps": step * settings.timestep_fs / 1000 if reason else None,
        "steps": step,
        "max_temperature": max_temperature,
        "frames": np.asarray(frames, dtype=np.float32).reshape(-1, len(atoms), 3),
    }
