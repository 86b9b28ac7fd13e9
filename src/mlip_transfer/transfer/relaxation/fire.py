"""One relaxation: ASE's FIRE on any ASE calculator, every way it can end classified."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
from ase import Atoms
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlip_transfer.transfer.relaxation.outcomes import (
    RelaxSettings,
    blank_row,
    error_row,
    isolated_sites,
    isolation_message,
    max_nn_distance,
)


class _NonFinite(RuntimeError):
    pass


def relax_one(
    material_id: str, structure: Structure, calculator: Any, settings: RelaxSettings
) -> dict[str, Any]:
    """Relax one structure with an ASE calculator and classify the outcome (never raises).

    Returns a row with the keys of :data:`~mlip_transfer.transfer.relaxation.RESULT_COLUMNS`.
    """
    began = time.perf_counter()
    try:
        return _Relaxation(material_id, structure, calculator, settings).run()
    except Exception as exc:  # noqa: BLE001 - e.g. a structure ASE cannot represent
        return error_row(material_id, structure, f"{type(exc).__name__}: {exc}",
                         wall_s=time.perf_counter() - began)


class _Relaxation:
    """The state of one relaxation: the row being filled, the atoms and the start time."""

    def __init__(self, material_id: str, structure: Structure, calculator: Any,
                 settings: RelaxSettings) -> None:
        self.began = time.perf_counter()
        self.structure = structure
        self.settings = settings
        self.row = blank_row(material_id, structure)
        self.calculator = calculator
        self.atoms: Atoms | None = None

    def fail(self, reason: str, message: str, current: Structure | None) -> dict[str, Any]:
        """Mark the row failed (no usable energy), with the structure where it stopped."""
        row = self.row
        row.update(failed=True, failure=reason, message=message, energy_per_atom=math.nan)
        if current is not None:
            row["max_nn_distance"] = max_nn_distance(current)
            row["structure_json"] = json.dumps(current.as_dict())
        row["wall_s"] = time.perf_counter() - self.began
        return row

    def current_structure(self) -> Structure:
        atoms = self.atoms
        return Structure(Lattice(np.array(atoms.get_cell()[:])), list(self.structure.species),
                         atoms.get_positions(), coords_are_cartesian=True)

    def check_finite(self) -> None:
        """Stop FIRE (raise) at the first NaN or infinite energy, force or stress."""
        atoms = self.atoms
        values = [atoms.get_potential_energy(), atoms.get_forces()]
        if self.settings.relax_cell:
            values.append(atoms.get_stress())
        if not all(np.all(np.isfinite(value)) for value in values):
            raise _NonFinite("NaN or infinite energy, forces or stress")

    def run(self) -> dict[str, Any]:
        sites = isolated_sites(self.structure)
        if sites:
            return self.fail("isolated_atom", "start structure: "
                             + isolation_message(self.structure, sites), self.structure)
        self.atoms = atoms = AseAtomsAdaptor.get_atoms(self.structure)
        atoms.calc = self.calculator
        settings = self.settings
        target = FrechetCellFilter(atoms) if settings.relax_cell else atoms
        optimizer = FIRE(target, logfile=None)
        optimizer.attach(self.check_finite, interval=1)
        try:
            converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.max_steps))
            self.check_finite()  # the last step when max_steps is 0
        except _NonFinite as exc:
            self.row["n_steps"] = int(optimizer.nsteps)
            return self.fail("non_finite", f"step {optimizer.nsteps}: {exc}",
                             self.current_structure())
        except Exception as exc:  # a model failing on one structure must not stop the others
            self.row["n_steps"] = int(optimizer.nsteps)
            return self.failed_step(optimizer.nsteps, exc)
        return self.finished(converged, target, optimizer.nsteps)

    def failed_step(self, step: int, exc: Exception) -> dict[str, Any]:
        """Classify an exception raised in the middle of the relaxation."""
        atoms = self.atoms
        if not (np.all(np.isfinite(atoms.get_positions()))
                and np.all(np.isfinite(np.array(atoms.get_cell()[:])))):
            return self.fail("non_finite", f"step {step}: positions or cell became "
                             f"non-finite ({type(exc).__name__}: {exc})", None)
        try:
            current = self.current_structure()
            sites = isolated_sites(current)
        except Exception:  # noqa: BLE001 - the geometry itself may be broken (NaN cell)
            current, sites = None, []
        if sites:
            return self.fail("isolated_atom", f"step {step}: "
                             + isolation_message(current, sites), current)
        return self.fail("error", f"step {step}: {type(exc).__name__}: {exc}", current)

    def finished(self, converged: bool, target: Any, steps: int) -> dict[str, Any]:
        """The row of a relaxation that ran to the end, converged or not."""
        row, settings, atoms = self.row, self.settings, self.atoms
        final = self.current_structure()
        row["n_steps"] = int(steps)
        row["converged"] = converged
        row["max_force"] = float(np.sqrt((target.get_forces() ** 2).sum(axis=1).max()))
        sites = isolated_sites(final)
        if sites:
            return self.fail("isolated_atom", "final structure: "
                             + isolation_message(final, sites), final)
        row["energy_per_atom"] = float(atoms.get_potential_energy()) / len(atoms)
        row["max_nn_distance"] = max_nn_distance(final)
        row["structure_json"] = json.dumps(final.as_dict())
        if not converged:
            row["failure"] = "not_converged"
            row["message"] = (
                f"largest force {row['max_force']:.3g} eV/Å > fmax {settings.fmax:g} "
                f"after {settings.max_steps} steps"
            )
        row["wall_s"] = time.perf_counter() - self.began
        return row
