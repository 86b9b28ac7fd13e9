"""Materials Project thermo docs -> the canonical per-material table (``MATERIAL_COLUMNS``)."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import MATERIAL_COLUMNS

# The client's logger: conversion warnings read as part of the MP data handling.
log = logging.getLogger("mlip_transfer.data.loaders.mp_api")

# MP thermo types -> functional ids of the canonical format. Older database builds label the
# r2SCAN docs with the run type "r2SCAN"; types are matched case-insensitively.
THERMO_TYPES = {"GGA_GGA+U": "gga", "R2SCAN": "r2scan"}


def doc_key(doc: dict) -> tuple[str, str]:
    """Sort and identity key of a thermo doc: (material id, thermo type)."""
    return str(doc.get("material_id")), str(doc.get("thermo_type"))


def _float(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _composition(doc: dict) -> dict[str, float]:
    from pymatgen.core import Composition

    raw = doc.get("composition")
    try:
        if isinstance(raw, dict) and raw:
            comp = Composition({k: v for k, v in raw.items() if not k.startswith("@")})
        else:
            comp = Composition(doc["formula_pretty"])
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"no usable composition ({exc!r})",
            record=str(doc.get("material_id")),
            field="composition",
        ) from exc
    return dict(comp.get_el_amt_dict())


def _reduced_formula(comp: dict[str, float]) -> str:
    from pymatgen.core import Composition

    return Composition(comp).reduced_formula


def _formation(comp: dict[str, float], energy: float, refs: dict[str, float]) -> float:
    total = sum(comp.values())
    if math.isnan(energy) or any(el not in refs for el in comp):
        return math.nan
    return energy - sum(amount / total * refs[el] for el, amount in comp.items())


def _references(rows: list[dict], column: str) -> dict[str, tuple[float, str]]:
    """Lowest ``column`` energy per element among elemental rows: element -> (energy, id)."""
    best: dict[str, tuple[float, str]] = {}
    for row in rows:
        if len(row["comp"]) != 1 or math.isnan(row[column]):
            continue
        (element,) = row["comp"]
        candidate = (row[column], row["material_id"])
        if element not in best or candidate < best[element]:
            best[element] = candidate
    return best


@dataclass(kw_only=True)
class _Tally:
    """What the conversion skipped or could not compute, for ``table.attrs["notes"]``."""

    ignored: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: int = 0
    missing_refs: dict[str, list[str]] = field(default_factory=dict)
    unformed: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    left_out: list[dict[str, str]] = field(default_factory=list)

    def notes(self) -> dict[str, Any]:
        """The notes, each logged as a warning where a reader should know."""
        notes: dict[str, Any] = {}
        if self.missing_refs:
            notes["missing_elemental_references"] = self.missing_refs
            notes["rows_without_uncorrected_formation_energy"] = self.unformed
            log.warning(
                "no elemental reference in the thermo docs for %s; %s rows have a NaN uncorrected "
                "formation energy",
                self.missing_refs,
                self.unformed,
            )
        if self.dropped:
            notes["rows_without_energy_left_out"] = self.dropped
            log.warning("left out %s thermo docs without a relaxed or formation energy", self.dropped)
        if self.ignored:
            notes["ignored_thermo_types"] = dict(sorted(self.ignored.items()))
        if self.duplicates:
            notes["duplicate_docs"] = self.duplicates
            log.warning("ignored %d duplicate thermo docs", self.duplicates)
        return notes


def _rows_by_functional(docs: Iterable[dict], tally: _Tally) -> dict[str, list[dict]]:
    """One row per material and functional with its energies and composition (``comp``)."""
    rows_by_functional: dict[str, list[dict]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    upper = {key.upper(): value for key, value in THERMO_TYPES.items()}
    for doc in sorted(docs, key=doc_key):
        functional = upper.get(str(doc.get("thermo_type")).upper())
        if functional is None:
            tally.ignored[str(doc.get("thermo_type"))] += 1
            continue
        material_id = str(doc["material_id"])
        if (material_id, functional) in seen:
            tally.duplicates += 1
            continue
        seen.add((material_id, functional))
        energy = _float(doc.get("energy_per_atom"))
        uncorrected = _float(doc.get("uncorrected_energy_per_atom"))
        if math.isnan(uncorrected) and functional != "gga":
            uncorrected = energy  # no corrections are applied to r2SCAN energies
        comp = _composition(doc)
        rows_by_functional[functional].append(
            {
                "doc": doc,
                "material_id": material_id,
                "formula": doc.get("formula_pretty") or _reduced_formula(comp),
                "functional": functional,
                "comp": comp,
                "relaxed_energy_per_atom": energy,
                "relaxed_energy_per_atom_uncorrected": uncorrected,
                "formation_energy_per_atom": _float(doc.get("formation_energy_per_atom")),
            }
        )
    return rows_by_functional


def _describe(value: Any) -> str:
    return "missing" if value is None else f"{value!r}, not a finite number"


def _left_out(doc: dict, row: dict, comp: dict[str, float], refs: dict) -> dict[str, str]:
    """Why a doc's row cannot be in the table: its id, the field at fault and the reason."""
    thermo_type = str(doc.get("thermo_type"))
    record = str(doc.get("thermo_id") or f"{row['material_id']}_{thermo_type}")
    if math.isnan(row["relaxed_energy_per_atom"]):
        field_name, why = "energy_per_atom", _describe(doc.get("energy_per_atom"))
    else:
        absent = sorted(set(comp) - set(refs))
        field_name = "formation_energy_per_atom"
        why = _describe(doc.get(field_name)) + (
            f", and no elemental reference for {', '.join(absent)} to compute it" if absent else ""
        )
    return {
        "record": record,
        "material_id": row["material_id"],
        "field": field_name,
        "detail": f"thermo doc ({thermo_type}): {field_name} is {why}; left out of the "
        "materials table, so this material's frames have no relaxed reference",
    }


