"""The data sources a parse reads, each planned into groups of frames and a materials table.

The settings of each source and the subset options (``material_ids``, ``max_materials``) are
described in :mod:`mlip_transfer.data.parse`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import sys
import zlib
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
    surrogate_default,
)
from mlip_transfer.data.checks import LoadChecks
from mlip_transfer.data.dataset import (
    FRAMES_FILE,
    MATERIAL_COLUMNS,
    MATERIALS_FILE,
    TEACHER_COLUMN,
    Frame,
    iter_frames,
    read_materials,
)
from mlip_transfer.data.loaders.extxyz_materials import assign_material_ids
from mlip_transfer.data.loaders.mp_api import load_thermo_docs, thermo_docs_to_materials
from mlip_transfer.data.loaders.mp_trajectories import iter_mp_trajectories
from mlip_transfer.data.report import ParseReport

# The parse's logger, so the warnings read as part of the parse.
log = logging.getLogger("mlip_transfer.data.parse")

SOURCE_NAMES = ("default", "mp", "extxyz")
_EXTXYZ_KEYS = {
    "energy_key",
    "forces_key",
    "stress_key",
    "stress_unit",
    "magmoms_key",
    "material_id_key",
    "material_ids_from",
    "frame_id_key",
    "energy_uncorrected_key",
}
_SUBSET_KEYS = {"material_ids", "max_materials"}
# The r2SCAN teacher a default-source parse takes when none is configured: the one the shipped
# dataset was built with (data.default.teacher in the config chooses).
DEFAULT_TEACHER = "chgnet-r2scan"
_KNOWN_SETTINGS = {
    "default": {"path", "teacher"} | _SUBSET_KEYS,
    "mp": {"r2scan_json", "mptrj_json", "thermo_json"} | _SUBSET_KEYS,
    "extxyz": {"paths", "functional", "materials_csv"} | _EXTXYZ_KEYS | _SUBSET_KEYS,
}
_REQUIRED_SETTINGS = {"default": ("path",), "mp": ("r2scan_json",), "extxyz": ("paths",)}

# One group = the frames of one material and functional, with the file(s) they came from.
Group = tuple[list[Frame], str | Callable[[Frame], str | None]]


@dataclass(kw_only=True)
class Plan:
    """What a parse reads: groups of frames, the materials table and the data source."""

    groups: Iterator[Group]
    materials: pd.DataFrame
    provenance: DataSource


def check_settings(source: str, settings: Mapping[str, Any]) -> None:
    """Raise ConfigError on an unknown source or unknown, missing or invalid settings."""
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


def _dataset_teachers(folder: Path) -> tuple[str, ...]:
    """The teachers a default-format dataset was built with (its provenance records them)."""
    from mlip_transfer.data.surrogate.settings import LEGACY_TEACHERS

    path = folder / PROVENANCE_FILE
    if not path.exists():
        return LEGACY_TEACHERS
    record = json.loads(path.read_text())
    return tuple(record.get("build_settings", {}).get("teachers", LEGACY_TEACHERS))


def _teacher_materials(materials: pd.DataFrame, teacher: str) -> pd.DataFrame:
    """The GGA rows and the chosen r2SCAN teacher's rows, without the teacher column."""
    if TEACHER_COLUMN not in materials:
        return materials
    keep = (materials["functional"] != "r2scan") | (materials[TEACHER_COLUMN] == teacher)
    return materials[keep].drop(columns=TEACHER_COLUMN).reset_index(drop=True)


def _plan_default(settings: Mapping[str, Any], report: ParseReport) -> Plan:
    """A canonical folder: the shipped or rebuilt surrogate dataset (whose r2SCAN frames of the
    configured teacher are kept), or any folder a parse wrote (its provenance carries over)."""
    folder = _existing(settings["path"], "path")
    frames_path = _existing(folder / FRAMES_FILE, "path")
    materials = read_materials(_existing(folder / MATERIALS_FILE, "path"))
    provenance = (
        DataSource.read(folder) if (folder / PROVENANCE_FILE).exists() else SURROGATE_DEFAULT
    )
    teacher = None
    if provenance.name == SURROGATE_DEFAULT.name:
        teacher = settings.get("teacher") or DEFAULT_TEACHER
        _check_teacher(folder, teacher)
        materials, provenance = _teacher_materials(materials, teacher), surrogate_default(teacher)
        report.notes["r2scan_teacher"] = teacher

    def pairs() -> Iterator[tuple[str, Frame]]:
        other_teachers = 0
        for frame in iter_frames(frames_path):
            report.count_read(str(frames_path))
            # A frame without a recorded teacher is the legacy r2SCAN teacher's.
            labelled_by = frame.extra.get("teacher", DEFAULT_TEACHER)
            if teacher and frame.functional == "r2scan" and labelled_by != teacher:
                other_teachers += 1  # another target, not a dropped record: noted, not listed
                report.notes["frames_of_other_teachers"] = other_teachers
                continue
            yield str(frames_path), frame

    subset = _Subset.from_settings(settings, materials)
    return Plan(
        groups=_groups_in_memory(pairs(), subset, report), materials=materials,
        provenance=provenance,
    )


