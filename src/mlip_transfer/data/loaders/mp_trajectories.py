"""Stream the Materials Project trajectory JSON shared by MPtrj and MP-r2SCAN.

Layout (one JSON object, up to 11 GB)::

    {mp_id: {frame_id: {"structure": Structure.as_dict(), "uncorrected_total_energy": eV,
                        "corrected_total_energy": eV (MPtrj only, MP2020),
                        "energy_per_atom": eV/atom, "ef_per_atom", "e_per_atom_relaxed",
                        "ef_per_atom_relaxed", "force": n x 3 eV/Å,
                        "stress": 3 x 3 kBar (VASP sign), "magmom": [μB] or null,
                        "bandgap", "mp_id"}}}

The file is read one material at a time with ``ijson`` so it never has to fit in memory. Every
key except ``structure`` is optional. Canonical labels (see :mod:`mlip_transfer.data.dataset`):

* ``energy`` = ``corrected_total_energy``, else ``uncorrected_total_energy``, else
  ``energy_per_atom * n_atoms``, else None (a missing label, left to the filters);
* ``energy_uncorrected`` = ``uncorrected_total_energy``;
* ``stress`` (GPa, positive = tensile) = -0.1 x ``stress`` (kBar, VASP sign);
* ``extra["e_per_atom_relaxed"]`` keeps the relaxed reference energy when present.

Bare ``NaN``/``Infinity`` tokens, which Python's ``json.dump`` writes but JSON parsers reject,
are accepted where a value is expected so that they are reported as invalid values of a named
frame and field rather than as a broken file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.checks import LoadChecks, check_distances, check_supported_element
from mlip_transfer.data.dataset import Frame, check_element, validate_frame
from mlip_transfer.data.loaders._common import (
    array,
    check_on_invalid,
    drop_invalid,
    number,
    relocate,
)
from mlip_transfer.data.report import ParseReport

log = logging.getLogger(__name__)

# Canonical field -> key of the MP layout, so errors name what the user sees in the file.
_SOURCE_FIELDS = {
    "species": "structure",
    "lattice": "structure.lattice.matrix",
    "frac_coords": "structure.sites",
    "forces": "force",
    "stress": "stress",
    "magmoms": "magmom",
    "energy_uncorrected": "uncorrected_total_energy",
}
_ENERGY_KEYS = ("corrected_total_energy", "uncorrected_total_energy")


class _NonFiniteQuoter:
    """Binary reader that quotes bare NaN/Infinity value tokens (``: NaN,`` -> ``: "NaN",``).

    Only tokens in value position (after ``:``, ``,`` or ``[`` and before ``,``, ``]`` or ``}``)
    are touched. Each chunk is cut just before its last ``:``, ``,`` or ``[``, which cannot fall
    inside such a token, so tokens split across reads are still seen whole.
    """

    _TOKEN = re.compile(rb"([:,\[]\s*)(-?Infinity|NaN)(?=\s*[,\]}])")
    _CHUNK = 1 << 16

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._pending = b""
        self._ready = b""
        self._eof = False
        self.position = 0  # raw bytes handed on to the parser (approximate error location)

    def _fill(self) -> None:
        while not self._ready and not self._eof:
            chunk = self._raw.read(self._CHUNK)
            buffer = self._pending + chunk
            if not chunk:
                self._eof, cut = True, len(buffer)
            else:
                cut = max(buffer.rfind(b":"), buffer.rfind(b","), buffer.rfind(b"["))
                if cut <= 0:
                    self._pending = buffer
                    continue
            head, self._pending = buffer[:cut], buffer[cut:]
            self.position += len(head)
            if b"NaN" in head or b"Infinity" in head:
                # Include the next byte so the look-ahead sees it; it is never rewritten.
                tail = buffer[cut : cut + 1]
                fixed = self._TOKEN.sub(rb'\1"\2"', head + tail)
                head = fixed[: len(fixed) - len(tail)]
            self._ready = head

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(self._CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        self._fill()
        out, self._ready = self._ready[:size], self._ready[size:]
        return out


def _parse_structure(
    value: Any, *, file: str, record: str, checks: LoadChecks
) -> tuple[tuple[str, ...], Any, Any]:
    """Species, lattice and fractional coordinates from ``Structure.as_dict()``.

    Reading the dict directly (instead of ``Structure.from_dict``) is several times faster on
    1.5 M frames and lets every error name the offending site.
    """
    if not isinstance(value, dict):
        raise DataError(
            "structure is missing or not an object", file=file, record=record, field="structure"
        )
    try:
        matrix = value["lattice"]["matrix"]
        sites = value["sites"]
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"structure lacks {exc}", file=file, record=record, field="structure"
        ) from exc
    species, coords = [], []
    for index, site in enumerate(sites):
        where = f"structure.sites[{index}]"
        try:
            occupants = site["species"]
            coords.append(site["abc"])
        except (KeyError, TypeError) as exc:
            raise DataError(f"site lacks {exc}", file=file, record=record, field=where) from exc
        if len(occupants) != 1 or float(occupants[0].get("occu", 1.0)) != 1.0:
            raise DataError(
                "disordered site (not supported)",
                file=file,
                record=record,
                field=f"{where}.species",
            )
        symbol = check_element(
            occupants[0].get("element"), file=file, record=record, field=f"{where}.species"
        )
        species.append(
            check_supported_element(
                symbol, checks=checks, file=file, record=record, field=f"{where}.species"
            )
        )
    lattice = array(matrix, file=file, record=record, field="structure.lattice")
    frac_coords = array(coords, file=file, record=record, field="structure.sites")
    return tuple(species), lattice, frac_coords


def parse_mp_frame(
    frame_id: str,
    record: Any,
    *,
    material_id: str,
    functional: str,
    source: str,
    file: str,
    checks: LoadChecks | None = None,
) -> Frame:
    """Turn one frame record of the MP layout into a validated canonical :class:`Frame`.

    ``checks`` are the load-time checks of elements and distances (default: :class:`LoadChecks`).

    Raises:
        DataError: naming the file, the frame id and the offending key.
    """
    if not isinstance(record, dict):
        raise DataError("frame record is not an object", file=file, record=frame_id)
    checks = checks or LoadChecks()
    species, lattice, frac_coords = _parse_structure(
        record.get("structure"), file=file, record=frame_id, checks=checks
    )
    n_atoms = len(species)
    values = {
        key: number(record.get(key), file=file, record=frame_id, field=key)
        for key in (*_ENERGY_KEYS, "energy_per_atom", "e_per_atom_relaxed")
    }
    energy = values["corrected_total_energy"]
    if energy is None:
        energy = values["uncorrected_total_energy"]
    if energy is None and values["energy_per_atom"] is not None:
        energy = values["energy_per_atom"] * n_atoms
    stress = array(record.get("stress"), file=file, record=frame_id, field="stress")
    extra = {}
    if values["e_per_atom_relaxed"] is not None:
        extra["e_per_atom_relaxed"] = values["e_per_atom_relaxed"]
    if isinstance(record.get("electronic_converged"), bool):  # not in MP files; honoured if added
        extra["electronic_converged"] = record["electronic_converged"]
    frame = Frame(
        frame_id=str(frame_id),
        material_id=material_id,
        functional=functional,
        species=species,
        lattice=lattice,
        frac_coords=frac_coords,
        energy=energy,
        energy_uncorrected=values["uncorrected_total_energy"],
        forces=array(record.get("force"), file=file, record=frame_id, field="force"),
        stress=None if stress is None else -0.1 * stress,
        magmoms=array(record.get("magmom"), file=file, record=frame_id, field="magmom"),
        source=source,
        extra=extra,
    )
    try:
        validate_frame(frame, file=file)
    except DataError as exc:
        fields = dict(_SOURCE_FIELDS)
        fields["energy"] = next(
            (k for k in _ENERGY_KEYS if values[k] is not None), "energy_per_atom"
        )
        raise relocate(exc, file=file, fields=fields) from exc
    check_distances(
        lattice, frac_coords, species, checks=checks, file=file, record=frame_id,
        field="structure.sites",
    )
    return frame


def _iter_raw_materials(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(material_id, raw material dict)``; broken JSON raises a located DataError."""
    file = str(path)
    last_complete = None
    with open(path, "rb") as raw:
        stream = _NonFiniteQuoter(raw)
        items = ijson.kvitems(stream, "", use_float=True)
        while True:
            try:
                material_id, material = next(items)
            except StopIteration:
                return
            except ijson.JSONError as exc:
                after = (
                    f"after material {last_complete!r}"
                    if last_complete
                    else "before the first material"
                )
                raise DataError(
                    f"truncated or malformed JSON {after}, near byte {stream.position} ({exc})",
                    file=file,
                    record=last_complete,
                ) from exc
            last_complete = material_id
            yield str(material_id), material


def read_material_ids(path: str | Path) -> list[str]:
    """The material ids of an MP trajectory JSON, in file order (streams the whole file)."""
    return [material_id for material_id, _ in _iter_raw_materials(Path(path))]


def iter_mp_trajectories(
    path: str | Path,
    *,
    functional: str,
    source: str,
    material_ids: Collection[str] | None = None,
    checks: LoadChecks | None = None,
    on_invalid: str = "raise",
    report: ParseReport | None = None,
) -> Iterator[tuple[str, list[Frame]]]:
    """Yield ``(material_id, frames)`` for each material of an MP trajectory JSON, in file order.

    Args:
        path: ``MPr2SCAN.json``, ``MPtrj_2022.9_full.json`` or a file of the same layout.
        functional: Functional id stored on every frame (``r2scan``, ``gga``).
        source: Dataset name stored on every frame (``mp-r2scan``, ``mptrj``).
        material_ids: Read only these materials (reading stops once all were seen).
        checks: Load-time checks of elements and distances (default: :class:`LoadChecks`).
        on_invalid: ``"raise"`` a DataError on an invalid frame, or ``"drop"`` it and record it
            in ``report`` under reason ``invalid``.
        report: Receives the count of frames read and the dropped frames.

    Raises:
        DataError: on truncated or malformed JSON (naming the file, the last complete material
            and the approximate byte position), on a file without any frame record (an empty
            ``{}``), or on an invalid frame with ``on_invalid="raise"``.
    """
    check_on_invalid(on_invalid, report)
    path = Path(path)
    file = str(path)
    wanted = None if material_ids is None else set(material_ids)
    checks = checks or LoadChecks()
    n_materials = n_records = 0
    for material_id, material in _iter_raw_materials(path):
        n_materials += 1
        if wanted is not None and material_id not in wanted:
            continue
        if not isinstance(material, dict):
            raise DataError("material entry is not an object", file=file, record=material_id)
        frames = []
        n_records += len(material)
        for frame_id, record in material.items():
            if report is not None:
                report.count_read(file)
            try:
                frames.append(
                    parse_mp_frame(
                        frame_id,
                        record,
                        material_id=material_id,
                        functional=functional,
                        source=source,
                        file=file,
                        checks=checks,
                    )
                )
            except DataError as exc:
                drop_invalid(exc, on_invalid=on_invalid, report=report, file=file,
                             frame_id=str(frame_id), material_id=material_id)
        yield material_id, frames
        if wanted is not None:
            wanted.discard(material_id)
            if not wanted:
                return
    if n_materials == 0 or (wanted is None and n_records == 0):
        what = (
            "the file holds no material (an empty {} or [] JSON)"
            if n_materials == 0
            else f"the file's {n_materials} material(s) hold no frame record"
        )
        raise DataError(f"{what}: nothing to parse", file=file)
    if wanted:
        log.info(
            "%d requested material ids are not in %s: %s",
            len(wanted),
            file,
            ", ".join(sorted(wanted)[:10]),
        )


def load_mp_trajectories(path: str | Path, **kwargs: Any) -> list[Frame]:
    """All frames of :func:`iter_mp_trajectories` (same arguments) as one list."""
    return [frame for _, frames in iter_mp_trajectories(path, **kwargs) for frame in frames]
