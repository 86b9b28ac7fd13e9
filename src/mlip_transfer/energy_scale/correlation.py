"""Energy-scale correlation between functionals, raw and after subtracting AtomRefs (Fig. 1b, 2b).

The paper reports Pearson ρ of relaxed total energies per atom, GGA/GGA+U vs r2SCAN, of 0.0917
raw and 0.9250 once each functional's own AtomRef contribution ``c · E_elem`` is subtracted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.atomref import AtomRefFit
from mlip_transfer.energy_scale.compositions import element_amounts

PAPER_RHO = {"raw": 0.0917, "scaled": 0.9250}
_BOOT_CHUNK = 2_000_000  # resampled values per chunk, bounds memory on large datasets


def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise DataError(f"x has {len(x)} values but y has {len(y)}")
    if len(x) < 2:
        raise DataError(f"a correlation needs at least 2 points, got {len(x)}")
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
    if bad.size:
        raise DataError("value is NaN or infinite", record=f"index {bad[0]}")
    return x, y


def _rows_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson ρ of each row pair of two 2-D arrays (NaN where a row is constant)."""
    dx = x - x.mean(axis=1, keepdims=True)
    dy = y - y.mean(axis=1, keepdims=True)
    denom = np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (dx * dy).sum(axis=1) / denom, np.nan)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation coefficient.

    Raises:
        DataError: Lengths differ, fewer than 2 points, non-finite values, or a constant input.
    """
    x, y = _pair(x, y)
    rho = float(_rows_pearson(x[None, :], y[None, :])[0])
    if np.isnan(rho):
        raise DataError("correlation is undefined: an input is constant")
    return rho


def bootstrap_pearson(
    x: Sequence[float],
    y: Sequence[float],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Pearson ρ with a percentile bootstrap confidence interval (seeded, vectorised).

    Resamples whose inputs are constant (possible for tiny n) are left out of the percentiles.

    Returns:
        ``{"rho", "low", "high", "n"}``.
    """
    if not 0 < confidence < 1:
        raise DataError(f"confidence must lie in (0, 1), got {confidence}")
    if n_boot < 1:
        raise DataError(f"n_boot must be positive, got {n_boot}")
    rho = pearson(x, y)
    x, y = _pair(x, y)
    n = len(x)
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK // n)
    samples = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        samples.append(_rows_pearson(x[idx], y[idx]))
    values = np.concatenate(samples)
    values = values[np.isfinite(values)]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha]) if values.size else (np.nan, np.nan)
    return {"rho": rho, "low": float(low), "high": float(high), "n": int(n)}


def _reference_energies(atomref: AtomRefFit | Mapping[str, float]) -> dict[str, float]:
    return dict(atomref.energies) if isinstance(atomref, AtomRefFit) else dict(atomref)


def referenced_energies(
    materials: pd.DataFrame,
    atomrefs: Mapping[str, AtomRefFit | Mapping[str, float]],
    *,
    corrected: bool = True,
    on_missing: str = "raise",
) -> pd.DataFrame:
    """Relaxed energy per atom of each material, raw and minus each functional's AtomRef.

    Args:
        materials: Canonical materials table (one row per material and functional).
        atomrefs: Functional id (``gga``, ``r2scan``) -> that functional's AtomRef.
        corrected: Use ``relaxed_energy_per_atom`` (MP2020-corrected GGA/GGA+U) or its
            ``_uncorrected`` twin.
        on_missing: A material with an element absent from an AtomRef: ``"raise"`` or
            ``"drop"`` it (dropped ids are listed in ``table.attrs["dropped"]``).

    Returns:
        Wide table of materials present for every functional: ``material_id, formula`` and
        ``raw_<f>``, ``scaled_<f>`` per functional (``raw_gga, raw_r2scan, scaled_gga,
        scaled_r2scan`` for the paper's pair), eV/atom.

    Raises:
        DataError: A functional has no rows, no material has all functionals, or (``raise``)
            an element has no AtomRef energy.
    """
    if on_missing not in ("raise", "drop"):
        raise DataError(f"on_missing must be 'raise' or 'drop', got {on_missing!r}")
    column = "relaxed_energy_per_atom" if corrected else "relaxed_energy_per_atom_uncorrected"
    functionals = list(atomrefs)
    wide = None
    for functional in functionals:
        rows = materials.loc[materials["functional"] == functional, ["material_id", "formula", column]]
        if rows.empty:
            raise DataError(f"materials table has no rows for functional {functional!r}", field="functional")
        rows = rows.rename(columns={column: f"raw_{functional}"})
        if wide is None:
            wide = rows
        else:
            wide = wide.merge(rows.drop(columns="formula"), on="material_id", how="inner")
    if wide is None or wide.empty:
        raise DataError(f"no material has energies for all of {functionals}")
    wide = wide.sort_values("material_id").reset_index(drop=True)

    refs = {f: _reference_energies(atomrefs[f]) for f in functionals}
    scaled = {f: np.full(len(wide), np.nan) for f in functionals}
    keep = np.ones(len(wide), dtype=bool)
    for i, (mid, formula) in enumerate(zip(wide["material_id"], wide["formula"])):
        amounts = element_amounts(formula, record=mid)
        total = sum(amounts.values())
        for functional in functionals:
            absent = [el for el in amounts if el not in refs[functional]]
            if absent:
                if on_missing == "raise":
                    raise DataError(
                        f"no {functional} AtomRef energy for {absent}", record=mid, field="formula"
                    )
                keep[i] = False
                continue
            shift = sum(amount / total * refs[functional][el] for el, amount in amounts.items())
            scaled[functional][i] = wide.at[i, f"raw_{functional}"] - shift
    for functional in functionals:
        wide[f"scaled_{functional}"] = scaled[functional]
    dropped = wide.loc[~keep, "material_id"].tolist()
    wide = wide.loc[keep].reset_index(drop=True)
    raw_cols = [f"raw_{f}" for f in functionals]
    wide = wide[["material_id", "formula", *raw_cols, *(f"scaled_{f}" for f in functionals)]]
    wide.attrs["dropped"] = dropped
    return wide


def energy_scale_correlation(
    materials: pd.DataFrame,
    atomrefs: Mapping[str, AtomRefFit | Mapping[str, float]],
    *,
    corrected: bool = True,
    on_missing: str = "raise",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """Pearson ρ between two functionals' energies, raw and AtomRef-scaled, with bootstrap CIs.

    Args:
        materials: Canonical materials table.
        atomrefs: Exactly two functionals -> AtomRef, source first (``{"gga": ..., "r2scan": ...}``).
        corrected, on_missing: As in :func:`referenced_energies`.
        n_boot, confidence, seed: As in :func:`bootstrap_pearson`.

    Returns:
        ``{"functionals", "corrected", "n", "dropped", "raw": {rho, low, high, n},
        "scaled": {...}, "paper": {"raw": 0.0917, "scaled": 0.9250}}``.
    """
    if len(atomrefs) != 2:
        raise DataError(f"need exactly two functionals, got {list(atomrefs)}")
    first, second = list(atomrefs)
    table = referenced_energies(materials, atomrefs, corrected=corrected, on_missing=on_missing)
    boot = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    return {
        "functionals": [first, second],
        "corrected": corrected,
        "n": int(len(table)),
        "dropped": list(table.attrs["dropped"]),
        "raw": bootstrap_pearson(table[f"raw_{first}"], table[f"raw_{second}"], **boot),
        "scaled": bootstrap_pearson(table[f"scaled_{first}"], table[f"scaled_{second}"], **boot),
        "paper": dict(PAPER_RHO),
    }