def _check_teacher(folder: Path, teacher: str) -> None:
    built_with = _dataset_teachers(folder)
    if teacher not in built_with:
        raise ConfigError(
            f"data.default.teacher {teacher!r}: the dataset in {folder} has no labels from it "
            f"(its teachers: {', '.join(built_with)}); choose one of those, or rebuild with "
            f"data.default.build.teachers including {teacher!r}"
        )


def _thermo_materials(path: Path, report: ParseReport) -> pd.DataFrame:
    """The materials table of cached thermo docs; docs it leaves out are listed as dropped."""
    try:
        docs = load_thermo_docs(path)
    except (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError) as exc:
        # Not caught by the loader itself: a half-written or corrupted .gz cache.
        raise DataError(
            f"corrupted or truncated thermo docs ({exc!r}); delete the file to fetch it again",
            file=str(path),
        ) from exc
    materials = thermo_docs_to_materials(docs)
    report.notes.update(materials.attrs.get("notes", {}))
    for doc in materials.attrs.get("left_out_docs", []):
        report.drop(
            reason="missing_label",
            file=str(path),
            frame_id=doc["record"],
            material_id=doc["material_id"],
            field=doc["field"],
            detail=doc["detail"],
        )
    return materials


def _plan_mp(
    settings: Mapping[str, Any], on_invalid: str, report: ParseReport, checks: LoadChecks
) -> Plan:
    inputs = [(_existing(settings["r2scan_json"], "r2scan_json"), "r2scan", "mp-r2scan")]
    if settings.get("mptrj_json"):
        inputs.append((_existing(settings["mptrj_json"], "mptrj_json"), "gga", "mptrj"))
    if settings.get("thermo_json"):
        materials = _thermo_materials(_existing(settings["thermo_json"], "thermo_json"), report)
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
                checks=checks,
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

    return Plan(groups=groups(), materials=materials, provenance=MP_R2SCAN)


def _plan_extxyz(
    settings: Mapping[str, Any], on_invalid: str, report: ParseReport, checks: LoadChecks
) -> Plan:
    # Here, not at the top: the extxyz reader loads ase.io (seconds), which the default and MP
    # sources never use.
    from mlip_transfer.data.loaders.extxyz import ExtxyzConfig, iter_extxyz_with_ids

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
        loaded = []  # all files first: material ids are decided over every frame
        for index, path in enumerate(paths):
            path = _existing(path, f"paths[{index}]")
            for frame, has_id in iter_extxyz_with_ids(
                path,
                functional=functional,
                config=config,
                checks=checks,
                on_invalid=on_invalid,
                report=report,
            ):
                loaded.append((str(path), frame, has_id))
        yield from assign_material_ids(
            loaded, mode=config.material_ids_from, key=config.material_id_key
        )

    subset = _Subset.from_settings(settings, materials)
    return Plan(groups=_groups_in_memory(pairs(), subset, report), materials=materials, provenance=EXTXYZ)


def plan_source(
    source: str,
    settings: Mapping[str, Any],
    *,
    on_invalid: str,
    report: ParseReport,
    checks: LoadChecks | None = None,
) -> Plan:
    """The plan of one (checked) source; ``on_invalid`` is ``"raise"`` or ``"drop"``.

    ``checks`` are the load-time checks of the user inputs (``mp``, ``extxyz``); a canonical
    ``default`` folder was checked when it was written.
    """
    checks = checks or LoadChecks()
    if source == "default":
        return _plan_default(settings, report)
    if source == "mp":
        return _plan_mp(settings, on_invalid, report, checks)
    return _plan_extxyz(settings, on_invalid, report, checks)
