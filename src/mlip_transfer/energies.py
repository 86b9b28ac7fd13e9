"""Elemental reference energies and formation energies per atom.

Formation energy per atom of a composition with atom fractions ``x_i``::

    E_f = E / N - sum_i x_i * mu_i

where ``mu_i`` is the energy per atom of element ``i`` in its elemental ground state, taken from
the same functional (and the same correction scheme) as ``E``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from mlip_transfer.errors import DataError

CompositionLike = Composition | str | Mapping[str, float]


def _composition(value: CompositionLike, *, record: str | None) -> Composition:
    try:
        return value if isinstance(value, Composition) else Composition(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"cannot parse composition {value!r} ({exc})", record=record) from exc


def elemental_reference_energies(
    entries: pd.DataFrame | Mapping[str, float],
    *,
    functional: str | None = None,
    column: str = "relaxed_energy_per_atom",
) -> dict[str, float]:
    """Energy per atom of each element's ground state.

    Where an element has several candidate structures the lowest energy wins, as on a hull.

    Args:
        entries: Either a materials table (``dataset.MATERIAL_COLUMNS``; only rows with
            ``is_elemental_reference`` true are used, the element read from ``formula``), or a
            mapping from a single-element formula (``"Fe"``, ``"O2"``) to energy per atom (eV).
        functional: For a table, the functional whose rows to use. Required when the table
            holds several functionals.
        column: For a table, the energy-per-atom column to read (e.g. the ``_uncorrected`` twin).

    Returns:
        Element symbol -> energy per atom (eV/atom).

    Raises:
        DataError: A formula is not a single element, an energy is not finite, or the
            functional is ambiguous.
    """
    if isinstance(entries, pd.DataFrame):
        rows = entries[entries["is_elemental_reference"].astype(bool)]
        if functional is not None:
            rows = rows[rows["functional"] == functional]
        elif rows["functional"].nunique() > 1:
            raise DataError(
                f"table holds functionals {sorted(rows['functional'].unique())}; pass functional=",
                field="functional",
            )
        pairs = [
            (str(mid), str(formula), float(energy))
            for mid, formula, energy in zip(rows["material_id"], rows["formula"], rows[column])
        ]
    else:
        pairs = [(str(key), str(key), float(energy)) for key, energy in entries.items()]

    references: dict[str, float] = {}
    for record, formula, energy in pairs:
        elements = _composition(formula, record=record).elements
        if len(elements) != 1:
            raise DataError(
                f"elemental reference {formula!r} is not a single element", record=record
            )
        if not np.isfinite(energy):
            raise DataError("reference energy is not finite", record=record, field=column)
        symbol = elements[0].symbol
        references[symbol] = min(energy, references.get(symbol, np.inf))
    return references


def formation_energy_per_atom(
    composition: CompositionLike,
    energy_per_atom: float,
    references: Mapping[str, float],
    *,
    record: str | None = None,
) -> float:
    """Formation energy per atom relative to elemental references (eV/atom).

    Args:
        composition: Composition of the material (only atom fractions matter).
        energy_per_atom: Its energy per atom, eV/atom.
        references: Element symbol -> reference energy per atom, same functional.
        record: Material id used to locate errors.

    Raises:
        DataError: An element of the composition has no reference energy.
    """
    comp = _composition(composition, record=record)
    shift = 0.0
    for element, fraction in comp.fractional_composition.items():
        symbol = element.symbol
        if symbol not in references:
            raise DataError(f"no elemental reference energy for element {symbol!r}", record=record)
        shift += fraction * references[symbol]
    return float(energy_per_atom) - shift
