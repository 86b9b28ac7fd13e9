"""Perturb a starting structure and relax it with one teacher, keeping every snapshot."""

from __future__ import annotations

from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from mlip_transfer.data.surrogate.candidates import digest
from mlip_transfer.data.surrogate.settings import BuildSettings


def perturb(structure: Structure, *, seed: int, material_id: str, strain: float,
            rattle: float) -> Structure:
    """Strain the lattice and rattle the atoms with a generator seeded by (seed, material_id)."""
    rng = np.random.default_rng(int.from_bytes(digest("perturb", seed, material_id)[:8], "little"))
    eps = rng.uniform(-strain, strain, size=(3, 3))
    deformation = np.eye(3) + 0.5 * (eps + eps.T)  # symmetric: no rigid rotation
    lattice = structure.lattice.matrix @ deformation
    cart = structure.frac_coords @ lattice + rng.normal(0.0, rattle, size=(len(structure), 3))
    return Structure(Lattice(lattice), structure.species, cart, coords_are_cartesian=True)


def kept_steps(n_snapshots: int, k: int) -> list[int]:
    """Indices of the first, the last and evenly spaced snapshots between (at most ``k``)."""
    if k == 1:
        return [n_snapshots - 1]
    return sorted({int(i) for i in np.round(np.linspace(0, n_snapshots - 1, min(k, n_snapshots)))})


def relax(
    structure: Structure, calculator: Any, settings: BuildSettings, *, magmoms: bool = True
) -> tuple[list[dict], bool]:
    """Relax with one teacher's ASE calculator; return every snapshot (step 0 = start) and
    whether FIRE converged. ``magmoms=False``: the teacher predicts none (snapshots hold None)."""
    from ase import units
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator
    snapshots: list[dict] = []

    def observe() -> None:
        snapshots.append({
            "lattice": np.array(atoms.get_cell()[:], dtype=float),
            "frac_coords": atoms.get_scaled_positions(wrap=True),
            "energy": float(atoms.get_potential_energy()),
            "forces": np.array(atoms.get_forces(), dtype=float),
            # Every teacher gives ASE stress (eV/Å³, positive = tensile); frames hold GPa.
            "stress": np.array(atoms.get_stress(voigt=False), dtype=float) / units.GPa,
            "magmoms": np.array(atoms.get_magnetic_moments(), dtype=float) if magmoms else None,
        })

    target = FrechetCellFilter(atoms) if settings.relax_cell else atoms
    optimizer = FIRE(target, logfile=None)
    optimizer.attach(observe, interval=1)
    converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.max_steps))
    return snapshots, converged


def is_finite(snapshot: dict) -> bool:
    """Whether every label of a snapshot is finite (labels a teacher lacks are None)."""
    return all(np.all(np.isfinite(value)) for value in snapshot.values() if value is not None)
