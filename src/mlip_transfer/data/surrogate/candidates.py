"""The starting structures of a surrogate build and the seeded choice among them."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.surrogate.settings import ELEMENT_PREFIX

_WBM_FIELDS = ("material_id", "structure", "energy", "corrected_energy")


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A starting structure with what the labels need to know about it."""

    material_id: str
    structure: Structure
    correction_per_atom: float  # MP2020 correction of the GGA entry, eV/atom
    is_elemental_reference: bool
    origin: str


def _plain_structure(record: dict[str, Any], *, file: str, material_id: str) -> Structure:
    try:
        structure = Structure.from_dict(record)
    except Exception as exc:  # pymatgen raises many types on malformed dicts
        raise DataError(f"bad structure ({exc})", file=file, record=material_id) from exc
    if not structure.is_ordered:
        raise DataError("disordered structure", file=file, record=material_id, field="structure")
    # Drop site properties (magmoms, forces) of the source so nothing leaks into the inputs.
    return Structure(structure.lattice, structure.species, structure.frac_coords)


def _read_json_gz(path: str | Path) -> Any:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _wbm_candidates(wbm_path: str | Path) -> dict[str, Candidate]:
    candidates: dict[str, Candidate] = {}
    for index, record in enumerate(_read_json_gz(wbm_path)):
        mid = record.get("material_id") or f"entry {index}"
        for key in _WBM_FIELDS:
            if record.get(key) is None:
                raise DataError(
                    "required field is missing", file=str(wbm_path), record=mid, field=key
                )
        structure = _plain_structure(record["structure"], file=str(wbm_path), material_id=mid)
        correction = (record["corrected_energy"] - record["energy"]) / len(structure)
        candidates[mid] = Candidate(
            material_id=mid,
            structure=structure,
            correction_per_atom=float(correction),
            is_elemental_reference=False,
            origin="WBM",
        )
    return candidates


def _elemental_candidates(elemental_path: str | Path) -> dict[str, Candidate]:
    candidates: dict[str, Candidate] = {}
    for symbol, record in sorted(_read_json_gz(elemental_path).items()):
        mid = f"{ELEMENT_PREFIX}{symbol}"
        if record.get("structure") is None:
            raise DataError("required field is missing", file=str(elemental_path), record=symbol,
                            field="structure")
        structure = _plain_structure(record["structure"], file=str(elemental_path), material_id=mid)
        if [el.symbol for el in structure.composition.elements] != [symbol]:
            raise DataError(
                f"structure is not pure {symbol}", file=str(elemental_path), record=symbol
            )
        candidates[mid] = Candidate(
            material_id=mid,
            structure=structure,
            correction_per_atom=0.0,
            is_elemental_reference=True,
            origin=f"MatPES-PBE {record.get('matpes_id', '?')}",
        )
    return candidates


def load_candidates(*, wbm_path: str | Path, elemental_path: str | Path) -> dict[str, Candidate]:
    """Read the WBM structures and the elemental ground states, keyed by material id.

    Raises:
        DataError: A record lacks a field or holds an unusable structure.
    """
    return {**_wbm_candidates(wbm_path), **_elemental_candidates(elemental_path)}


def digest(*parts: object) -> bytes:
    """SHA-256 of the parts joined by colons: the seed of every random choice of a build."""
    return hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()


def select_materials(material_ids: Iterable[str], *, n: int, seed: int) -> list[str]:
    """Draw ``n`` material ids by a seeded hash order that ignores the input order.

    Raises:
        ConfigError: Fewer than ``n`` ids are available.
    """
    pool = sorted(set(material_ids), key=lambda mid: (digest("select", seed, mid), mid))
    if n > len(pool):
        raise ConfigError(f"n_materials={n} exceeds the {len(pool)} materials available")
    return sorted(pool[:n])


def with_elemental_references(
    material_ids: Iterable[str], candidates: dict[str, Candidate]
) -> list[str]:
    """Add the elemental reference of every element present; raise DataError if one is missing."""
    chosen = set(material_ids)
    for mid in list(chosen):
        if mid not in candidates:
            raise DataError("unknown material id", record=mid)
        for element in candidates[mid].structure.composition.elements:
            ref = f"{ELEMENT_PREFIX}{element.symbol}"
            if ref not in candidates:
                raise DataError(
                    f"no elemental reference structure for {element.symbol}", record=mid
                )
            chosen.add(ref)
    return sorted(chosen)
