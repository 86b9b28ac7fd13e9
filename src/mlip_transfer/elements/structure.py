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


def _shapes(positions: np.ndarray, cell: np.ndarray, shape: Mapping[str, Any]) -> dict[str, tuple]:
    return {
        "rdf": rdf(positions, cell, r_max=shape["rdf_max"], bins=shape["rdf_bins"]),
        "adf": adf(positions, cell, cutoff=shape["adf_cutoff"], bins=shape["adf_bins"]),
    }


def _distances(curves: Mapping[str, tuple], reference: Mapping[str, tuple]) -> dict[str, float]:
    return {
        f"{kind}_difference": curve_difference(curves[kind][0], curves[kind][1], reference[kind][1])
        for kind in ("rdf", "adf")
    }


def _seed_spread(per_seed: Mapping[str, dict[str, float]]) -> dict[str, Any]:
    """Per-seed distances (seeds without stable frames left out) with mean, min and max."""
    out: dict[str, Any] = {"seed_files": list(per_seed)}
    for kind in ("rdf", "adf"):
        values = [d[f"{kind}_difference"] for d in per_seed.values()]
        out[f"{kind}_difference_seeds"] = values
        out[f"{kind}_difference_seed_mean"] = float(np.mean(values)) if values else None
        out[f"{kind}_difference_seed_min"] = float(np.min(values)) if values else None
        out[f"{kind}_difference_seed_max"] = float(np.max(values)) if values else None
    return out


def compare_structures(
    *, frames: Mapping[str, Sequence[str | Path]], reference: str | Path, rdf_max: float,
    rdf_bins: int, adf_cutoff: float, adf_bins: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """RDF and ADF per method (stable runs of all its models pooled) and the SW reference.

    Args:
        frames: Per method, one frames file per model (seed).

    Returns:
        The curves (long table: method, kind, x, y) and, per method, the distances of the
        pooled curves from the reference (integrated absolute difference), the frames used,
        and the same distance per model file that has stable frames
        (``rdf_difference_seeds``, ``adf_difference_seeds``, their mean, min and max).

    Raises:
        DataError: The reference has no frames.
    """
    shape = {"rdf_max": rdf_max, "rdf_bins": rdf_bins, "adf_cutoff": adf_cutoff, "adf_bins": adf_bins}
    ref = np.load(reference)
    if len(ref["positions"]) == 0:
        raise DataError("the Stillinger-Weber reference has no frames", file=str(reference))
    reference_curves = _shapes(ref["positions"], ref["cell"], shape)
    curves = _long("stillinger-weber", reference_curves)
    out: dict[str, Any] = {"stillinger-weber": {"frames": len(ref["positions"])}}
    out["stillinger-weber"].update(_distances(reference_curves, reference_curves))
    for method, paths in frames.items():
        loaded = {str(p): np.load(p) for p in paths}
        positions = np.concatenate([item["positions"] for item in loaded.values()])
        if len(positions) == 0:
            out[method] = {"frames": 0, "rdf_difference": None, "adf_difference": None,
                           **_seed_spread({})}
            continue
        pooled = _shapes(positions, next(iter(loaded.values()))["cell"], shape)
        curves += _long(method, pooled)
        per_seed = {
            Path(name).stem: _distances(_shapes(item["positions"], item["cell"], shape), reference_curves)
            for name, item in loaded.items() if len(item["positions"])
        }
        out[method] = {"frames": len(positions), **_distances(pooled, reference_curves),
                       **_seed_spread(per_seed)}
    return pd.DataFrame(curves), out


def _long(method: str, shapes: Mapping[str, tuple]) -> list[dict[str, Any]]:
    return [
        {"method": method, "kind": kind, "x": x, "y": y}
        for kind in ("rdf", "adf") for x, y in zip(*shapes[kind])
    ]
