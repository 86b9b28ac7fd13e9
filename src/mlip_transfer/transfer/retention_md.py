"""Short NVT runs of a CHGNet model from a few test structures, each counted stable or not.

The stability test is the Si -> Ge stage's (:func:`mlip_transfer.elements.nvt.run_nvt`: Langevin
NVT, unstable at the first check with a non-finite energy, force or position, two atoms closer
than ``min_distance``, or a kinetic temperature above ``max_temperature_factor`` x target), run
with chgnet's own ASE calculator. Small cells are repeated along their shortest axis to
``min_atoms`` so a run is not one or two atoms bouncing in their own images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.retention_settings import NVTSettings

logger = logging.getLogger("mlip_transfer.transfer.retention_md")
MD_COLUMNS = ("material_id", "formula", "n_atoms", "stable", "reason", "failed_at_ps",
              "steps", "max_temperature", "duration_ps")


def md_atoms(frame: Frame, *, min_atoms: int) -> Any:
    """The frame as ASE atoms, repeated along its shortest lattice vector to ``min_atoms``."""
    from ase import Atoms

    atoms = Atoms(symbols=list(frame.species), cell=np.asarray(frame.lattice),
                  scaled_positions=np.asarray(frame.frac_coords), pbc=True)
    while len(atoms) < min_atoms:
        repeat = [1, 1, 1]
        repeat[int(np.argmin(atoms.cell.lengths()))] = 2
        atoms = atoms.repeat(repeat)
    return atoms


def count_stable(runs: pd.DataFrame) -> dict[str, Any]:
    """``n_runs``, ``n_stable`` and the failures by reason of an :data:`MD_COLUMNS` table, and
    the shortest time to failure (ps; None when every run is stable)."""
    failed = runs[~runs["stable"].astype(bool)]
    return {
        "n_runs": len(runs),
        "n_stable": int(runs["stable"].astype(bool).sum()),
        "failures": {str(k): int(v) for k, v in failed["reason"].value_counts().items()},
        "first_failure_ps": float(failed["failed_at_ps"].min()) if len(failed) else None,
    }


def nvt_runs(
    model: Any,
    starts: Sequence[Frame],
    settings: NVTSettings,
    *,
    seed: int = 0,
    calculator: Any = None,
) -> pd.DataFrame:
    """One NVT run per start structure (seeded by ``seed`` and the material id).

    Args:
        model: A CHGNet model (ignored when ``calculator`` is given).
        starts: The start structures (a test material's relaxed frame each).
        settings: The runs and the stability criteria.
        seed: Base seed of the velocities and the thermostat.
        calculator: An ASE calculator to use instead of chgnet's (tests).

    Returns:
        One row per start, columns :data:`MD_COLUMNS`.
    """
    from mlip_transfer.elements.nvt import MDSettings, run_nvt
    from mlip_transfer.elements.sampling import set_seed

    if calculator is None and starts:
        from chgnet.model.dynamics import CHGNetCalculator

        calculator = CHGNetCalculator(model=model, use_device=str(next(model.parameters()).device))
    md = MDSettings(
        temperature=settings.temperature, duration_ps=settings.duration_ps,
        timestep_fs=settings.timestep_fs, friction_per_fs=settings.friction_per_fs,
        min_distance=settings.min_distance, max_temperature_factor=settings.max_temperature_factor,
        check_every=settings.check_every, sample_every_fs=settings.duration_ps * 1000 + 1,
        equilibration_ps=settings.duration_ps,
    )  # fmt: skip
    rows = []
    for frame in starts:
        atoms = md_atoms(frame, min_atoms=settings.min_atoms)
        result = run_nvt(atoms=atoms, calculator=calculator, settings=md,
                         seed=set_seed(seed, frame.material_id), label=frame.material_id)
        rows.append({
            "material_id": frame.material_id, "formula": atoms.get_chemical_formula(),
            "n_atoms": len(atoms), "stable": bool(result["stable"]), "reason": result["reason"],
            "failed_at_ps": result["failed_at_ps"], "steps": result["steps"],
            "max_temperature": result["max_temperature"], "duration_ps": settings.duration_ps,
        })  # fmt: skip
        logger.info("NVT %s (%d atoms): %s", frame.material_id, len(atoms),
                    "stable" if result["stable"] else f"{result['reason']} at "
                    f"{result['failed_at_ps']:.3f} ps")
    return pd.DataFrame(rows, columns=list(MD_COLUMNS))
