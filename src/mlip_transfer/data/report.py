"""The parse report: counts of records read, kept and dropped, and every dropped record.

Written as ``parse_report.json`` and ``dropped.csv`` by :func:`mlip_transfer.data.parse.parse_dataset`;
the reasons are the paper's criteria of :mod:`mlip_transfer.data.filters` plus ``invalid``.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlip_transfer.core.files import open_atomic, write_json_atomic

if TYPE_CHECKING:
    from mlip_transfer.data.dataset import Frame

REASONS = ("invalid", "missing_label", "final_frame_mismatch", "energy_out_of_window", "duplicate")
DROPPED_COLUMNS = ("file", "frame_id", "material_id", "reason", "field", "detail")


@dataclass(frozen=True, kw_only=True)
class DroppedRecord:
    """One record that did not make it into the dataset, and why."""

    file: str | None
    frame_id: str | None
    material_id: str | None
    reason: str
    field: str | None = None
    detail: str = ""

    def sort_key(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, name) or "") for name in DROPPED_COLUMNS)


@dataclass(kw_only=True)
class ParseReport:
    """Counts of records read, kept and dropped (per reason), with every dropped record.

    Attributes:
        records_read: Frames read per input file.
        kept_by_functional: Frames kept per functional.
        dropped: Every dropped record.
        no_relaxed_reference: Kept frames per material that had no relaxed energy, so criteria
            1 and 3 could not be applied to them.
        notes: Other counts worth a reader's attention (e.g. missing elemental references).
    """

    records_read: dict[str, int] = field(default_factory=dict)
    kept_by_functional: dict[str, int] = field(default_factory=dict)
    dropped: list[DroppedRecord] = field(default_factory=list)
    no_relaxed_reference: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def count_read(self, file: str | None, n: int = 1) -> None:
        key = str(file)
        self.records_read[key] = self.records_read.get(key, 0) + n

    def count_kept(self, functional: str, n: int = 1) -> None:
        self.kept_by_functional[functional] = self.kept_by_functional.get(functional, 0) + n

    def drop(
        self,
        *,
        reason: str,
        file: str | None,
        frame_id: str | None,
        material_id: str | None,
        field: str | None = None,
        detail: str = "",
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown drop reason {reason!r}; known: {REASONS}")
        self.dropped.append(
            DroppedRecord(
                file=None if file is None else str(file),
                frame_id=frame_id,
                material_id=material_id,
                reason=reason,
                field=field,
                detail=detail,
            )
        )

    def drop_frame(
        self, frame: Frame, *, reason: str, file: str | None, field: str | None, detail: str
    ) -> None:
        """Record a dropped frame under ``reason``: :meth:`drop` with the frame's ids."""
        self.drop(
            reason=reason,
            file=file,
            frame_id=frame.frame_id,
            material_id=frame.material_id,
            field=field,
            detail=detail,
        )

    @property
    def kept(self) -> int:
        return sum(self.kept_by_functional.values())

    @property
    def dropped_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(REASONS, 0)
        for record in self.dropped:
            counts[record.reason] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "records_read": dict(sorted(self.records_read.items())),
            "total_read": sum(self.records_read.values()),
            "kept": self.kept,
            "kept_by_functional": dict(sorted(self.kept_by_functional.items())),
            "dropped_counts": self.dropped_counts,
            "no_relaxed_reference": {
                "frames": sum(self.no_relaxed_reference.values()),
                "materials": sorted(self.no_relaxed_reference),
            },
            "notes": dict(sorted(self.notes.items())),
            "dropped": [asdict(r) for r in sorted(self.dropped, key=DroppedRecord.sort_key)],
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.to_dict())  # standard JSON: NaN -> null
        return path

    def write_dropped_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open_atomic(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(DROPPED_COLUMNS)
            for record in sorted(self.dropped, key=DroppedRecord.sort_key):
                writer.writerow(
                    ["" if (v := getattr(record, c)) is None else v for c in DROPPED_COLUMNS]
                )
        return path

    def summary_lines(self) -> list[str]:
        total = sum(self.records_read.values())
        lines = [f"read {total} records from {len(self.records_read)} file(s)"]
        lines += [f"  {file}: {n}" for file, n in sorted(self.records_read.items())]
        kept = ", ".join(f"{k} {v}" for k, v in sorted(self.kept_by_functional.items()))
        lines.append(f"kept {self.kept} frames" + (f" ({kept})" if kept else ""))
        lines += [f"dropped {n} as {reason}" for reason, n in self.dropped_counts.items() if n]
        if self.no_relaxed_reference:
            lines.append(
                f"{sum(self.no_relaxed_reference.values())} kept frames of "
                f"{len(self.no_relaxed_reference)} materials had no relaxed reference energy "
                "(criteria 1 and 3 not applied)"
            )
        lines += [f"note: {key} = {value}" for key, value in sorted(self.notes.items())]
        return lines
