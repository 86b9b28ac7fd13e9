"""Short-range repulsion of homonuclear dimers: does a fine-tuned model keep the repulsive wall?

Two atoms X–X in a large cubic box (no periodic image within CHGNet's 6 Å atom-graph cutoff;
the bond graph's 3 Å cutoff is where the grid ends) at distances shrinking from ``r_max`` to
``r_min``. Fine-tuning data (relaxation trajectories near equilibrium) hold no pair closer than
~1.5 Å, so nothing in the loss keeps the short-range wall the source model learned: a model that
loses it lets atoms fuse in molecular dynamics. Dimer curves are a common sanity check of
universal potentials (MACE-MP-0 and MLIP Arena plot them; MACE adds a ZBL pair term for it);
measuring the wall *before and after a fine-tune* is what the retention report adds.

The wall of a curve ``E(r)`` on the grid is the highest energy at distances below its minimum,
minus the minimum (eV per dimer). The highest, not the energy at ``r_min``: the source model
(CHGNet v0.3.0) itself turns over below ~0.8 Å for most elements (its training data hold no
shorter pairs), but a barrier of tens of eV still keeps any atom at MD temperatures out. A wall
is *lost* when it is lower than ``min_wall_ev`` (reason ``no_wall``: the minimum sits at the
shortest distance, or the energy barely rises below it) or lower than ``min_wall_ratio`` times
the source model's wall of the same element (``weaker_than_source``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.retention_settings import DimerSettings

DIMER_COLUMNS = ("element", "distance", "energy", "relative_energy")
REASONS = ("", "nan", "no_wall", "weaker_than_source")


def dimer_frames(elements: Iterable[str], settings: DimerSettings) -> list[Frame]:
    """One frame per element and distance: two atoms along x in the middle of the box."""
    box = settings.box
    frames = []
    for element in elements:
        for r in settings.distances:
            frames.append(Frame(
                frame_id=f"dimer-{element}-{r:.3f}", material_id=f"dimer-{element}",
                functional="none", species=(element, element), lattice=np.eye(3) * box,
                frac_coords=np.array([[0.5 - r / (2 * box), 0.5, 0.5],
                                      [0.5 + r / (2 * box), 0.5, 0.5]]),
                energy=None,
            ))  # fmt: skip
    return frames


def dimer_curves(
    model: Any, elements: Sequence[str], settings: DimerSettings, *, batch_size: int = 64
) -> pd.DataFrame:
    """Each element's dimer energy (eV per dimer) on the grid, from one batched prediction.

    Returns:
        Columns :data:`DIMER_COLUMNS`: ``energy`` is the model's total energy of the pair,
        ``relative_energy`` the same minus its value at ``r_max`` (NaN where no graph).
    """
    from mlip_transfer.transfer.metrics import predict_energies

    frames = dimer_frames(elements, settings)
    per_atom = predict_energies(model, frames, batch_size=batch_size) if frames else np.array([])
    distances = settings.distances
    table = pd.DataFrame({
        "element": [f.species[0] for f in frames],
        "distance": np.tile(distances, len(elements)),
        "energy": 2 * per_atom,
    })  # fmt: skip
    at_far = table.groupby("element", sort=False)["energy"].transform("last")
    return table.assign(relative_energy=table["energy"] - at_far)


def wall(distances: Sequence[float], energies: Sequence[float]) -> dict[str, float]:
    """The repulsive wall of one curve (see the module docstring).

    Returns:
        ``r_min`` (distance of the lowest energy), ``wall_ev`` (highest energy below ``r_min``
        minus the lowest; 0 when the minimum is the shortest distance), ``hole_ev`` (how far
        the energy falls again from that highest point to the shortest distance; 0 for a wall
        that rises all the way) and ``r_peak``; NaN for a curve with a non-finite energy.
    """
    r = np.asarray(distances, dtype=float)
    e = np.asarray(energies, dtype=float)
    order = np.argsort(r)
    r, e = r[order], e[order]
    if not len(e) or not np.all(np.isfinite(e)):
        return dict.fromkeys(("r_min", "wall_ev", "hole_ev", "r_peak"), math.nan)
    i_min = int(np.argmin(e))
    inner = e[: i_min + 1]
    i_peak = int(np.argmax(inner))
    return {
        "r_min": float(r[i_min]),
        "wall_ev": float(inner[i_peak] - e[i_min]),
        "hole_ev": float(inner[i_peak] - e[0]),
        "r_peak": float(r[i_peak]),
    }


def wall_check(
    curve: Mapping[str, float],
    *,
    settings: DimerSettings,
    source: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Whether one element's wall is lost: :func:`wall` of the model and, optionally, of the
    source model for the same element.

    Returns:
        The model's :func:`wall` values, ``source_wall_ev`` (NaN without a source), ``lost``
        and ``reason`` (one of :data:`REASONS`; ``""`` for a kept wall).
    """
    height = curve["wall_ev"]
    source_height = math.nan if source is None else source["wall_ev"]
    if not math.isfinite(height):
        reason = "nan"
    elif height < settings.min_wall_ev:
        reason = "no_wall"
    elif math.isfinite(source_height) and height < settings.min_wall_ratio * source_height:
        reason = "weaker_than_source"
    else:
        reason = ""
    return {**curve, "source_wall_ev": source_height, "lost": bool(reason), "reason": reason}


def wall_table(
    curves: pd.DataFrame, *, settings: DimerSettings, source: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per element of ``curves`` (:func:`dimer_curves`): its wall and whether it is lost,
    against ``source`` (the source model's curves; None: the absolute test only)."""
    source_walls = {}
    if source is not None:
        source_walls = {el: wall(g["distance"], g["energy"])
                        for el, g in source.groupby("element", sort=False)}
    rows = []
    for element, group in curves.groupby("element", sort=False):
        check = wall_check(wall(group["distance"], group["energy"]), settings=settings,
                           source=source_walls.get(element))
        rows.append({"element": element, **check})
    return pd.DataFrame(rows, columns=["element", "r_min", "wall_ev", "hole_ev", "r_peak",
                                       "source_wall_ev", "lost", "reason"])
