"""The canonical dataset format that every data source is parsed into.

A dataset is a folder with two files:

``frames.jsonl.gz``
    One JSON object per line, one line per frame (a structure with its labels):

    ============================  ==============================================================
    ``frame_id``                  unique string; for Materials Project data ``task-calc-step``
    ``material_id``               the material the frame belongs to (split and hulls use it)
    ``functional``                ``gga`` (GGA/GGA+U), ``r2scan``, or any other label
    ``species``                   element symbols, one per site
    ``lattice``                   3x3 lattice vectors as rows, Å
    ``frac_coords``               fractional coordinates, n x 3
    ``energy``                    total energy, eV; the training label (MP2020-corrected for
                                  GGA/GGA+U where known, as in MPtrj)
    ``energy_uncorrected``        total energy without MP2020 corrections, eV, or null
    ``forces``                    n x 3, eV/Å, or null
    ``stress``                    3x3, GPa, sign of ASE and CHGNet (positive = tensile), equal to
                                  -0.1 x the VASP/MPtrj value in kBar; or null
    ``magmoms``                   n magnetic moments, μB, or null
    ``source``                    the dataset the frame came from (``surrogate-default``, ...)
    ============================  ==============================================================

    Energy per atom is ``energy / len(species)`` and is not stored twice.

``materials.csv``
    One row per material and functional: ``material_id``, ``formula``, ``functional``,
    ``relaxed_energy_per_atom`` and ``formation_energy_per_atom`` (eV/atom, corrected for
    GGA/GGA+U where known), their ``*_uncorrected`` twins (equal to the corrected values for
    functionals without corrections, such as r2SCAN), and ``is_elemental_reference``.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Element, Lattice, Structure

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import atomic_path, write_csv_atomic

FUNCTIONAL_NAMES = {"gga": "GGA/GGA+U", "r2scan": "r2SCAN"}
FRAMES_FILE = "frames.jsonl.gz"
MATERIALS_FILE = "materials.csv"
MATERIAL_COLUMNS = (
    "material_id",
    "formula",
    "functional",
    "relaxed_energy_per_atom",
    "relaxed_energy_per_atom_uncorrected",
    "formation_energy_per_atom",
    "formation_energy_per_atom_uncorrected",
    "is_elemental_reference",
)
# Optional: surrogate datasets label each material once per teacher (a parse keeps one).
TEACHER_COLUMN = "teacher"
# Stress conversion between the canonical GPa (ASE/CHGNet sign) and VASP/MPtrj kBar.
KBAR_PER_GPA_VASP_SIGN = -10.0


def display_name(functional: str) -> str:
    """Human-readable name of a functional id (``gga`` -> ``GGA/GGA+U``)."""
    return FUNCTIONAL_NAMES.get(functional, functional)


def check_element(symbol: str, *, file: str | None, record: str | None, field: str) -> str:
    """Return ``symbol`` if it is a chemical element, else raise a located DataError."""
    if not isinstance(symbol, str) or not Element.is_valid_symbol(symbol):
        raise DataError(f"unknown element {symbol!r}", file=file, record=record, field=field)
    return symbol


@dataclass(frozen=True, kw_only=True, eq=False)
class Frame:
    """One structure with its labels in the canonical units (see the module docstring)."""

    frame_id: str
    material_id: str
    functional: str
    species: tuple[str, ...]
    lattice: np.ndarray
    frac_coords: np.ndarray
    energy: float | None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    magmoms: np.ndarray | None = None
    energy_uncorrected: float | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return len(self.species)

    @property
    def energy_per_atom(self) -> float | None:
        return None if self.energy is None else self.energy / self.n_atoms

    @property
    def energy_per_atom_uncorrected(self) -> float | None:
        if self.energy_uncorrected is None:
            return None
        return self.energy_uncorrected / self.n_atoms

    def to_structure(self) -> Structure:
        return Structure(Lattice(self.lattice), list(self.species), self.frac_coords)

    @classmethod
    def from_structure(cls, structure: Structure, **labels: Any) -> Frame:
        """Build a frame from a pymatgen structure (ordered, one element per site)."""
        if not structure.is_ordered:
            raise DataError(
                "disordered structures are not supported",
                record=labels.get("frame_id"),
                field="structure",
            )
        return cls(
            species=tuple(site.specie.symbol for site in structure),
            lattice=np.array(structure.lattice.matrix, dtype=float),
            frac_coords=np.array(structure.frac_coords, dtype=float),
            **labels,
        )

    def to_dict(self) -> dict[str, Any]:
        def arr(value: np.ndarray | None) -> list | None:
            return None if value is None else np.asarray(value).tolist()

        record = {
            "frame_id": self.frame_id,
            "material_id": self.material_id,
            "functional": self.functional,
            "species": list(self.species),
            "lattice": arr(self.lattice),
            "frac_coords": arr(self.frac_coords),
            "energy": self.energy,
            "energy_uncorrected": self.energy_uncorrected,
            "forces": arr(self.forces),
            "stress": arr(self.stress),
            "magmoms": arr(self.magmoms),
            "source": self.source,
        }
        if self.extra:
            record["extra"] = self.extra
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any], *, file: str | None = None) -> Frame:
        """Parse and validate a canonical record; errors name the file, frame and field."""
        rid = record.get("frame_id") if isinstance(record, dict) else None
        if not isinstance(record, dict):
            raise DataError("record is not a JSON object", file=file)
        for key in ("frame_id", "material_id", "functional", "species", "lattice", "frac_coords"):
            if record.get(key) is None:
                raise DataError("required field is missing", file=file, record=rid, field=key)
        frame = cls(
            frame_id=str(record["frame_id"]),
            material_id=str(record["material_id"]),
            functional=str(record["functional"]),
            species=tuple(record["species"]),
            lattice=_array(record["lattice"], file=file, record=rid, field="lattice"),
            frac_coords=_array(record["frac_coords"], file=file, record=rid, field="frac_coords"),
            energy=record.get("energy"),
            energy_uncorrected=record.get("energy_uncorrected"),
            forces=_array(record.get("forces"), file=file, record=rid, field="forces"),
            stress=_array(record.get("stress"), file=file, record=rid, field="stress"),
            magmoms=_array(record.get("magmoms"), file=file, record=rid, field="magmoms"),
            source=str(record.get("source", "")),
            extra=record.get("extra") or {},
        )
        validate_frame(frame, file=file)
        return frame


def _array(value: Any, *, file: str | None, record: str | None, field: str) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"not a numeric array ({exc})", file=file, record=record, field=field) from exc


def _finite_number(value: Any, *, file: str | None, record: str, field: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise DataError(f"expected a number, got {value!r}", file=file, record=record, field=field)
    if not math.isfinite(float(value)):
        raise DataError(f"value is {value} (not finite)", file=file, record=record, field=field)


def validate_frame(frame: Frame, *, file: str | None = None) -> None:
    """Check shapes, finiteness and element symbols; raise a located DataError if one fails.

    Missing optional labels (``None``) are allowed here; whether a frame without energy or
    forces is kept is the filters' decision (paper criterion 2).
    """
    rid = frame.frame_id
    n_atoms = len(frame.species)
    if n_atoms == 0:
        raise DataError("structure has no sites", file=file, record=rid, field="species")
    for symbol in frame.species:
        check_element(symbol, file=file, record=rid, field="species")
    expected = {
        "lattice": (3, 3),
        "frac_coords": (n_atoms, 3),
        "forces": (n_atoms, 3),
        "stress": (3, 3),
        "magmoms": (n_atoms,),
    }
    for name, shape in expected.items():
        value = getattr(frame, name)
        if value is None:
            continue
        if value.shape != shape:
            raise DataError(
                f"shape {value.shape} does not match {shape} for {n_atoms} atoms",
                file=file,
                record=rid,
                field=name,
            )
        if not np.all(np.isfinite(value)):
            raise DataError("contains NaN or infinite values", file=file, record=rid, field=name)
    _finite_number(frame.energy, file=file, record=rid, field="energy")
    _finite_number(frame.energy_uncorrected, file=file, record=rid, field="energy_uncorrected")
    if abs(np.linalg.det(frame.lattice)) < 1e-6:
        raise DataError("lattice has zero volume", file=file, record=rid, field="lattice")


def write_frames(path: str | Path, frames: Iterable[Frame]) -> int:
    """Write frames as gzip-compressed JSON lines; returns how many were written.

    The file is written under a temporary name and renamed when complete
    (:func:`~mlip_transfer.core.files.atomic_path`): a failure or kill mid-write (also one
    raised by the ``frames`` iterator) leaves nothing at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    # No name and mtime=0 in the gzip header keep the file, and its checksum, deterministic.
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as handle,
    ):
        for frame in frames:
            handle.write((json.dumps(frame.to_dict(), separators=(",", ":")) + "\n").encode())
            count += 1
    return count


