"""A fair reference hull: the teacher relaxed under the same protocol as the models.

Decomposition and formation energies compare each model's hull with a reference hull. With DFT
data the reference is the dataset's own relaxed energies, as in the paper. With surrogate labels
the dataset's relaxed energy is the teacher's at the end of the *build's* relaxation (its own
force threshold and step limit, sometimes unconverged), while the models relax each test
material under ``evaluation.relax_fmax`` / ``relax_max_steps``: even the teacher, evaluated as a
model, then scores some meV/atom against itself. Here the teacher relaxes the test materials the
models relax, from the same first frame under the same settings, and those energies replace
the dataset's in the reference; the competitors keep the dataset's energy, which is the
teacher's own label on the relaxed structure, as the models' competitors are the models'
static energies on it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from mlip_transfer.core.files import write_csv_atomic
from mlip_transfer.data.dataset import iter_frames
from mlip_transfer.data.split import read_split

logger = logging.getLogger("mlip_transfer.transfer.reference_hull")

PathLike = str | os.PathLike
REFERENCE_WORDS = ("the teacher ({teacher}) relaxed from each test material's first frame under "
                   "the models' protocol (fmax {fmax} eV/Å, at most {steps} steps)")


def relax_with_teacher(
    *,
    frames: PathLike,
    split: PathLike,
    teacher: str,
    evaluation: Mapping[str, Any],
    functional: str,
    out: PathLike,
) -> pd.DataFrame:
    """Rule ``reference_relaxations``: the teacher relaxes the test materials every model relaxes.

    Args:
        frames, split: The dataset's frames and split.
        teacher: The r2SCAN teacher's name (``data.default.teacher``).
        evaluation: The config's ``evaluation`` section (``relax_fmax``, ``relax_max_steps``,
            ``max_test_materials``).
        functional: The target functional of the frames.
        out: Where the relaxations go (the columns of
            :data:`~mlip_transfer.transfer.relaxation.RESULT_COLUMNS`, plus ``teacher``).
    """
    from mlip_transfer.data.surrogate.teacher_models import limit_threads
    from mlip_transfer.data.surrogate.teacher_models import teacher as get_teacher
    from mlip_transfer.transfer.frames import capped_test_materials, frames_by_split
    from mlip_transfer.transfer.relaxation.fire import relax_one
    from mlip_transfer.transfer.relaxation.outcomes import RelaxSettings

    limit_threads()
    by_split = frames_by_split(iter_frames(frames), read_split(split), functional=functional)
    first: dict[str, Any] = {}
    for frame in sorted(by_split["test"], key=lambda f: f.extra.get("step", 0)):
        first.setdefault(frame.material_id, frame)
    ids = capped_test_materials(first, evaluation.get("max_test_materials"))
    calculator = get_teacher(teacher).calculator()
    settings = RelaxSettings(fmax=evaluation["relax_fmax"], max_steps=evaluation["relax_max_steps"],
                             relax_cell=True)
    rows = [relax_one(mid, first[mid].to_structure(), calculator, settings) for mid in ids]
    table = pd.DataFrame(rows).assign(teacher=teacher)
    write_csv_atomic(out, table, index=False)
    logger.info("teacher %s relaxed %d test materials: %d failed, %d not converged", teacher,
                len(table), int(table["failed"].sum()), int((~table["converged"]).sum()))
    return table


def fair_reference(materials: pd.DataFrame, relaxed: pd.DataFrame, *, functional: str,
                   energy_column: str = "relaxed_energy_per_atom") -> tuple[pd.DataFrame, int]:
    """``materials`` with the test materials' reference energy (rows of ``functional``) taken
    from the teacher's relaxations where they did not fail; and how many were replaced."""
    energies = {str(m): float(e) for m, e, failed in
                zip(relaxed["material_id"], relaxed["energy_per_atom"], relaxed["failed"])
                if not failed}
    table = materials.copy()
    mask = table["material_id"].astype(str).isin(energies)
    if "functional" in table.columns:
        mask &= table["functional"] == functional
    table.loc[mask, energy_column] = table.loc[mask, "material_id"].astype(str).map(energies)
    return table, int(mask.sum())
