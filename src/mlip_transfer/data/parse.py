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
    the label names, ``stress_unit`` and ``material_ids_from`` rule of
    :class:`~mlip_transfer.data.loaders.extxyz.ExtxyzConfig` (material ids:
    :mod:`mlip_transfer.data.loaders.extxyz_materials`).

Every source also takes, for quick partial runs, ``material_ids`` (a list: parse only those)
and ``max_materials`` (an int or None: keep at most this many materials that are not elemental
references, plus the elemental references of their elements). ``max_materials`` picks materials
in the order of a hash of their id (a fixed pseudo-random order, the same on every run), except
for ``mp``, which is streamed: it takes the first ones in file order and keeps every elemental
reference. ``filters.on_invalid_record`` decides whether
malformed records of ``mp`` and ``extxyz`` inputs raise or are dropped; besides a malformed
layout, a record is malformed when its element is beyond the source model or two of its atoms
are closer than ``filters.min_interatomic_distance`` (:mod:`mlip_transfer.data.checks`). A
canonical ``default`` folder was validated when written, and any invalid record there raises.
An input file without any frame, and a parse that keeps no frame, are errors.

``materials.csv`` keeps only rows of materials that have kept frames (in any functional) and
rows flagged ``is_elemental_reference``, which formation energies and hulls need even when the
element's own frames were all dropped. Frames are written material by material: for ``mp`` in
the order of the input file (it is streamed), otherwise sorted by material id; within a material
in frame-id order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.checks import LoadChecks
from mlip_transfer.data.dataset import (
    FRAMES_FILE,
    MATERIALS_FILE,
    Frame,
    write_frames,
    write_materials,
)
from mlip_transfer.data.filters import FilterConfig, ParseReport, filter_group
from mlip_transfer.data.sources import SOURCE_NAMES, Plan, check_settings, plan_source  # noqa: F401

log = logging.getLogger("mlip_transfer.data.parse")

REPORT_FILE = "parse_report.json"
DROPPED_FILE = "dropped.csv"


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


def _filtered(
    plan: Plan, filters: FilterConfig, report: ParseReport, relaxed: Mapping[tuple[str, str], float]
) -> Iterator[tuple[Frame, str | None]]:
    """The kept frames of every group of the plan, each with its input file."""
    for frames, file in plan.groups:
        for frame in filter_group(
            frames, config=filters, report=report, relaxed_energies=relaxed, file=file
        ):
            yield frame, file(frame) if callable(file) else file


def _unique_ids(
    frames: Iterable[tuple[Frame, str | None]], kept_materials: set[str]
) -> Iterator[Frame]:
    """Pass the frames on, adding their materials to ``kept_materials``; a reused frame id of
    any material raises."""
    frame_ids: dict[str, str] = {}
    for frame, where in frames:
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


def _write_frames_whole(out_dir: Path, frames: Iterable[Frame]) -> int:
    """Write the frames file; :func:`write_frames` is atomic, so a parse that fails mid-write
    (the frames iterator raises) leaves no partial frames file behind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_frames(out_dir / FRAMES_FILE, frames)


def _refuse_empty(out_dir: Path, report: ParseReport) -> None:
    """No frame was kept: leave the report for the user to read, and raise."""
    (out_dir / FRAMES_FILE).unlink(missing_ok=True)
    report.write_json(out_dir / REPORT_FILE)
    report.write_dropped_csv(out_dir / DROPPED_FILE)
    files = sorted(report.records_read) or ["(no input file)"]
    dropped = ", ".join(f"{n} {reason}" for reason, n in report.dropped_counts.items() if n)
    raise DataError(
        f"no frame was kept from {len(files)} input file(s) "
        f"({sum(report.records_read.values())} records read; dropped: {dropped or 'none'}); "
        f"see {out_dir / DROPPED_FILE} for every dropped record",
        file=", ".join(files),
    )


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
        DataError: on invalid input data (naming file, record and field), or when no frame is
            kept (the report and dropped.csv are still written, the frames file is not).
    """
    check_settings(source, settings)
    out_dir = Path(out_dir)
    report = ParseReport()
    on_invalid = "drop" if filters.on_invalid_record == "drop" else "raise"
    checks = LoadChecks(min_distance=filters.min_interatomic_distance)
    plan = plan_source(source, settings, on_invalid=on_invalid, report=report, checks=checks)
    relaxed = _relaxed_energies(plan.materials)
    kept_materials: set[str] = set()
    frames = _unique_ids(_filtered(plan, filters, report, relaxed), kept_materials)
    n_frames = _write_frames_whole(out_dir, frames)
    if n_frames == 0:
        _refuse_empty(out_dir, report)

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
