"""Reference data: Langevin NVT molecular dynamics with the Stillinger-Weber potential (ASE).

Each set (an element, a temperature, ``pool`` or ``test``) is sampled from independent
trajectories that start from the perfect diamond cell at the reference lattice constant with
Maxwell-Boltzmann velocities, are equilibrated, and then yield one frame every ``interval_fs``.
Seeds derive from (seed, element, temperature, set, trajectory), so the pool and the test sets
never share a trajectory and reruns give identical frames.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary
from tqdm.auto import tqdm

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.data.dataset import Frame
from mlip_transfer.elements.stillinger_weber import check_element, diamond_cell, sw_calculator

logger = logging.getLogger("mlip_transfer.elements.sampling")

try:  # ASE >= 3.29; MaxwellBoltzmannDistribution is its deprecated wrapper (same draws)
    from ase.md.velocitydistribution import thermalize_momenta as _thermalize
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    def _thermalize(atoms, temperature_K, *, rng=None):
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)


def thermalize(atoms: object, temperature: float, *, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at ``temperature`` (K) drawn from ``rng``."""
    _thermalize(atoms, temperature, rng=rng)
FUNCTIONAL = "stillinger-weber"
SETS = ("pool", "test")


@dataclass(frozen=True, kw_only=True)
class LangevinSettings:
    """The Langevin NVT integrator shared by the reference sampling and the stability runs.

    Attributes:
        timestep_fs: MD time step.
        friction_per_fs: Langevin friction coefficient (1/fs).
    """

    timestep_fs: float = 2.0
    friction_per_fs: float = 0.02


@dataclass(frozen=True, kw_only=True)
class SamplingSettings(LangevinSettings):
    """How reference frames are sampled (and :class:`LangevinSettings`).

    Attributes:
        cell_repeats: Conventional diamond cells per direction (2: 64 atoms).
        equilibration_ps: Discarded time at the start of each trajectory.
        interval_fs: Time between kept frames.
        trajectories: Independent trajectories per set (frames are spread over them).
    """

    cell_repeats: int = 2
    equilibration_ps: float = 0.5
    interval_fs: float = 40.0
    trajectories: int = 2

    def __post_init__(self) -> None:
        for name in ("timestep_fs", "friction_per_fs", "interval_fs"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"sampling.{name} must be positive, got {getattr(self, name)}")
        if self.interval_fs < self.timestep_fs:
            raise ConfigError("sampling.interval_fs must be at least one time step")
        if self.trajectories < 1 or self.cell_repeats < 1 or self.equilibration_ps < 0:
            raise ConfigError("sampling.trajectories and cell_repeats must be >= 1, equilibration >= 0")


def langevin_nvt(
    atoms: Atoms, *, temperature: float, settings: LangevinSettings, rng: np.random.Generator
) -> Langevin:
    """Maxwell-Boltzmann velocities at ``temperature`` (K) and a Langevin NVT integrator.

    The momenta (drawn from ``rng``, then the same ``rng`` drives the thermostat) carry no
    centre-of-mass drift, and the centre of mass stays put through a constraint (ASE's
    recommended NVT setup).
    """
    thermalize(atoms, temperature, rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    return Langevin(
        atoms,
        timestep=settings.timestep_fs * units.fs,
        temperature_K=temperature,
        friction=settings.friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )


def set_seed(*parts: object) -> int:
    """A stable 32-bit seed from any parts (element, temperature, set, ...)."""
    return zlib.crc32(":".join(map(str, parts)).encode())


def _check_request(element: str, temperature: float, n_frames: int, set_name: str) -> None:
    check_element(element)
    if set_name not in SETS:
        raise ConfigError(f"set must be one of {SETS}, got {set_name!r}")
    if n_frames < 1 or temperature <= 0:
        raise ConfigError(f"need n_frames >= 1 and temperature > 0, got {n_frames}, {temperature}")


def _frame(
    atoms: Atoms, *, material_id: str, index: int, extra: dict[str, object]
) -> Frame:
    """The current state of a Stillinger-Weber trajectory as a labelled frame."""
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    if not (math.isfinite(energy) and np.all(np.isfinite(forces))):
        raise FloatingPointError(f"{material_id}: SW energy or forces not finite")
    return Frame(
        frame_id=f"{material_id}-{index:04d}",
        material_id=material_id,
        functional=FUNCTIONAL,
        species=tuple(atoms.get_chemical_symbols()),
        lattice=np.array(atoms.cell.array),
        frac_coords=atoms.get_scaled_positions(wrap=True),
        energy=energy,
        forces=np.array(forces),
        source="stillinger-weber",
        extra=extra,
    )


def sample_frames(
    *,
    element: str,
    temperature: float,
    n_frames: int,
    set_name: str,
    settings: SamplingSettings,
    seed: int = 0,
    progress: bool = True,
) -> list[Frame]:
    """Sample ``n_frames`` labelled frames of ``element`` at ``temperature`` (K).

    Frames carry ``extra``: element, temperature, set, trajectory, time_ps (since the start of
    the trajectory, equilibration included) and the instantaneous kinetic temperature.
    """
    _check_request(element, temperature, n_frames, set_name)
    n_traj = min(settings.trajectories, n_frames)
    per_traj = [n_frames // n_traj + (k < n_frames % n_traj) for k in range(n_traj)]
    interval = max(1, round(settings.interval_fs / settings.timestep_fs))
    equilibration = round(settings.equilibration_ps * 1000 / settings.timestep_fs)
    total_steps = n_traj * equilibration + n_frames * interval
    frames: list[Frame] = []
    bar = tqdm(
        total=total_steps, desc=f"SW {element} {temperature:g} K {set_name}", unit="step",
        disable=not progress, mininterval=5,
    )
    for trajectory, count in enumerate(per_traj):
        rng = np.random.default_rng(set_seed(seed, element, temperature, set_name, trajectory))
        atoms = diamond_cell(element, repeats=settings.cell_repeats)
        atoms.calc = sw_calculator(element)
        dynamics = langevin_nvt(atoms, temperature=temperature, settings=settings, rng=rng)
        if equilibration:
            dynamics.run(equilibration)
            bar.update(equilibration)
        material_id = f"sw-{element}-{temperature:g}K-{set_name}-t{trajectory}"
        for index in range(count):
            dynamics.run(interval)
            bar.update(interval)
            extra = {
                "element": element,
                "temperature": float(temperature),
                "set": set_name,
                "trajectory": trajectory,
                "time_ps": round(dynamics.nsteps * settings.timestep_fs / 1000, 6),
                "kinetic_temperature": float(atoms.get_temperature()),
            }
            frames.append(_frame(atoms, material_id=material_id, index=index, extra=extra))
    bar.close()
    logger.info(
        "%s %g K %s: %d frames from %d trajectories, mean energy %.4f eV/atom",
        element, temperature, set_name, len(frames), n_traj,
        np.mean([f.energy_per_atom for f in frames]),
    )
    return frames
