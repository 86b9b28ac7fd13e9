"""Settings and fixed names of a surrogate build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.data.surrogate.teacher_models import check_teachers

FUNCTIONALS = ("gga", "r2scan")
# The teachers of datasets built before ``teachers`` was a setting (the shipped one among them).
LEGACY_TEACHERS = ("chgnet-0.3.0", "chgnet-r2scan")
ELEMENT_PREFIX = "elem-"
DEFAULT_WBM_PATH = Path("resources/reference/wbm-random-pbe52-equilibrium-2025.1.json.gz")
DEFAULT_ELEMENTAL_PATH = Path("resources/reference/MatPES-PBE-Element-Refs.json.gz")
DEFAULT_OUT_DIR = Path("resources/default_dataset")
SUMMARY_FILE = "build_summary.json"


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """Settings of a surrogate build.

    Attributes:
        n_materials: WBM materials to draw (elemental references come on top).
        seed: Seed of the material selection and of every perturbation.
        strain: Largest magnitude of each (symmetric) lattice strain component.
        rattle: Standard deviation of the Gaussian atomic displacements, Å.
        fmax: Force convergence criterion of FIRE, eV/Å (includes cell forces).
        max_steps: FIRE step limit; unconverged relaxations are kept and flagged.
        frames_per_trajectory: Frames kept per relaxation (first, last, evenly between).
        processes: Worker processes; each relaxation runs on one torch thread regardless,
            so this changes speed, never the output.
        relax_cell: Relax the cell with ASE's FrechetCellFilter, not only positions.
        teachers: Names of the labelling potentials (:mod:`.teacher_models`): one GGA teacher
            and one or more r2SCAN teachers, each relaxing every start on its own.
        max_force: Frames with an atomic force above this (eV/Å) are dropped and listed: DIEP's
            float32 force spikes (65-75 eV/Å on about 1 % of structures) are not labels. The
            perturbed starts of the shipped build reach 54 eV/Å, so the cut sits above that.
    """

    n_materials: int = 250
    seed: int = 0
    strain: float = 0.05
    rattle: float = 0.05
    fmax: float = 0.1
    max_steps: int = 60
    frames_per_trajectory: int = 4
    processes: int = 2
    relax_cell: bool = True
    teachers: tuple[str, ...] = LEGACY_TEACHERS
    max_force: float = 60.0

    def __post_init__(self) -> None:
        # Lists from YAML or JSON become a tuple, so the settings stay hashable and comparable.
        object.__setattr__(self, "teachers", tuple(self.teachers))
        check_teachers(self.teachers)
        positive = ("n_materials", "fmax", "frames_per_trajectory", "processes", "max_force")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("strain", "rattle", "max_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}")
        if self.strain >= 0.5:
            raise ConfigError(f"strain must be below 0.5, got {self.strain!r}")
