"""The paper's frame filters (Methods, "Data preparation"); what they drop goes to a ParseReport.

The paper filters MP-r2SCAN with four criteria, applied here in this order so that every dropped
frame gets exactly one reason:

2. ``missing_label``: frames missing energy or forces, or marked ``electronic_converged: false``
   in ``frame.extra``, are dropped (or, with ``require_complete_labels=False``, raise).
1. ``final_frame_mismatch``: a task whose final frame is more than ``final_frame_tolerance``
   eV/atom away from the material's relaxed (thermo doc) energy is dropped as a whole.
3. ``energy_out_of_window``: frames more than ``max_energy_above_relaxed`` above or more than
   ``max_energy_below_relaxed`` below the relaxed energy (eV/atom) are dropped.
4. ``duplicate``: frames that match an earlier frame of the same material and functional both
   structurally (pymatgen ``StructureMatcher``) and in energy are dropped.

Criterion 2 runs first so that criterion 1 always judges a task by its last *labelled* frame.
Loaders add a fifth reason, ``invalid``, for records dropped with ``on_invalid="drop"``.

Frame ids of the Materials Project layout are ``task_id-calc_id-ionic_step`` where the task id
itself may contain dashes (``mp-1234567-0-12``); they are parsed from the right. ``calc_id``
indexes MP's ``calcs_reversed``, so calc 0 is the task's last calculation and the final frame of a
task is the highest ionic step of its lowest calc id. Frames whose ids do not have this form make
up one task per material, whose final frame is the last one in input order.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import Frame

# The report has its own module; its names stay importable from here.
from mlip_transfer.data.report import (  # noqa: F401
    DROPPED_COLUMNS,
    REASONS,
    DroppedRecord,
    ParseReport,
)

_FRAME_ID = re.compile(r"^(?P<task>.+)-(?P<calc>\d+)-(?P<step>\d+)$")

FileOf = str | Callable[[Frame], str | None] | None


@dataclass(frozen=True, kw_only=True)
class FilterConfig:
    """Settings of the four filters; ``None`` disables a threshold.

    Attributes:
        final_frame_tolerance: Criterion 1, eV/atom (paper: 20 meV/atom).
        require_complete_labels: Criterion 2. True drops frames missing energy or forces (or not
            electronically converged); False makes such a frame an error instead.
        max_energy_above_relaxed: Criterion 3 upper bound, eV/atom above the relaxed energy
            (paper: 1 eV/atom).
        max_energy_below_relaxed: Criterion 3 lower bound, eV/atom *below* the relaxed energy.
            The paper prints "< 10 meV/atom relative to" the relaxed structure; read literally
            that would drop every frame within 10 meV/atom of the minimum, including the relaxed
            frames themselves. We read it as "more than 10 meV/atom below", i.e. frames lower
            than the relaxed ground state by more than DFT noise are inconsistent and dropped.
        deduplicate: Criterion 4 on or off.
        dedup_energy_tolerance: Criterion 4 energy matcher, eV/atom.
        ltol: StructureMatcher fractional length tolerance.
        stol: StructureMatcher site tolerance.
        angle_tol: StructureMatcher angle tolerance, degrees.
        on_invalid_record: What loaders do with a malformed record (NaN, unknown element, wrong
            shape): ``"error"`` raises a located DataError, ``"drop"`` skips it and records it
            in the report under reason ``invalid``.
        min_interatomic_distance: Load-time check of user inputs, Å: a record with two atoms
            closer than this (periodic distance) is malformed (see
            :mod:`mlip_transfer.data.checks`); None disables it.
    """

    final_frame_tolerance: float | None = 0.020
    require_complete_labels: bool = True
    max_energy_above_relaxed: float | None = 1.0
    max_energy_below_relaxed: float | None = 0.010
    deduplicate: bool = True
    dedup_energy_tolerance: float = 0.002
    ltol: float = 0.2
    stol: float = 0.3
    angle_tol: float = 5.0
    on_invalid_record: str = "error"
    min_interatomic_distance: float | None = 0.5

    def __post_init__(self) -> None:
        if self.on_invalid_record not in ("error", "drop"):
            raise ConfigError(
                "filters.on_invalid_record must be 'error' or 'drop', "
                f"got {self.on_invalid_record!r}"
            )
        for name in (
            "final_frame_tolerance",
            "max_energy_above_relaxed",
            "max_energy_below_relaxed",
            "dedup_energy_tolerance",
            "ltol",
            "stol",
            "angle_tol",
            "min_interatomic_distance",
        ):
            value = getattr(self, name)
            if value is None and name in ("dedup_energy_tolerance", "ltol", "stol", "angle_tol"):
                raise ConfigError(f"filters.{name} must be a number, not null")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ConfigError(f"filters.{name} must be a non-negative number, got {value!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> FilterConfig:
        """Build from a config mapping; unknown keys raise a ConfigError naming them."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown filter settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_frame_id(frame_id: str) -> tuple[str, int, int] | None:
    """Split ``task_id-calc_id-ionic_step`` into its parts, or None if it has another form."""
    match = _FRAME_ID.match(frame_id)
    if match is None:
        return None
    return match["task"], int(match["calc"]), int(match["step"])


