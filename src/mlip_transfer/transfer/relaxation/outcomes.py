"""What a relaxation returns: its settings, the result row, the isolated-atom check, counts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from mlip_transfer.core.errors import ConfigError

# The paper's criterion of a failed relaxation, and CHGNet's atom-graph cutoff.
ISOLATION_CUTOFF = 6.0  # Å
# Failures whose energy is not usable; ``not_converged`` is flagged but kept.
FAILURE_REASONS = ("isolated_atom", "non_finite", "error")
RESULT_COLUMNS = (
    "material_id",
    "formula",
    "n_atoms",
    "energy_per_atom",
    "n_steps",
    "converged",
    "failed",
    "failure",
    "message",
    "max_force",
    "max_nn_distance",
    "wall_s",
    "structure_json",
)


@dataclass(frozen=True, kw_only=True)
class RelaxSettings:
    """What one relaxation needs besides the structure and the calculator."""

    fmax: float = 0.05
    max_steps: int = 300
    relax_cell: bool = True

    def __post_init__(self) -> None:
        if not self.fmax > 0:
            raise ConfigError(f"fmax must be positive, got {self.fmax!r}")
        if self.max_steps < 0:
            raise ConfigError(f"max_steps must not be negative, got {self.max_steps!r}")


# --------------------------------------------------------------------------- geometry


def nearest_neighbor_distances(
    structure: Structure, cutoff: float = ISOLATION_CUTOFF
) -> np.ndarray:
    """Distance of every site to its nearest neighbour under periodic boundary conditions, Å.

    Periodic images of the site itself count as neighbours (as in CHGNet's graph). Sites with
    no neighbour within ``cutoff`` get ``inf``.
    """
    distances = np.full(len(structure), np.inf)
    centers, _, _, dists = structure.get_neighbor_list(r=cutoff, exclude_self=True)
    if len(centers):
        np.minimum.at(distances, centers.astype(int), dists)
    return distances


def isolated_sites(structure: Structure, cutoff: float = ISOLATION_CUTOFF) -> list[int]:
    """Indices of the sites more than ``cutoff`` Å from their nearest neighbour."""
    distances = nearest_neighbor_distances(structure, cutoff)
    return [int(i) for i in np.flatnonzero(~np.isfinite(distances))]


def max_nn_distance(structure: Structure) -> float:
    """Largest nearest-neighbour distance, Å; beyond the cutoff it is of no interest: ``inf``."""
    return float(np.max(nearest_neighbor_distances(structure)))


def isolation_message(structure: Structure, sites: list[int]) -> str:
    """What a failure message says about the isolated ``sites`` of ``structure``."""
    first = sites[0]
    return (
        f"{len(sites)} atom(s) more than {ISOLATION_CUTOFF:g} Å from any neighbour, "
        f"e.g. site {first} ({structure[first].specie.symbol})"
    )


# --------------------------------------------------------------------------- result rows


def blank_row(material_id: str, structure: Structure) -> dict[str, Any]:
    """A result row before anything is known: not relaxed, not failed."""
    return {
        **{col: None for col in RESULT_COLUMNS},
        "material_id": str(material_id),
        "formula": structure.composition.reduced_formula,
        "n_atoms": len(structure),
        "energy_per_atom": math.nan,
        "n_steps": 0,
        "converged": False,
        "failed": False,
        "max_force": math.nan,
        "max_nn_distance": math.nan,
    }


def error_row(material_id: str, structure: Structure, message: str, *,
              wall_s: float) -> dict[str, Any]:
    """The row of a relaxation that raised (failure ``error``) with its ``message``."""
    return {**blank_row(material_id, structure), "failed": True, "failure": "error",
            "message": message, "wall_s": wall_s}


def failure_counts(relaxed: pd.DataFrame) -> dict[str, int]:
    """How many relaxations ended in each failure reason, ``not_converged`` included.

    Every reason of :data:`FAILURE_REASONS` and ``not_converged`` appears, with 0 if none.
    """
    counts = {reason: 0 for reason in (*FAILURE_REASONS, "not_converged")}
    for reason in relaxed["failure"].dropna():
        counts[str(reason)] = counts.get(str(reason), 0) + 1
    return counts


def final_structures(relaxed: pd.DataFrame) -> dict[str, Structure]:
    """Material id -> final structure of each row that has one (failed rows may not)."""
    return {
        str(row.material_id): Structure.from_dict(json.loads(row.structure_json))
        for row in relaxed.itertuples(index=False)
        if isinstance(row.structure_json, str)
    }
