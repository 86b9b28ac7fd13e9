"""Parse a data source into a canonical dataset folder, applying the paper's filters.

The folder receives ``frames.jsonl.gz`` and ``materials.csv`` (see :mod:`mlip_transfer.data.dataset`),
``provenance.json``, ``parse_report.json`` (counts read/kept/dropped per reason) and
``dropped.csv`` (one row per dropped record).

Sources and their ``settings``:

``default``
    ``{"path": folder}`` holding a canonical ``frames.jsonl.gz`` and ``materials.csv``; the
    filters are applied again with that ``materials.csv`` as relaxed reference. The folder's own
    ``provenance.json`` is carried over when present, else the embedded surrogate default's.
``mp``
    ``{"r2scan_json": MPr2SCAN.json, "mptrj_json": MPtrj JSON or None, "thermo_json": cached
    thermo docs or None}``; r2SCAN frames get functional ``r2scan``, MPtrj frames ``gga``.
``extxyz``
    ``{"paths": [...], "functional": "r2scan", "materials_csv": canonical table or None}`` plus
    the label names of :class:`~mlip_transfer.data.loaders.extxyz.ExtxyzConfig`.

Every source also takes, for quick partial runs, ``material_ids`` (a list: parse only those)
and ``max_materials`` (an int or None: keep at most this many materials that are not elemental
references, plus the elemental references of their elements). ``max_materials`` picks materials
in the order of a hash of their id (a fixed pseudo-random order, the same on every run), except
for ``mp``, which is streamed: it takes the first ones in file order and keeps every elemental
reference. ``filters.on_invalid_record`` decides whether
malformed records of ``mp`` and ``extxyz`` inputs raise or are dropped; a canonical ``default``
folder was validated when written, and any invalid record there raises.

``materials.csv`` keeps only rows of materials that have kept frames (in any functional) and
rows flagged ``is_elemental_reference``, which formation energies and hulls need even when the
element's own frames were all dropped. Frames are written material by material: for ``mp`` in
the order of the input file (it is streamed), otherwise sorted by material id; within a material
in frame-id order.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.provenance import (
    EXTXYZ,
    MP_R2SCAN,
    PROVENANCE_FILE,
    SURROGATE_DEFAULT,
    DataSource,
)
from mlip_transfer.data.dataset import (
    FRAMES_FILE,
    MATERIAL_COLUMNS,
    MATERIALS_FILE,
    Frame,
    iter_frames,
    read_materials,
    write_frames,
    write_materials,
)
from mlip_transfer.data.filters import FilterConfig, ParseReport, filter_group
from mlip_transfer.data.loaders.extxyz import ExtxyzConfig, iter_extxyz_frames
from mlip_transfer.data.loaders.mp_api import load_thermo_docs, thermo_docs_to_materials
from mlip_transfer.data.loaders.mp_trajectories import iter_mp_trajectories

log = logging.getLogger("mlip_transfer.data.parse")

REPORT_FILE = "parse_report.json"
DROPPED_FILE = "dropped.csv"
SOURCE_NAMES = ("default", "mp", "extxyz")
_EXTXYZ_KEYS = {
    "energy_key",
    "forces_key",
    "stress_key",
    "stress_unit",
    "magmoms_key",
    "material_id_key",
    "frame_id_key",
    "energy_uncorrected_key",
}
_SUBSET_KEYS = {"material_ids", "max_materials"}
_KNOWN_SETTINGS = {
    "default": {"path"} | _SUBSET_KEYS,
    "mp": {"r2scan_json", "mptrj_json", "thermo_json"} | _SUBSET_KEYS,
    "extxyz": {"paths", "functional", "materials_csv"} | _EXTXYZ_KEYS | _SUBSET_KEYS,
}
_REQUIRED_SETTINGS = {"default": ("path",), "mp": ("r2scan_json",), "extxyz": ("paths",)}

# One group = the frames of one material and functional, with the file(s) they came from.
Group = tuple[list[Frame], str | Callable[[Frame], str | None]]


@dataclass(kw_only=True)
class _Plan:
    groups: Iterator[Group]
    materials: pd.DataFrame
    provenance: DataSource


def _check_settings(source: str, settings: Mapping[str, Any]) -> None:
    if source not in SOURCE_NAMES:
        raise ConfigError(f"unknown data source {source!r}; known: {list(SOURCE_NAMES)}")
    unknown = sorted(set(settings) - _KNOWN_SETTINGS[source])
    if unknown:
        raise ConfigError(
            f"unknown settings {unknown} for source {source!r}; "
            f"known: {sorted(_KNOWN_SETTINGS[source])}"
        )
    for key in _REQUIRED_SETTINGS[source]:
        if settings.get(key) in (None, "", []):
            raise ConfigError(f"source {source!r} needs settings.{key}")
    limit = settings.get("max_materials")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"settings.max_materials must be a positive integer, got {limit!r}")


@dataclass(frozen=True, kw_only=True)
class _Subset:
    """Which materials to parse: ``material_ids`` and/or ``max_materials`` from the settings."""

    wanted: frozenset[str] | None
    limit: int | None
    elemental: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], materials: pd.DataFrame) -> _Subset:
        ids = settings.get("material_ids")
        elemental = materials.loc[materials["is_elemental_reference"].astype(bool), "material_id"]
        return cls(
            wanted=None if not ids else frozenset(map(str, ids)),
            limit=settings.get("max_materials"),
            elemental=frozenset(map(str, elemental)),
        )

    def choose(self, species: Mapping[str, set[str]]) -> set[str]:
        """The chosen ids among all materials, given each material's set of elements."""
        ids = {m for m in species if self.wanted is None or m in self.wanted}
        if self.limit is None:
            return ids
        others = sorted(ids - self.elemental, key=_stable_hash)[: self.limit]
        needed = set().union(*(species[m] for m in others))
        return set(others) | {m for m in ids & self.elemental if species[m] <= needed}

    def stream(
        self, groups: Iterable[tuple[str, list[Frame]]]
    ) -> Iterator[tuple[str, list[Frame]]]:
        """The chosen materials of a stream, taking the first ``limit`` in stream order."""
        taken = 0
        for material_id, frames in groups:
            if material_id not in self.elemental and self.limit is not None:
                if taken >= self.limit:
                    continue
                taken += 1
            yield material_id, frames