def frame_sort_key(frame_id: str) -> tuple[str, int, int]:
    """Frame-id order with numeric calc and step parts compared as numbers."""
    parts = parse_frame_id(frame_id)
    return (frame_id, -1, -1) if parts is None else parts


def _file_of(file: FileOf, frame: Frame) -> str | None:
    return file(frame) if callable(file) else file


def _check_labels(
    frames: list[Frame], *, config: FilterConfig, report: ParseReport, file: FileOf
) -> list[Frame]:
    kept = []
    for frame in frames:
        missing = None
        if frame.energy is None:
            missing, detail = "energy", "energy label is missing"
        elif frame.forces is None:
            missing, detail = "forces", "force labels are missing"
        elif frame.extra.get("electronic_converged") is False:
            missing, detail = "electronic_converged", "electronic steps did not converge"
        if missing is None:
            kept.append(frame)
        elif config.require_complete_labels:
            report.drop_frame(
                frame,
                reason="missing_label",
                file=_file_of(file, frame),
                field=missing,
                detail=detail,
            )
        else:
            raise DataError(
                f"{detail} (set filters.require_complete_labels to drop such frames)",
                file=_file_of(file, frame),
                record=frame.frame_id,
                field=missing,
            )
    return kept


def _relaxed_reference(
    frames: list[Frame], relaxed_energies: Mapping[tuple[str, str], float] | None
) -> float | None:
    material_id, functional = frames[0].material_id, frames[0].functional
    if relaxed_energies is not None:
        value = relaxed_energies.get((material_id, functional))
        if value is not None and math.isfinite(value):
            return float(value)
    for frame in frames:  # canonical order, so the choice does not depend on input order
        value = frame.extra.get("e_per_atom_relaxed")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def _check_final_frames(
    frames: list[Frame], relaxed: float, *, tol: float, report: ParseReport, file: FileOf
) -> list[Frame]:
    # ``frames`` are in input order here: the fallback "last frame" needs it.
    tasks: dict[str, list[tuple[tuple[int, int], int, Frame]]] = defaultdict(list)
    for index, frame in enumerate(frames):
        parts = parse_frame_id(frame.frame_id)
        if parts is None:
            tasks[""].append(((0, index), index, frame))
        else:
            task, calc, step = parts
            tasks[task].append(((-calc, step), index, frame))  # calc 0 is the last calculation
    bad: dict[int, str] = {}
    for task, members in tasks.items():
        _, _, final = max(members, key=lambda item: (item[0], item[2].frame_id))
        delta = final.energy_per_atom - relaxed
        if abs(delta) > tol:
            detail = (
                f"final frame {final.frame_id} of task {task or final.material_id} is "
                f"{delta * 1000:+.1f} meV/atom from the relaxed energy (tolerance {tol * 1000:g})"
            )
            for _, index, _ in members:
                bad[index] = detail
    for index, detail in sorted(bad.items()):
        frame = frames[index]
        report.drop_frame(
            frame,
            reason="final_frame_mismatch",
            file=_file_of(file, frame),
            field="energy",
            detail=detail,
        )
    return [frame for index, frame in enumerate(frames) if index not in bad]


def _check_window(
    frames: list[Frame], relaxed: float, *, config: FilterConfig, report: ParseReport, file: FileOf
) -> list[Frame]:
    above, below = config.max_energy_above_relaxed, config.max_energy_below_relaxed
    kept = []
    for frame in frames:
        delta = frame.energy_per_atom - relaxed
        if (above is not None and delta > above) or (below is not None and delta < -below):
            report.drop_frame(
                frame,
                reason="energy_out_of_window",
                file=_file_of(file, frame),
                field="energy",
                detail=f"{delta:+.4f} eV/atom from the relaxed energy (allowed: "
                f"{'any' if below is None else f'-{below}'} .. "
                f"{'any' if above is None else f'+{above}'})",
            )
        else:
            kept.append(frame)
    return kept


