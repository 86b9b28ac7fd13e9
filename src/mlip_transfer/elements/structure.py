"""Structure of MD trajectories: radial and angular distribution functions.

* RDF g(r): pair distances through periodic images up to ``r_max``, normalised by the ideal-gas
  shell count, averaged over frames.
* ADF: the angle θ_jik between every pair of neighbours j, k of an atom i within ``cutoff``
  (the first coordination shell), as a probability density over degrees.

:func:`compare_structures` compares both, per method, with the Stillinger-Weber reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matscipy.neighbours import neighbour_list

from mlip_transfer.core.errors import DataError


def _neighbours(quantities: str, positions: np.ndarray, cell: np.ndarray, cutoff: float) -> tuple:
    return neighbour_list(
        quantities,
        positions=np.asarray(positions, dtype=float),
        cell=np.asarray(cell, dtype=float),
        pbc=np.array([True, True, True]),
        numbers=np.ones(len(positions), dtype=np.int32),
        cutoff=float(cutoff),
    )


def _check(frames: Sequence[np.ndarray]) -> None:
    if len(frames) == 0:
        raise DataError("no frames for the structure analysis")


def rdf(
    frames: Sequence[np.ndarray], cell: np.ndarray, *, r_max: float = 6.0, bins: int = 120
) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function of frames (positions, Å) in one cell: (r, g)."""
    _check(frames)
    edges = np.linspace(0.0, r_max, bins + 1)
    counts = np.zeros(bins)
    n_atoms = len(frames[0])
    density = n_atoms / abs(np.linalg.det(cell))
    for positions in frames:
        d = _neighbours("d", positions, cell, r_max)
        counts += np.histogram(d, bins=edges)[0]
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = counts / (len(frames) * n_atoms * density * shell)
    return 0.5 * (edges[1:] + edges[:-1]), g


def adf(
    frames: Sequence[np.ndarray], cell: np.ndarray, *, cutoff: float = 3.2, bins: int = 90
) -> tuple[np.ndarray, np.ndarray]:
    """Bond-angle distribution (degrees, density per degree) within ``cutoff``: (θ, p)."""
    _check(frames)
    edges = np.linspace(0.0, 180.0, bins + 1)
    counts = np.zeros(bins)
    for positions in frames:
        i, vectors = _neighbours("iD", positions, cell, cutoff)
        order = np.argsort(i, kind="stable")
        i, vectors = i[order], vectors[order]
        starts = np.searchsorted(i, np.arange(len(positions) + 1))
        for a, b in zip(starts[:-1], starts[1:]):
            if b - a < 2:
                continue
            v = vectors[a:b] / np.linalg.norm(vectors[a:b], axis=1, keepdims=True)
            j, k = np.triu_indices(b - a, k=1)
            cos = np.clip(np.sum(v[j] * v[k], axis=1), -1.0, 1.0)
            counts += np.histogram(np.degrees(np.arccos(cos)), bins=edges)[0]
    total = counts.sum()
    density = counts / (total * np.diff(edges)) if total else counts
    return 0.5 * (edges[1:] + edges[:-1]), density


def curve_difference(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Integrated absolute difference of two curves on the same grid."""
    return float(np.sum(np.abs(np.asarray(a) - np.asarray(b)) * np.gradient(np.asarray(x))))


def compare_structures(
    *, frames: Mapping[str, Sequence[str | Path]], reference: str | Path, rdf_max: float,
    rdf_bins: int, adf_cutoff: float, adf_bins: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """RDF and ADF per method (stable runs of all its models pooled) and the SW reference.

    Returns the curves (long table: method, kind, x, y) and per-method distances from the
    reference (integrated absolute difference) with the number of frames used.
    """
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ref = np.load(reference)
    groups["stillinger-weber"] = (ref["positions"], ref["cell"])
    for method, paths in frames.items():
        loaded = [np.load(p) for p in paths]
        positions = np.concatenate([item["positions"] for item in loaded])
        groups[method] = (positions, loaded[0]["cell"])
    curves, stats = [], {}
    reference_curves = None
    for method, (positions, cell) in groups.items():
        if len(positions) == 0:
            stats[method] = {"frames": 0, "rdf_difference": None, "adf_difference": None}
            continue
        r, g = rdf(positions, cell, r_max=rdf_max, bins=rdf_bins)
        theta, p = adf(positions, cell, cutoff=adf_cutoff, bins=adf_bins)
        curves += [{"method": method, "kind": "rdf", "x": x, "y": y} for x, y in zip(r, g)]
        curves += [{"method": method, "kind": "adf", "x": x, "y": y} for x, y in zip(theta, p)]
        if method == "stillinger-weber":
            reference_curves = (r, g, theta, p)
        stats[method] = {"frames": int(len(positions)), "rdf": (r, g), "adf": (theta, p)}
    if reference_curves is None:
        raise DataError("the Stillinger-Weber reference has no frames", file=str(reference))
    out = {}
    for method, item in stats.items():
        if item["frames"] == 0:
            out[method] = item
            continue
        r, g = item["rdf"]
        theta, p = item["adf"]
        out[method] = {
            "frames": item["frames"],
            "rdf_difference": curve_difference(r, g, reference_curves[1]),
            "adf_difference": curve_difference(theta, p, reference_curves[3]),
        }
    return pd.DataFrame(curves), out