def _stable_hash(material_id: str) -> str:
    return hashlib.sha256(material_id.encode()).hexdigest()


def _existing(path: Any, key: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"settings.{key}: {path} does not exist")
    return path


def _empty_materials() -> pd.DataFrame:
    return pd.DataFrame(
        {
            col: pd.Series(
                dtype=(
                    bool
                    if col == "is_elemental_reference"
                    else object if col in ("material_id", "formula", "functional") else float
                )
            )
            for col in MATERIAL_COLUMNS
        }
    )


def _groups_in_memory(
    frames: Iterable[tuple[str, Frame]], subset: _Subset, report: ParseReport
) -> Iterator[Group]:
    """Group (file, frame) pairs by material and functional, sorted by that key."""
    groups: dict[tuple[str, str], list[Frame]] = defaultdict(list)
    file_of: dict[Frame, str] = {}  # frames hash by identity (eq=False)
    seen: set[str] = set()
    for file, frame in frames:
        seen.add(frame.material_id)
        if subset.wanted is None or frame.material_id in subset.wanted:
            groups[(frame.material_id, frame.functional)].append(frame)
            file_of[frame] = file
    species: dict[str, set[str]] = defaultdict(set)
    for (material_id, _), members in groups.items():
        species[material_id].update(members[0].species)
    chosen = subset.choose(species)
    if len(chosen) < len(seen):
        # Not an error and not a drop: the configuration asked for a subset. Say so.
        report.notes["materials_not_selected"] = len(seen) - len(chosen)
    keys = sorted(key for key in groups if key[0] in chosen)
    for key in tqdm(keys, desc="filter", unit="material", file=sys.stderr, disable=None):
        yield groups[key], file_of.get


def _plan_default(settings: Mapping[str, Any], report: ParseReport) -> _Plan:
    folder = _existing(settings["path"], "path")
    frames_path = _existing(folder / FRAMES_FILE, "path")
    materials = read_materials(_existing(folder / MATERIALS_FILE, "path"))
    provenance = (
        DataSource.read(folder) if (folder / PROVENANCE_FILE).exists() else SURROGATE_DEFAULT
    )

    def pairs() -> Iterator[tuple[str, Frame]]:
        for frame in iter_frames(frames_path):
            report.count_read(str(frames_path))
            yield str(frames_path), frame

    subset = _Subset.from_settings(settings, materials)
    return _Plan(
        groups=_groups_in_memory(pairs(), subset, report), materials=materials, provenance=provenance
    )


def _plan_mp(settings: Mapping[str, Any], on_invalid: str, report: ParseReport) -> _Plan:
    inputs = [(_existing(settings["r2scan_json"], "r2scan_json"), "r2scan", "mp-r2scan")]
    if settings.get("mptrj_json"):
        inputs.append((_existing(settings["mptrj_json"], "mptrj_json"), "gga", "mptrj"))
    if settings.get("thermo_json"):
        materials = thermo_docs_to_materials(
            load_thermo_docs(_existing(settings["thermo_json"], "thermo_json"))
        )
        report.notes.update(materials.attrs.get("notes", {}))
    else:
        log.warning(
            "no thermo_json: relaxed energies come only from e_per_atom_relaxed in the "
            "trajectories and materials.csv stays empty"
        )
        report.notes["no_thermo_docs"] = True
        materials = _empty_materials()

    subset = _Subset.from_settings(settings, materials)

    def groups() -> Iterator[Group]:
        first_choice: set[str] | None = None  # with max_materials, MPtrj follows MP-r2SCAN
        for path, functional, name in inputs:
            wanted = subset.wanted
            if first_choice is not None:
                wanted = first_choice | (
                    subset.elemental if wanted is None else subset.elemental & wanted
                )
            stream = iter_mp_trajectories(
                path,
                functional=functional,
                source=name,
                material_ids=wanted,
                on_invalid=on_invalid,
                report=report,
            )
            progress = tqdm(stream, desc=path.name, unit="material", file=sys.stderr, disable=None)
            taken = set()
            for material_id, frames in (
                subset.stream(progress) if first_choice is None else progress
            ):
                taken.add(material_id)
                if frames:
                    yield frames, str(path)
            if subset.limit is not None and first_choice is None:
                first_choice = taken

    return _Plan(groups=groups(), materials=materials, provenance=MP_R2SCAN)


