"""Compositions as the AtomRef fits see them: element amounts and rows of atom fractions.

A composition may be a pymatgen ``Composition``, a formula, an ``{element: amount}`` mapping or
a list of species (one per atom); species such as ``Fe2+`` fold into their element.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from pymatgen.core import Composition, Element

from mlip_transfer.core.errors import DataError

# A composition: pymatgen Composition, formula string, {element: amount} or a list of species.
CompositionLike = Composition | str | Mapping[str, float] | Sequence[str]


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (the column order of composition matrices)."""
    return Element(symbol).Z


def parse_composition(
    value: Composition | str | Mapping[str, float], *, record: str | None = None
) -> Composition:
    """``value`` as a pymatgen ``Composition``.

    Raises:
        DataError: It cannot be parsed (the message names ``record``).
    """
    try:
        return value if isinstance(value, Composition) else Composition(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"cannot parse composition {value!r} ({exc})", record=record) from exc


def element_amounts(composition: CompositionLike, *, record: str | None = None) -> dict[str, float]:
    """Absolute amount of each element in a composition (atoms, or formula-unit amounts).

    Raises:
        DataError: The composition cannot be parsed, is empty, or has a negative amount.
    """
    if not isinstance(composition, Composition | str | Mapping):
        # A species list: count symbols directly (Composition arithmetic is slow at scale).
        amounts = dict(Counter(str(symbol) for symbol in composition))
        for symbol in amounts:
            if not Element.is_valid_symbol(symbol):
                raise DataError(f"unknown element {symbol!r}", record=record, field="species")
    else:
        comp = parse_composition(composition, record=record)
        amounts = {}
        for specie, amount in comp.items():  # Species such as Fe2+ fold into their element
            symbol = getattr(specie, "symbol", str(specie))
            amounts[symbol] = amounts.get(symbol, 0.0) + float(amount)
        amounts = {el: value for el, value in amounts.items() if value != 0}
    if not amounts or any(value < 0 for value in amounts.values()):
        raise DataError(f"composition {composition!r} is empty or negative", record=record)
    return amounts


def record_ids(n: int, records: Sequence[str] | None) -> list[str]:
    """Ids naming ``n`` structures in errors: ``records`` as strings, or ``"index i"``."""
    if records is None:
        return [f"index {i}" for i in range(n)]
    if len(records) != n:
        raise DataError(f"{len(records)} record ids for {n} compositions")
    return [str(r) for r in records]


def composition_matrix(
    compositions: Iterable[CompositionLike],
    elements: Sequence[str] | None = None,
    *,
    records: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Rows of composition fractions (intensive, each row sums to 1), one per structure.

    Args:
        compositions: Compositions (pymatgen, formula, {element: amount} or species list).
        elements: Column order. Default: every element present, sorted by atomic number.
        records: Ids naming the structures in errors (default: their index).

    Returns:
        ``(A, elements)``: an ``n x len(elements)`` float array and its column elements.

    Raises:
        DataError: A composition cannot be parsed or holds an element not in ``elements``.
    """
    compositions = list(compositions)
    ids = record_ids(len(compositions), records)
    amounts = [element_amounts(comp, record=rid) for comp, rid in zip(compositions, ids)]
    if elements is None:
        elements = sorted({el for row in amounts for el in row}, key=atomic_number)
    else:
        elements = [str(el) for el in elements]
        for el in elements:
            if not Element.is_valid_symbol(el):
                raise DataError(f"unknown element {el!r}", field="elements")
    column = {el: j for j, el in enumerate(elements)}
    matrix = np.zeros((len(amounts), len(elements)))
    for i, (row, rid) in enumerate(zip(amounts, ids)):
        total = sum(row.values())
        for el, amount in row.items():
            if el not in column:
                raise DataError(f"element {el!r} is not among the requested elements", record=rid)
            matrix[i, column[el]] = amount / total
    return matrix, list(elements)