def iter_frames(path: str | Path) -> Iterator[Frame]:
    """Read and validate frames written by :func:`write_frames`, one at a time."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"line {line_number} is not valid JSON ({exc.msg}); truncated file?",
                        file=str(path),
                        record=f"line {line_number}",
                    ) from exc
                yield Frame.from_dict(record, file=f"{path}:{line_number}")
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        # zlib.error (corrupted deflate data) is not an OSError; a missing file is no data error.
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(
            f"cannot read gzip stream ({exc!r}); truncated or corrupted file?", file=str(path)
        ) from exc


def read_frames(path: str | Path) -> list[Frame]:
    """Read all frames of a canonical ``frames.jsonl.gz``."""
    return list(iter_frames(path))


def write_materials(path: str | Path, table: pd.DataFrame) -> None:
    """Write the per-material table (atomically) after checking its columns; the optional
    ``teacher`` column is kept when present."""
    missing = [col for col in MATERIAL_COLUMNS if col not in table.columns]
    if missing:
        raise DataError(f"materials table lacks columns {missing}", file=str(path))
    columns = [*MATERIAL_COLUMNS, *([TEACHER_COLUMN] if TEACHER_COLUMN in table.columns else [])]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(path, table.loc[:, columns], index=False, float_format="%.8f")


def read_materials(path: str | Path) -> pd.DataFrame:
    """Read a per-material table and check its columns and values."""
    table = pd.read_csv(path, dtype={"material_id": str, "functional": str, "formula": str,
                                     TEACHER_COLUMN: str})
    missing = [col for col in MATERIAL_COLUMNS if col not in table.columns]
    if missing:
        raise DataError(f"columns {missing} are missing", file=str(path), field=missing[0])
    key = ["material_id", "functional", *([TEACHER_COLUMN] if TEACHER_COLUMN in table else [])]
    check_rows(
        table,
        table.duplicated(key),
        lambda row: "material appears twice for "
        + ", ".join(f"{column} {row[column]!r}" for column in key[1:]),
        path=path,
        field="material_id",
    )
    for col in ("relaxed_energy_per_atom", "formation_energy_per_atom"):
        bad = ~np.isfinite(table[col].to_numpy(dtype=float))
        check_rows(table, bad, lambda row: "value is NaN or missing", path=path, field=col)
    table["is_elemental_reference"] = table["is_elemental_reference"].astype(bool)
    return table


def check_rows(
    table: pd.DataFrame,
    bad: Any,
    reason: Callable[[Any], str],
    *,
    path: str | Path,
    field: str,
) -> None:
    """Raise a DataError naming the first row flagged ``bad`` (by its material id), if any.

    Args:
        table: A table with a ``material_id`` column, read from ``path``.
        bad: Boolean mask over the rows.
        reason: The error's reason, given the offending row.
        path: The file the table came from.
        field: The column at fault.
    """
    if bad.any():
        row = table[bad].iloc[0]
        raise DataError(reason(row), file=str(path), record=row.material_id, field=field)