def _with_formation_energies(functional: str, group: list[dict], tally: _Tally) -> list[dict]:
    """The rows of one functional that the table can hold, with their formation energies."""
    refs_unc = _references(group, "relaxed_energy_per_atom_uncorrected")
    refs_cor = _references(group, "relaxed_energy_per_atom")
    ref_ids = {material_id for _, material_id in refs_unc.values()}
    absent: set[str] = set()
    rows = []
    for row in group:
        comp, doc = row.pop("comp"), row.pop("doc")
        absent |= set(comp) - set(refs_unc)
        row["formation_energy_per_atom_uncorrected"] = _formation(
            comp,
            row["relaxed_energy_per_atom_uncorrected"],
            {el: e for el, (e, _) in refs_unc.items()},
        )
        if math.isnan(row["formation_energy_per_atom"]):
            row["formation_energy_per_atom"] = _formation(
                comp, row["relaxed_energy_per_atom"], {el: e for el, (e, _) in refs_cor.items()}
            )
        row["is_elemental_reference"] = row["material_id"] in ref_ids
        if math.isnan(row["formation_energy_per_atom_uncorrected"]):
            tally.unformed[functional] = tally.unformed.get(functional, 0) + 1
        if math.isnan(row["relaxed_energy_per_atom"]) or math.isnan(
            row["formation_energy_per_atom"]
        ):
            tally.dropped[functional] = tally.dropped.get(functional, 0) + 1
            tally.left_out.append(_left_out(doc, row, comp, refs_cor))
            continue
        rows.append(row)
    if absent:
        tally.missing_refs[functional] = sorted(absent)
    return rows


def thermo_docs_to_materials(docs: Iterable[dict]) -> pd.DataFrame:
    """Build the canonical per-material table (``dataset.MATERIAL_COLUMNS``) from thermo docs.

    ``relaxed_energy_per_atom`` and ``formation_energy_per_atom`` are MP's values (MP2020-
    corrected for ``GGA_GGA+U``). ``*_uncorrected`` formation energies are computed from the
    uncorrected energies against, per functional, the elemental doc of lowest uncorrected energy
    per atom among the docs given; that doc is flagged ``is_elemental_reference``. A material
    with an element whose reference is absent gets a NaN uncorrected formation energy. Rows
    without a relaxed or corrected formation energy (which the table cannot hold) are left out.
    Such gaps, ignored thermo types and duplicate docs are counted in ``table.attrs["notes"]``
    and logged as warnings; each left-out doc is listed in ``table.attrs["left_out_docs"]``
    (``record`` = the thermo id, ``material_id``, ``field``, ``detail``), which the parse adds
    to ``dropped.csv``.

    Args:
        docs: ThermoDoc dicts (from :func:`~mlip_transfer.data.loaders.mp_api.fetch_thermo_docs`
            or :func:`~mlip_transfer.data.loaders.mp_api.load_thermo_docs`).

    Returns:
        One row per material and functional (``gga`` for GGA_GGA+U, ``r2scan`` for R2SCAN),
        sorted by material id and functional.
    """
    tally = _Tally()
    rows: list[dict] = []
    for functional, group in sorted(_rows_by_functional(docs, tally).items()):
        rows += _with_formation_energies(functional, group, tally)
    table = pd.DataFrame(rows, columns=list(MATERIAL_COLUMNS))
    table = table.sort_values(["material_id", "functional"], ignore_index=True)
    table["is_elemental_reference"] = table["is_elemental_reference"].astype(bool)
    table.attrs["notes"] = tally.notes()
    table.attrs["left_out_docs"] = sorted(
        tally.left_out, key=lambda doc: (doc["material_id"], doc["record"])
    )
    return table
