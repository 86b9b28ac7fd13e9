"""Error tables of the teachers: against DFT energies, and between two sets of predictions.

Pure arithmetic on predictions that were already made (:mod:`.singlepoint` makes them), so the
tables are tested without loading a model. Signs: an error is predicted − reference, a
difference is ``a`` − ``b``. Units: energies eV/atom against DFT, meV/atom between teachers;
forces meV/Å and stresses GPa, each a mean absolute difference over Cartesian components.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.teachers.singlepoint import Prediction

ENERGY_COLUMNS = ("reference", "predicted", "error", "abs_error", "skipped")
FRAME_COLUMNS = (
    "a", "b", "frame_id", "elements", "n_atoms", "energy_diff", "force_mae", "n_force",
    "stress_mae",
)  # fmt: skip
DIFFERENCE_COLUMNS = ("energy_mae", "energy_mean", "energy_max", "force_mae", "stress_mae")


def energy_errors(
    reference: Mapping[str, float],
    predicted: Mapping[str, Mapping[str, float]],
    skipped: Mapping[str, Mapping[str, str]],
    *,
    key: str = "element",
) -> pd.DataFrame:
    """One row per (reference key, teacher): the DFT and predicted energy per atom and the error.

    Args:
        reference: Key (element, material id) -> DFT energy per atom, eV/atom.
        predicted: Teacher -> key -> predicted energy per atom.
        skipped: Teacher -> key -> why it has no prediction.
        key: Name of the key column.

    Returns:
        Columns ``key``, ``teacher``, ``reference``, ``predicted``, ``error``, ``abs_error``,
        ``skipped`` (the reason, empty when predicted). A key a teacher neither predicted nor
        skipped is listed as skipped too, so no reference value disappears from the table.
    """
    rows = []
    for teacher in predicted.keys() | skipped.keys():
        values, reasons = predicted.get(teacher, {}), skipped.get(teacher, {})
        for name in sorted(reference):
            value = values.get(name, np.nan)
            reason = "" if name in values else reasons.get(name, "no prediction")
            rows.append({key: name, "teacher": teacher, "reference": reference[name],
                         "predicted": value, "skipped": reason})  # fmt: skip
    table = pd.DataFrame(rows, columns=[key, "teacher", "reference", "predicted", "skipped"])
    table["error"] = table["predicted"] - table["reference"]
    table["abs_error"] = table["error"].abs()
    table = table.sort_values(["teacher", key], kind="stable", ignore_index=True)
    return table[[key, "teacher", *ENERGY_COLUMNS]]


def error_stats(table: pd.DataFrame, teacher: str, *, key: str = "element") -> dict[str, Any]:
    """MAE, median and largest absolute error (eV/atom) of one teacher in an
    :func:`energy_errors` table, the mean signed error, the worst key and every skipped key."""
    rows = table[table["teacher"] == teacher]
    counted, missed = rows[rows["skipped"] == ""], rows[rows["skipped"] != ""]
    errors = counted["error"].to_numpy(dtype=float)
    worst = counted.loc[counted["abs_error"].idxmax(), key] if len(counted) else None
    return {
        "n": len(counted),
        "n_skipped": len(missed),
        "mae": float(np.mean(np.abs(errors))) if len(errors) else np.nan,
        "median_ae": float(np.median(np.abs(errors))) if len(errors) else np.nan,
        "max_ae": float(np.max(np.abs(errors))) if len(errors) else np.nan,
        "mean_error": float(np.mean(errors)) if len(errors) else np.nan,
        "worst": worst,
        "skipped": dict(zip(missed[key], missed["skipped"], strict=True)),
    }


def _component_mae(a: np.ndarray | None, b: np.ndarray | None) -> tuple[float, int]:
    """Mean absolute difference over components and their number (NaN, 0 if either is None)."""
    if a is None or b is None:
        return np.nan, 0
    diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return float(diff.mean()), int(diff.size)


def frame_differences(
    a: Mapping[str, Prediction],
    b: Mapping[str, Prediction],
    species: Mapping[str, Iterable[str]],
    *,
    names: tuple[str, str] = ("a", "b"),
) -> pd.DataFrame:
    """One row per frame both ``a`` and ``b`` predicted: energy difference per atom (a − b,
    meV/atom), force MAE (meV/Å) over the ``n_force`` components, stress MAE (GPa).

    Args:
        a, b: Frame id -> prediction.
        species: Frame id -> element symbol per site.
        names: What ``a`` and ``b`` are (teacher names, or ``labels``), for the columns of the
            same name.
    """
    rows = []
    for frame_id in sorted(a.keys() & b.keys()):
        first, second = a[frame_id], b[frame_id]
        force_mae, n_force = _component_mae(first.forces, second.forces)
        stress_mae, _ = _component_mae(first.stress, second.stress)
        sites = list(species[frame_id])
        rows.append({
            "a": names[0], "b": names[1], "frame_id": frame_id,
            "elements": " ".join(sorted(set(sites))), "n_atoms": len(sites),
            "energy_diff": 1000.0 * (first.energy_per_atom - second.energy_per_atom),
            "force_mae": 1000.0 * force_mae, "n_force": n_force, "stress_mae": stress_mae,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def difference_summary(frames: pd.DataFrame) -> dict[str, float]:
    """Mean absolute, mean signed and largest absolute energy difference (meV/atom), force MAE
    over all components (meV/Å) and stress MAE (GPa) of :func:`frame_differences` rows."""
    energy = frames["energy_diff"].to_numpy(dtype=float)
    weights = frames["n_force"].to_numpy(dtype=float)
    forces = frames["force_mae"].to_numpy(dtype=float)
    stress = frames["stress_mae"].dropna()
    has_forces = weights.sum() > 0
    return {
        "n_frames": len(frames),
        "energy_mae": float(np.mean(np.abs(energy))) if len(energy) else np.nan,
        "energy_mean": float(np.mean(energy)) if len(energy) else np.nan,
        "energy_max": float(np.max(np.abs(energy))) if len(energy) else np.nan,
        # Weighted by components, so a frame of 84 atoms counts 84 times one of a single atom.
        "force_mae": float(np.nansum(forces * weights) / weights.sum()) if has_forces else np.nan,
        "stress_mae": float(stress.mean()) if len(stress) else np.nan,
    }


def element_differences(frames: pd.DataFrame) -> pd.DataFrame:
    """:func:`difference_summary` per pair (``a``, ``b``) and element, over the frames that
    contain the element (so a frame of two elements counts for both)."""
    columns = ["a", "b", "element", "n_frames", *DIFFERENCE_COLUMNS]
    if frames.empty:
        return pd.DataFrame(columns=columns)
    exploded = frames.assign(element=frames["elements"].str.split()).explode("element")
    rows = [
        {"a": a, "b": b, "element": element, **difference_summary(group)}
        for (a, b, element), group in exploded.groupby(["a", "b", "element"], sort=True)
    ]
    return pd.DataFrame(rows, columns=columns)


def evenly_spaced(keys: list[str], cap: int | None) -> list[str]:
    """At most ``cap`` of ``keys`` spread evenly over the list (all when ``cap`` is None), so a
    cap samples every part of a file ordered by material instead of its first materials."""
    if cap is None or cap >= len(keys):
        return list(keys)
    return [keys[int(i)] for i in np.linspace(0, len(keys) - 1, cap).round()]
