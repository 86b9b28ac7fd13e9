"""Single-point energies, forces and stresses of one teacher on many structures.

A structure a teacher cannot evaluate (an element outside its table, no neighbours within its
cutoff, a non-finite prediction) is kept as a skipped key with the reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure


@dataclass(frozen=True)
class Prediction:
    """Labels of one structure, in the canonical units of the frames.

    Attributes:
        energy_per_atom: eV/atom.
        forces: n x 3, eV/Å, or None.
        stress: 3x3, GPa, ASE sign (positive = tensile), or None.
    """

    energy_per_atom: float
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None


def single_point(calculator: Any, structure: Structure) -> Prediction:
    """Energy per atom, forces and stress (converted from ASE eV/Å³ to GPa) of ``structure``."""
    from ase import units
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator
    return Prediction(
        energy_per_atom=float(atoms.get_potential_energy()) / len(atoms),
        forces=np.array(atoms.get_forces(), dtype=float),
        stress=np.array(atoms.get_stress(voigt=False), dtype=float) / units.GPa,
    )


def predict_all(
    calculator: Any, structures: Mapping[str, Structure]
) -> tuple[dict[str, Prediction], dict[str, str]]:
    """Single points of every structure: ``(predictions, skipped)``, both keyed like
    ``structures``; ``skipped`` maps a key to why the teacher gave no finite answer."""
    predictions: dict[str, Prediction] = {}
    skipped: dict[str, str] = {}
    for key, structure in structures.items():
        try:
            prediction = single_point(calculator, structure)
        except Exception as exc:  # noqa: BLE001 - one unreadable structure must not stop the rest
            skipped[key] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        labels = (prediction.energy_per_atom, prediction.forces, prediction.stress)
        if not all(np.all(np.isfinite(value)) for value in labels):
            skipped[key] = "non-finite energy, forces or stress"
            continue
        predictions[key] = prediction
    return predictions, skipped
