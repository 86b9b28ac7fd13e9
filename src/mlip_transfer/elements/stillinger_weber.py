"""Stillinger-Weber reference potentials for diamond Si and Ge (matscipy's many-body calculator).

Parameters (ε eV, σ Å, a, λ, γ, cos θ0, A, B, p, q) as in the study:

* Si: Stillinger & Weber, Phys. Rev. B 31, 5262 (1985): 2.1683, 2.0951, 1.80, 21.0, 1.20, -1/3,
  7.049556277, 0.6022245584, 4, 0;
* Ge: Ding & Andersen, Phys. Rev. B 34, 6987 (1986): 1.93, 2.181, 1.80, 31.0, 1.20, -1/3, same
  A, B, p, q.

matscipy writes the three-body term as ``(cos θ + costheta0)^2`` where the literature writes
``(cos θ - cos θ0)^2``, so its ``costheta0`` is ``+1/3`` for the tetrahedral ``cos θ0 = -1/3``; q = 0
is built into its functional form. The ground state (perfect diamond, nearest-neighbour distance
``2^(1/6) σ``) has energy ``-2 ε`` per atom at the reference lattice constants below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from mlip_transfer.core.errors import ConfigError

_COMMON = {
    "a": 1.80,
    "gamma": 1.20,
    "costheta0": 1.0 / 3.0,  # matscipy's sign convention: cos θ0 = -1/3
    "A": 7.049556277,
    "B": 0.6022245584,
    "p": 4,
}
SW_PARAMETERS: dict[str, dict[str, Any]] = {
    "Si": {
        "__ref__": "F. Stillinger and T. Weber, Phys. Rev. B 31, 5262 (1985)",
        "el": "Si",
        "epsilon": 2.1683,
        "sigma": 2.0951,
        "lambda1": 21.0,
        **_COMMON,
    },
    "Ge": {
        "__ref__": "K. Ding and H. C. Andersen, Phys. Rev. B 34, 6987 (1986)",
        "el": "Ge",
        "epsilon": 1.93,
        "sigma": 2.181,
        "lambda1": 31.0,
        **_COMMON,
    },
}
# Lattice constants (Å) at which the SW diamond ground state is -2 ε per atom.
LATTICE_CONSTANTS = {"Si": 5.431, "Ge": 5.654}
ELEMENTS = tuple(SW_PARAMETERS)


def check_element(element: str) -> str:
    if element not in SW_PARAMETERS:
        raise ConfigError(f"no Stillinger-Weber parameters for {element!r}; known: {list(ELEMENTS)}")
    return element


def _pair_triplet_neighbourhood(atom_type: Any, pair_type: Any) -> Any:
    """matscipy's ``CutoffNeighbourhood`` minus the j-k connectivity of each triplet.

    ``Manybody.calculate`` asks only for ij/ik pairs and their vectors, but the stock
    neighbourhood also finds the j-k pair of every triplet in a Python loop, about 70 % of a
    force call on 64 atoms. Same triplets, same distances, same numbers, ~3x faster.
    """
    from matscipy.neighbours import (
        CutoffNeighbourhood,
        first_neighbours,
        neighbour_list,
        triplet_list,
    )

    class PairTripletNeighbourhood(CutoffNeighbourhood):
        def get_triplets(self, atoms, quantities, neighbours=None, cutoff=None):  # noqa: ANN001
            if "k" in quantities:
                return super().get_triplets(atoms, quantities, neighbours, cutoff)
            cutoff = self.cutoff if cutoff is None else cutoff
            if neighbours is None:
                neighbours = neighbour_list("ijdD", atoms, cutoff)
            i_p, _, d_p, D_p = neighbours
            ij_t, ik_t = triplet_list(first_neighbours(len(atoms), i_p), d_p, cutoff)
            connectivity = np.array([ij_t, ik_t, np.full(len(ij_t), -1)]).T
            D = np.zeros((len(ij_t), 3, 3))
            D[:, 0] = D_p[ij_t]
            D[:, 1] = D_p[ik_t]
            D[:, 2] = D[:, 1] - D[:, 0]
            return self.make_result(
                quantities, connectivity, D, np.linalg.norm(D, axis=-1), None,
                accepted_quantities="ijkdD",
            )

    return PairTripletNeighbourhood(atom_types=atom_type, pair_types=pair_type)


def sw_calculator(element: str, *, fast: bool = True) -> Any:
    """matscipy's many-body Stillinger-Weber calculator for ``element``.

    ``fast`` swaps in a neighbourhood that skips work the calculator does not use (see
    :func:`_pair_triplet_neighbourhood`); ``fast=False`` is matscipy's calculator as shipped.
    """
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber

    functions = StillingerWeber(SW_PARAMETERS[check_element(element)])
    if fast:
        functions["neighbourhood"] = _pair_triplet_neighbourhood(
            functions["atom_type"], functions["pair_type"]
        )
    return Manybody(**functions)


def diamond_cell(element: str, *, repeats: int = 2, lattice_constant: float | None = None) -> Atoms:
    """Perfect diamond crystal of ``repeats``^3 conventional cells (8 atoms each; 2 -> 64)."""
    if repeats < 1:
        raise ConfigError(f"cell repeats must be >= 1, got {repeats}")
    # ase.build is imported here, not at the top: it loads ase.neighborlist and scipy.sparse
    # (seconds), which the training and table jobs that import this module never use.
    from ase.build import bulk

    a = LATTICE_CONSTANTS[check_element(element)] if lattice_constant is None else lattice_constant
    return bulk(element, "diamond", a=a, cubic=True).repeat(repeats)


def ground_state_energy_per_atom(element: str, *, repeats: int = 2) -> float:
    """SW energy per atom (eV) of the perfect diamond crystal at the reference lattice constant."""
    atoms = diamond_cell(element, repeats=repeats)
    atoms.calc = sw_calculator(element)
    return float(atoms.get_potential_energy()) / len(atoms)


def epsilon(element: str) -> float:
    return float(SW_PARAMETERS[check_element(element)]["epsilon"])


def ground_state_check(element: str, *, repeats: int = 2) -> dict[str, float]:
    """Energy per atom of the perfect crystal in units of ε (the study's check: -2)."""
    energy = ground_state_energy_per_atom(element, repeats=repeats)
    return {
        "element": element,
        "lattice_constant": LATTICE_CONSTANTS[element],
        "atoms": 8 * repeats**3,
        "energy_per_atom": energy,
        "energy_per_atom_over_epsilon": energy / epsilon(element),
        "expected_over_epsilon": -2.0,
        "ok": bool(np.isclose(energy / epsilon(element), -2.0, atol=1e-6)),
    }
