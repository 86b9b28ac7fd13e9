"""Elemental reference energies and formation energies per atom.

Formation energy per atom of a composition with atom fractions ``x_i``::

    E_f = E / N - sum_i x_i * mu_i

where ``mu_i`` is the energy per atom of element ``i`` in its elemental ground state, taken from
the same functional (and the same correction scheme) as ``E``.

The convex-hull (decomposition) energies of materials are here too, so the formation and hull
energies of a set of materials come from one tested module; comparing a model's formation and
hull energies with a reference's is in :mod:`mlip_transfer.energy_scale.hull_errors`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.compositions import parse_composition

if TYPE_CHECKING:
    # pymatgen.analysis.phase_diagram pulls in scipy.interpolate, matplotlib and plotly (~2 s);
    # it is imported where a hull is built, so jobs that only need formation energies (or
    # import this module through transfer.evaluation) do not pay for it.
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

CompositionLike = Composition | str | Mapping[str, float]


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
        elements = parse_composition(formula, record=record).elements
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
    comp = parse_composition(composition, record=record)
    shift = 0.0
    for element, fraction in comp.fractional_composition.items():
        symbol = element.symbol
        if symbol not in references:
            raise DataError(f"no elemental reference energy for element {symbol!r}", record=record)
        shift += fraction * references[symbol]
    return float(energy_per_atom) - shift


# --------------------------------------------------------------------------- convex hulls
#
# Decomposition energy (Bartel et al., npj Comput. Mater. 6, 97 (2020)), eV/atom, of a material
# with energy E against the other materials of its chemical system:
#
# * unstable (above the hull): its energy above the hull, > 0
#   (``PhaseDiagram.get_e_above_hull``);
# * on the hull: E minus the energy of the lowest combination of materials of *other*
#   compositions, <= 0 (``PhaseDiagram.get_decomp_and_phase_separation_energy``, the pymatgen
#   function written for Bartel's decomposition enthalpy).
#
# The split is made here and not left to ``get_decomp_and_phase_separation_energy`` alone
# because that function, given an unstable polymorph of a stable composition, returns the
# stable polymorph's phase-separation energy plus the polymorph gap (which can be negative for
# an unstable material) rather than its energy above the hull.

HullEntries = pd.DataFrame | Iterable[tuple[str, str, float]]
# A material counts as on the hull if it is at most this far above it (eV/atom).
HULL_TOLERANCE = 1e-8


def _entry_rows(entries: HullEntries) -> list[tuple[str, str, float]]:
    if isinstance(entries, pd.DataFrame):
        missing = [c for c in ("material_id", "formula", "energy_per_atom") if c not in entries]
        if missing:
            raise DataError(f"entry table lacks columns {missing}", field=missing[0])
        rows = zip(entries["material_id"], entries["formula"], entries["energy_per_atom"])
    else:
        rows = entries
    out = []
    seen: set[str] = set()
    for mid, formula, energy in rows:
        mid = str(mid)
        if mid in seen:
            raise DataError("material appears twice among the hull entries", record=mid)
        seen.add(mid)
        if energy is None or not np.isfinite(float(energy)):
            raise DataError(f"energy per atom is {energy} (not finite)", record=mid,
                            field="energy_per_atom")
        out.append((mid, str(formula), float(energy)))
    return out


def _pd_entries(entries: HullEntries) -> dict[str, PDEntry]:
    """Material id -> PDEntry whose total energy is energy per atom x atoms in the formula."""
    from pymatgen.analysis.phase_diagram import PDEntry

    result = {}
    for mid, formula, energy in _entry_rows(entries):
        comp = parse_composition(formula, record=mid)
        result[mid] = PDEntry(comp, energy * comp.num_atoms, name=comp.reduced_formula,
                              attribute=mid)
    return result


def _check_terminals(entries: Iterable[PDEntry], elements: Iterable[str], *,
                     record: str | None = None, where: str = "the hull entries") -> None:
    present = {e.elements[0].symbol for e in entries if e.is_element}
    for symbol in sorted(set(elements)):
        if symbol not in present:
            raise DataError(
                f"no elemental reference for element {symbol!r} (no single-element material "
                f"with an energy in {where})",
                record=record,
            )


def phase_diagram(entries: HullEntries) -> PhaseDiagram:
    """A pymatgen phase diagram of materials given by energy per atom.

    Args:
        entries: A table with columns ``material_id``, ``formula`` and ``energy_per_atom``
            (eV/atom), or an iterable of such triples. Each becomes a ``PDEntry`` with total
            energy = energy per atom x number of atoms in ``formula`` and
            ``attribute = material_id``.

    The hull is computed in as many dimensions as there are elements: keep to one chemical
    system (a few elements); :func:`decomposition_energies` splits a large set by system.

    Raises:
        DataError: Duplicate id, non-finite energy, unparsable formula, or an element without a
            single-element material (named in the message).
    """
    from pymatgen.analysis.phase_diagram import PhaseDiagram

    pd_entries = list(_pd_entries(entries).values())
    if not pd_entries:
        raise DataError("no entries to build a phase diagram from")
    elements = {el.symbol for e in pd_entries for el in e.elements}
    _check_terminals(pd_entries, elements)
    return PhaseDiagram(pd_entries)


def _decomposition(diagram: PhaseDiagram, entry: PDEntry) -> tuple[float, bool, dict]:
    decomp, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
    if e_hull > HULL_TOLERANCE:
        return float(e_hull), False, decomp
    decomp, energy = diagram.get_decomp_and_phase_separation_energy(entry)
    return float(energy), True, decomp


def decomposition_energies(target_table: HullEntries, reference_table: HullEntries) -> pd.DataFrame:
    """Decomposition energy of each target against the hull of the targets and references.

    The hull of each target's chemical system is built from every entry of ``reference_table``
    and ``target_table`` whose elements lie in that system (a target replaces a reference entry
    with the same material id), so hulls stay small whatever the number of elements overall.
    The sign convention is described above this function's source: > 0 above the hull, <= 0
    on it.

    Args:
        target_table: Materials to evaluate (``material_id``, ``formula``, ``energy_per_atom``).
        reference_table: The competing materials, same layout; must hold a single-element
            material for every element of every target (unless the target table does).

    Returns:
        One row per target, in input order: ``material_id``, ``formula``, ``energy_per_atom``,
        ``formation_energy_per_atom`` (vs the lowest single-element entries), ``e_above_hull``,
        ``decomposition_energy`` (eV/atom), ``stable`` (on the hull), ``decomposition`` (the
        competing products, ``"Li2O2 (id) + O2 (id)"``).

    Raises:
        DataError: An element of a target has no single-element entry (named in the message),
            or an entry is malformed.
    """
    from pymatgen.analysis.phase_diagram import PhaseDiagram

    targets = _pd_entries(target_table)
    pool = {**_pd_entries(reference_table), **targets}
    by_system: dict[frozenset[str], list[PDEntry]] = {}
    for entry in pool.values():
        by_system.setdefault(frozenset(el.symbol for el in entry.elements), []).append(entry)
    diagrams: dict[frozenset[str], PhaseDiagram] = {}
    rows = []
    for mid, entry in targets.items():
        system = frozenset(el.symbol for el in entry.elements)
        if system not in diagrams:
            symbols = sorted(system)
            members = [
                member
                for size in range(1, len(symbols) + 1)
                for subset in itertools.combinations(symbols, size)
                for member in by_system.get(frozenset(subset), [])
            ]
            _check_terminals(members, system, record=mid)
            diagrams[system] = PhaseDiagram(members)
        diagram = diagrams[system]
        e_hull = float(diagram.get_e_above_hull(entry, allow_negative=True))
        energy, stable, decomp = _decomposition(diagram, entry)
        products = " + ".join(
            f"{e.composition.reduced_formula} ({e.attribute})"
            for e in sorted(decomp, key=lambda e: (e.composition.reduced_formula, str(e.attribute)))
        )
        rows.append({
            "material_id": mid,
            "formula": entry.composition.reduced_formula,
            "energy_per_atom": entry.energy_per_atom,
            "formation_energy_per_atom": float(diagram.get_form_energy_per_atom(entry)),
            "e_above_hull": e_hull,
            "decomposition_energy": energy,
            "stable": stable,
            "decomposition": products,
        })
    columns = ["material_id", "formula", "energy_per_atom", "formation_energy_per_atom",
               "e_above_hull", "decomposition_energy", "stable", "decomposition"]
    return pd.DataFrame(rows, columns=columns)