def _deduplicate(
    frames: list[Frame], *, config: FilterConfig, report: ParseReport, file: FileOf
) -> list[Frame]:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(ltol=config.ltol, stol=config.stol, angle_tol=config.angle_tol)
    kept: list[Frame] = []
    # Only frames with the same species multiset can match; compare within those buckets.
    buckets: dict[tuple[str, ...], list[tuple[Frame, Any]]] = defaultdict(list)
    for frame in frames:
        bucket = buckets[tuple(sorted(frame.species))]
        structure = None
        duplicate_of = None
        for other, other_structure in bucket:
            delta = abs(frame.energy_per_atom - other.energy_per_atom)
            if delta > config.dedup_energy_tolerance:
                continue
            if structure is None:
                structure = frame.to_structure()
            if matcher.fit(structure, other_structure):
                duplicate_of = (other, delta)
                break
        if duplicate_of is None:
            kept.append(frame)
            bucket.append((frame, frame.to_structure() if structure is None else structure))
        else:
            other, delta = duplicate_of
            report.drop_frame(
                frame,
                reason="duplicate",
                file=_file_of(file, frame),
                field="structure",
                detail=f"matches {other.frame_id} (|dE| = {delta * 1000:.2f} meV/atom)",
            )
    return kept


def filter_group(
    frames: Iterable[Frame],
    *,
    config: FilterConfig,
    report: ParseReport,
    relaxed_energies: Mapping[tuple[str, str], float] | None = None,
    file: FileOf = None,
) -> list[Frame]:
    """Filter the frames of one material and functional, in input order.

    Args:
        frames: Frames that all share one material id and functional.
        config: Filter settings.
        report: Receives the dropped records, kept counts and missing references.
        relaxed_energies: Relaxed energy per atom by ``(material_id, functional)``; when a key is
            absent, ``frame.extra["e_per_atom_relaxed"]`` is used.
        file: The input file of the frames, or a function giving it per frame (for the report).

    Returns:
        The kept frames in frame-id order (see :func:`frame_sort_key`).
    """
    frames = list(frames)
    if not frames:
        return []
    keys = {(f.material_id, f.functional) for f in frames}
    if len(keys) != 1:
        raise ValueError(f"filter_group needs one material and functional, got {sorted(keys)}")
    frames = _check_labels(frames, config=config, report=report, file=file)
    if not frames:
        return []
    ordered = sorted(frames, key=lambda f: frame_sort_key(f.frame_id))
    relaxed = _relaxed_reference(ordered, relaxed_energies)
    if relaxed is not None and config.final_frame_tolerance is not None:
        frames = _check_final_frames(
            frames, relaxed, tol=config.final_frame_tolerance, report=report, file=file
        )
    frames = sorted(frames, key=lambda f: frame_sort_key(f.frame_id))
    if relaxed is not None:
        frames = _check_window(frames, relaxed, config=config, report=report, file=file)
    if config.deduplicate:
        frames = _deduplicate(frames, config=config, report=report, file=file)
    if frames:
        report.count_kept(frames[0].functional, len(frames))
        if relaxed is None:
            key = frames[0].material_id
            report.no_relaxed_reference[key] = report.no_relaxed_reference.get(key, 0) + len(frames)
    return frames


def apply_filters(frames: Iterable[Frame], **options: Any) -> list[Frame]:
    """Filter frames of any number of materials, one :func:`filter_group` per group.

    Args:
        frames: Frames of any materials and functionals.
        **options: The keyword arguments of :func:`filter_group` (``config``, ``report``,
            ``relaxed_energies``, ``file``).

    Returns:
        The kept frames sorted by material id, functional and frame id, so the result does not
        depend on the input order (except for the final frame of tasks whose ids do not have the
        ``task-calc-step`` form, which is the last one in input order).
    """
    groups: dict[tuple[str, str], list[Frame]] = defaultdict(list)
    for frame in frames:
        groups[(frame.material_id, frame.functional)].append(frame)
    kept: list[Frame] = []
    for key in sorted(groups):
        kept.extend(filter_group(groups[key], **options))
    return kept
