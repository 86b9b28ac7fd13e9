"""A model's formation and decomposition (hull) energies against a reference's, and their MAE.

Both sides are compared on the same materials: every material with a finite energy on both
sides. Each side's formation energies use its own elemental references and each side's
decomposition energies its own hull (:mod:`mlip_transfer.energy_scale.energies`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.compositions import parse_composition
from mlip_transfer.energy_scale.energies import (
    CompositionLike,
    decomposition_energies,
    elemental_reference_energies,
    formation_energy_per_atom,
)

EnergyMapping = Mapping[str, float]


class HullErrors(NamedTuple):
    """Per-material comparison of a model against a reference and its MAE.

    Attributes:
        table: One row per compared material (columns described by the function returning it).
        mae_mev: Mean absolute error, meV/atom (NaN when no material was compared).
    """

    table: pd.DataFrame
    mae_mev: float


def _formulas(materials: pd.DataFrame | Mapping[str, CompositionLike]) -> dict[str, str]:
    """Material id -> formula from a materials table (any functional) or a mapping."""
    if isinstance(materials, pd.DataFrame):
        pairs = zip(materials["material_id"].astype(str), materials["formula"])
    else:
        pairs = materials.items()
    out: dict[str, str] = {}
    for mid, formula in pairs:
        formula = formula.formula if isinstance(formula, Composition) else str(formula)
        previous = out.setdefault(str(mid), formula)
        if parse_composition(previous, record=mid).reduced_composition != parse_composition(
            formula, record=mid
        ).reduced_composition:
            raise DataError(f"material has two formulas, {previous!r} and {formula!r}",
                            record=mid, field="formula")
    return out


def _finite_energies(energies: EnergyMapping) -> dict[str, float]:
    return {str(k): float(v) for k, v in energies.items()
            if v is not None and np.isfinite(float(v))}


def _common_entries(
    model_energies: EnergyMapping,
    reference_energies: EnergyMapping,
    materials: pd.DataFrame | Mapping[str, CompositionLike],
    targets: Iterable[str] | None,
) -> tuple[dict[str, str], dict[str, float], dict[str, float], list[str]]:
    """Formulas and both sides' energies of the materials with finite energies in both."""
    formulas = _formulas(materials)
    model = _finite_energies(model_energies)
    reference = _finite_energies(reference_energies)
    elements_of = {
        mid: tuple(el.symbol for el in parse_composition(f, record=mid).elements)
        for mid, f in formulas.items()
    }
    common = [mid for mid in formulas if mid in model and mid in reference]
    unaries = {name: {elements_of[mid][0] for mid in formulas
                      if mid in energies and len(elements_of[mid]) == 1}
               for name, energies in (("model", model), ("reference", reference))}
    shared = {elements_of[mid][0] for mid in common if len(elements_of[mid]) == 1}
    for symbol in sorted({el for mid in common for el in elements_of[mid]} - shared):
        lacking = [name for name, symbols in unaries.items() if symbol not in symbols]
        detail = (
            f"no single-element material with a finite energy in the {' and '.join(lacking)} "
            "energies" if lacking else
            "no single-element material has a finite energy on both sides"
        )
        raise DataError(f"no elemental reference for element {symbol!r}: {detail}")
    if targets is None:
        chosen = [mid for mid in common if len(elements_of[mid]) > 1]
    else:
        chosen = []
        for mid in map(str, targets):
            if mid not in formulas:
                raise DataError("target material is not in the materials table", record=mid)
            if mid in model and mid in reference:
                chosen.append(mid)
    return (
        {mid: formulas[mid] for mid in common},
        {mid: model[mid] for mid in common},
        {mid: reference[mid] for mid in common},
        chosen,
    )


def _mae_mev(errors: pd.Series) -> float:
    return float(1000 * errors.abs().mean()) if len(errors) else math.nan


