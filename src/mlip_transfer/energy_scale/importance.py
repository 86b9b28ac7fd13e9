"""Which elements drive the GGA/GGA+U - r2SCAN formation-energy difference (Fig. 1c/d).

Paper, Methods "Feature importance": a scikit-learn ``DecisionTreeRegressor`` is fitted on the
composition-fraction matrix with the formation-energy difference as target; an element's
importance is ``feature_importances_`` (Eq. 5: the normalised total variance reduction of the
nodes that split on it), and "to obtain the normalized feature importance, each feature
importance was divided by the total number of atoms of this element in the dataset and then
multiplied by 9,000 for Fig. 1c and 500 for Fig. 1d to scale it back to the range of 0-1".

The atom count is "the total number of atoms of this element in the dataset": the workflow
counts atoms per cell, one structure per material (``atom_counts=``, from the dataset's
frames); without it, the compositions passed in are summed (per formula unit for reduced
formulas). An element in very few atoms gets a huge normalised importance from one split, so
elements with fewer than ``min_atoms`` atoms are listed (``counted`` False) but not normalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.compositions import (
    CompositionLike,
    composition_matrix,
    element_amounts,
)

SCALE_CORRECTED = 9000.0  # Fig. 1c (with MP2020 corrections)
SCALE_UNCORRECTED = 500.0  # Fig. 1d (without)


def formation_energy_difference(
    materials: pd.DataFrame,
    *,
    corrected: bool = True,
    source: str = "gga",
    target: str = "r2scan",
    on_missing: str = "raise",
) -> pd.DataFrame:
    """Formation energy per atom, source minus target functional, per material.

    Args:
        materials: Canonical materials table.
        corrected: Use ``formation_energy_per_atom`` (MP2020-corrected GGA/GGA+U) or the
            ``_uncorrected`` twin (identical for r2SCAN, which has no corrections).
        source, target: Functional ids.
        on_missing: ``raise`` on a non-finite formation energy (for example an uncorrected one
            whose elemental reference is unknown), or ``drop`` the material and list it in the
            result's ``attrs["dropped"]``.

    Returns:
        ``material_id, formula, delta`` (eV/atom) for materials present in both functionals,
        elemental references excluded (their formation energy is zero by definition).

    Raises:
        DataError: A functional has no rows, or (with ``on_missing="raise"``) a value is not finite.
    """
    column = "formation_energy_per_atom" if corrected else "formation_energy_per_atom_uncorrected"
    parts = []
    for functional in (source, target):
        rows = materials[materials["functional"] == functional]
        if rows.empty:
            raise DataError(f"materials table has no rows for functional {functional!r}", field="functional")
        parts.append(rows[["material_id", "formula", column, "is_elemental_reference"]])
    both = parts[0].merge(parts[1].drop(columns="formula"), on="material_id", suffixes=("_s", "_t"))
    elemental = both["is_elemental_reference_s"].astype(bool) | both["is_elemental_reference_t"].astype(bool)
    both = both[~elemental].sort_values("material_id").reset_index(drop=True)
    delta = both[f"{column}_s"].to_numpy(float) - both[f"{column}_t"].to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(delta))
    if bad.size and on_missing != "drop":
        raise DataError("formation energy is not finite", record=both.at[bad[0], "material_id"], field=column)
    finite = np.isfinite(delta)
    result = pd.DataFrame(
        {"material_id": both["material_id"][finite], "formula": both["formula"][finite], "delta": delta[finite]}
    ).reset_index(drop=True)
    result.attrs["dropped"] = sorted(both["material_id"][~finite])
    return result


def element_feature_importance(
    compositions: Iterable[CompositionLike],
    target: Sequence[float] | np.ndarray,
    *,
    max_depth: int | None = 8,
    min_samples_leaf: int = 1,
    random_state: int = 0,
    scale: float = SCALE_CORRECTED,
    atom_counts: Mapping[str, float] | None = None,
    min_atoms: float = 0,
) -> pd.DataFrame:
    """Decision-tree importance of each element for ``target``, normalised as in the paper.

    Args:
        compositions: One composition per material (fractions are the tree's features).
        target: Value to explain per material, e.g. ``formation_energy_difference().delta``.
        max_depth, min_samples_leaf, random_state: ``DecisionTreeRegressor`` settings.
        scale: Multiplier after dividing by atom counts (9000 with corrections, 500 without).
        atom_counts: Element -> total atoms in the dataset (default: summed from
            ``compositions``).
        min_atoms: Elements with fewer atoms keep their raw importance but get no normalised
            one (NaN; ``counted`` False).

    Returns:
        ``element, importance, atom_count, counted, normalised`` with
        ``normalised = importance / atom_count * scale`` (NaN where not counted), sorted by
        ``normalised`` (descending, uncounted last).

    Raises:
        DataError: Lengths differ, a target is not finite, or an atom count is missing/zero.
    """
    from sklearn.tree import DecisionTreeRegressor

    compositions = list(compositions)
    y = np.asarray(target, dtype=float).reshape(-1)
    if len(compositions) != len(y):
        raise DataError(f"{len(compositions)} compositions but {len(y)} targets")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise DataError(f"target is {y[bad[0]]} (not finite)", record=f"index {bad[0]}")
    matrix, elements = composition_matrix(compositions)
    if atom_counts is None:
        counts = dict.fromkeys(elements, 0.0)
        for i, comp in enumerate(compositions):
            for el, amount in element_amounts(comp, record=f"index {i}").items():
                counts[el] += amount
    else:
        absent = [el for el in elements if not atom_counts.get(el)]
        if absent:
            raise DataError(f"atom_counts lacks elements {absent}", field="atom_counts")
        counts = {el: float(atom_counts[el]) for el in elements}
    tree = DecisionTreeRegressor(
        max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=random_state
    ).fit(matrix, y)
    importance = tree.feature_importances_
    atoms = np.array([counts[el] for el in elements])
    counted = atoms >= min_atoms
    table = pd.DataFrame(
        {
            "element": elements,
            "importance": importance,
            "atom_count": atoms,
            "counted": counted,
            "normalised": np.where(counted, importance / atoms * scale, np.nan),
        }
    )
    return table.sort_values(["normalised", "element"], ascending=[False, True],
                             na_position="last", ignore_index=True)