def _plan_extxyz(settings: Mapping[str, Any], on_invalid: str, report: ParseReport) -> _Plan:
    paths = settings["paths"]
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    config = ExtxyzConfig.from_dict(dict(settings))
    functional = settings.get("functional", "r2scan")
    if settings.get("materials_csv"):
        materials = read_materials(_existing(settings["materials_csv"], "materials_csv"))
    else:
        log.warning(
            "no materials_csv: relaxed energies come only from e_per_atom_relaxed in the "
            "files and materials.csv stays empty"
        )
        materials = _empty_materials()

    def pairs() -> Iterator[tuple[str, Frame]]:
        for index, path in enumerate(paths):
            path = _existing(path, f"paths[{index}]")
            for frame in iter_extxyz_frames(
                path,
                functional=functional,
                config=config,
                on_invalid=on_invalid,
                report=report,
            ):
                yield str(path), frame

    subset = _Subset.from_settings(settings, materials)
    return _Plan(groups=_groups_in_memory(pairs(), subset, report), materials=materials, provenance=EXTXYZ)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = sorted(value) if isinstance(value, set) else value
        return [_json_safe(v) for v in items]
    if isinstance(value, Path):
        return str(value)
    return value


def _relaxed_energies(materials: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {
        (str(m), str(f)): float(e)
        for m, f, e in zip(
            materials["material_id"],
            materials["functional"],
            materials["relaxed_energy_per_atom"],
            strict=True,
        )
        if e is not None and math.isfinite(float(e))
    }


def parse_dataset(
    *, source: str, settings: Mapping[str, Any], filters: FilterConfig, out_dir: str | Path
) -> ParseReport:
    """Parse ``source`` into the canonical dataset folder ``out_dir`` (see the module docstring).

    Args:
        source: ``default``, ``mp`` or ``extxyz``.
        settings: The source's settings (module docstring); unknown keys are an error.
        filters: The paper's filter settings.
        out_dir: Output folder (created; files of an earlier parse are replaced).

    Returns:
        The report that was also written to ``parse_report.json`` and ``dropped.csv``.

    Raises:
        ConfigError: on unknown, missing or invalid settings.
        DataError: on invalid input data (naming file, record and field).
    """
    _check_settings(source, settings)
    out_dir = Path(out_dir)
    report = ParseReport()
    on_invalid = "drop" if filters.on_invalid_record == "drop" else "raise"
    if source == "default":
        plan = _plan_default(settings, report)
    elif source == "mp":
        plan = _plan_mp(settings, on_invalid, report)
    else:
        plan = _plan_extxyz(settings, on_invalid, report)
    relaxed = _relaxed_energies(plan.materials)
    kept_materials: set[str] = set()
    frame_ids: dict[str, str] = {}

    def kept_frames() -> Iterator[Frame]:
        for frames, file in plan.groups:
            for frame in filter_group(
                frames, config=filters, report=report, relaxed_energies=relaxed, file=file
            ):
                where = file(frame) if callable(file) else file
                if frame.frame_id in frame_ids:
                    raise DataError(
                        f"frame id also used by a frame of material "
                        f"{frame_ids[frame.frame_id]!r}; frame ids must be unique",
                        file=where,
                        record=frame.frame_id,
                        field="frame_id",
                    )
                frame_ids[frame.frame_id] = frame.material_id
                kept_materials.add(frame.material_id)
                yield frame

    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / (FRAMES_FILE + ".partial")
    try:
        n_frames = write_frames(partial, kept_frames())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out_dir / FRAMES_FILE)

    table = plan.materials
    keep = table["material_id"].isin(kept_materials) | table["is_elemental_reference"].astype(bool)
    table = table.loc[keep].sort_values(["material_id", "functional"], ignore_index=True)
    write_materials(out_dir / MATERIALS_FILE, table)
    report.notes["materials_rows_written"] = len(table)
    report.write_json(out_dir / REPORT_FILE)
    report.write_dropped_csv(out_dir / DROPPED_FILE)
    plan.provenance.write(
        out_dir,
        parse={
            "source": source,
            "settings": _json_safe(dict(settings)),
            "filters": filters.to_dict(),
            "frames": n_frames,
            "materials_with_frames": len(kept_materials),
        },
    )
    for line in report.summary_lines():
        log.info("%s", line)
    return report