def decomposition_energy_errors(
    model_energies: EnergyMapping,
    reference_energies: EnergyMapping,
    *,
    materials: pd.DataFrame | Mapping[str, CompositionLike],
    targets: Iterable[str] | None = None,
) -> HullErrors:
    """Decomposition energies on the model's own hull vs on the reference hull, and their MAE.

    Both hulls are built from the same materials: every material of ``materials`` with a finite
    energy in both mappings (targets and competitors alike, elemental references included).
    Each target's decomposition energy (see :func:`decomposition_energies`) is computed once on
    the hull of the model's energies and once on the hull of the reference energies.

    Args:
        model_energies: Material id -> the model's energy per atom (eV/atom).
        reference_energies: Material id -> the reference (e.g. r2SCAN DFT) energy per atom.
        materials: A materials table (``material_id``, ``formula``; rows of several functionals
            are fine) or a mapping id -> formula.
        targets: Materials whose errors count; ids missing a finite energy on either side are
            skipped. Default: every compared material with more than one element (the
            decomposition energy of an elemental ground state is 0 by construction).

    Returns:
        :class:`HullErrors` with a table of ``material_id``, ``formula``,
        ``decomposition_energy_model``, ``decomposition_energy_reference``,
        ``decomposition_energy_error`` (model - reference), ``stable_model``,
        ``stable_reference`` (eV/atom), and the MAE in meV/atom.

    Raises:
        DataError: An element has no single-element material with a finite energy on one side
            (the message names the element and the side), or a target id is unknown.
    """
    formulas, model, reference, chosen = _common_entries(
        model_energies, reference_energies, materials, targets
    )

    def side(energies: dict[str, float]) -> pd.DataFrame:
        table = [(mid, formulas[mid], energies[mid]) for mid in formulas]
        target_rows = [(mid, formulas[mid], energies[mid]) for mid in chosen]
        return decomposition_energies(target_rows, table).set_index("material_id")

    ours, theirs = side(model), side(reference)
    table = pd.DataFrame({
        "material_id": chosen,
        "formula": [ours.loc[mid, "formula"] for mid in chosen],
        "decomposition_energy_model": [
            float(ours.loc[mid, "decomposition_energy"]) for mid in chosen
        ],
        "decomposition_energy_reference": [
            float(theirs.loc[mid, "decomposition_energy"]) for mid in chosen
        ],
        "stable_model": [bool(ours.loc[mid, "stable"]) for mid in chosen],
        "stable_reference": [bool(theirs.loc[mid, "stable"]) for mid in chosen],
    })
    table.insert(4, "decomposition_energy_error",
                 table["decomposition_energy_model"] - table["decomposition_energy_reference"])
    return HullErrors(table, _mae_mev(table["decomposition_energy_error"]))


def formation_energy_errors(
    model_energies: EnergyMapping,
    reference_energies: EnergyMapping,
    *,
    materials: pd.DataFrame | Mapping[str, CompositionLike],
    targets: Iterable[str] | None = None,
) -> HullErrors:
    """Formation energies per atom from each side's own elemental references, and their MAE.

    Each side's elemental reference of an element is its lowest energy among the single-element
    materials compared (every material of ``materials`` with a finite energy in both mappings),
    as on a hull; formation energies follow :func:`formation_energy_per_atom`.

    Args:
        model_energies, reference_energies, materials, targets: As in
            :func:`decomposition_energy_errors`.

    Returns:
        :class:`HullErrors` with a table of ``material_id``, ``formula``,
        ``formation_energy_model``, ``formation_energy_reference``, ``formation_energy_error``
        (model - reference, eV/atom), and the MAE in meV/atom.

    Raises:
        DataError: As in :func:`decomposition_energy_errors`.
    """
    formulas, model, reference, chosen = _common_entries(
        model_energies, reference_energies, materials, targets
    )

    def refs(energies: dict[str, float]) -> dict[str, float]:
        table = pd.DataFrame({
            "material_id": list(formulas),
            "formula": list(formulas.values()),
            "functional": "any",
            "relaxed_energy_per_atom": [energies[mid] for mid in formulas],
            "is_elemental_reference": [
                len(parse_composition(f, record=mid)) == 1 for mid, f in formulas.items()
            ],
        })
        return elemental_reference_energies(table)

    model_refs, reference_refs = refs(model), refs(reference)
    rows = []
    for mid in chosen:
        ours = formation_energy_per_atom(formulas[mid], model[mid], model_refs, record=mid)
        theirs = formation_energy_per_atom(formulas[mid], reference[mid], reference_refs,
                                           record=mid)
        rows.append((mid, parse_composition(formulas[mid], record=mid).reduced_formula, ours, theirs,
                     ours - theirs))
    table = pd.DataFrame(rows, columns=["material_id", "formula", "formation_energy_model",
                                        "formation_energy_reference", "formation_energy_error"])
    return HullErrors(table, _mae_mev(table["formation_energy_error"]))
