"""The element datasets on disk: canonical frames plus a per-frame table of sets and temperatures.

A dataset folder (one per element) holds

* ``frames.jsonl.gz``: canonical frames (:mod:`mlip_transfer.data.dataset`), functional
  ``stillinger-weber``; ``extra`` carries element, temperature (K), set (``pool``: the training
  pool; ``test``: held-out trajectories), trajectory and time;
* ``frames.csv``: one row per frame with those fields, for quick selection;
* ``materials.csv``: the canonical per-material table, one row for the perfect diamond crystal
  (SW energy per atom at the reference lattice constant, formation energy 0);
* ``provenance.json``: :data:`mlip_transfer.core.provenance.STILLINGER_WEBER` plus the sampling
  settings and the ground-state check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import write_csv_atomic
from mlip_transfer.data.dataset import (
    FRAMES_FILE,
    Frame,
    iter_frames,
    write_frames,
    write_materials,
)

INDEX_FILE = "frames.csv"
INDEX_COLUMNS = ("frame_id", "element", "temperature", "set", "trajectory", "time_ps", "n_atoms")


def frame_row(frame: Frame, *, file: str | None = None) -> dict[str, object]:
    """The index row of a frame; a frame without the sampling fields is a located DataError."""
    extra = frame.extra or {}
    for key in ("element", "temperature", "set"):
        if key not in extra:
            raise DataError(
                "frame lacks the sampling field (extra.element/temperature/set)",
                file=file,
                record=frame.frame_id,
                field=f"extra.{key}",
            )
    if set(frame.species) != {extra["element"]}:
        raise DataError(
            f"species {sorted(set(frame.species))} do not match element {extra['element']!r}",
            file=file,
            record=frame.frame_id,
            field="species",
        )
    if frame.energy is None or frame.forces is None:
        raise DataError(
            "reference frame lacks energy or forces",
            file=file,
            record=frame.frame_id,
            field="energy" if frame.energy is None else "forces",
        )
    return {
        "frame_id": frame.frame_id,
        "element": extra["element"],
        "temperature": float(extra["temperature"]),
        "set": extra["set"],
        "trajectory": extra.get("trajectory"),
        "time_ps": extra.get("time_ps"),
        "n_atoms": frame.n_atoms,
    }


def write_dataset(
    folder: str | Path, frames: Iterable[Frame], *, element: str, ground_state_energy: float
) -> pd.DataFrame:
    """Write ``frames.jsonl.gz``, ``frames.csv`` and ``materials.csv``; returns the index.

    Each file is written atomically (a temporary name, then a rename), so an interrupted write
    leaves no partial file at its final path.
    """
    folder = Path(folder)
    frames = list(frames)
    index = pd.DataFrame([frame_row(f) for f in frames], columns=list(INDEX_COLUMNS))
    duplicated = index["frame_id"].duplicated()
    if duplicated.any():
        raise DataError("frame id appears twice", record=index.loc[duplicated, "frame_id"].iloc[0])
    write_frames(folder / FRAMES_FILE, frames)
    write_csv_atomic(folder / INDEX_FILE, index, index=False)
    materials = pd.DataFrame(
        [
            {
                "material_id": f"sw-{element}-diamond",
                "formula": element,
                "functional": "stillinger-weber",
                "relaxed_energy_per_atom": ground_state_energy,
                "relaxed_energy_per_atom_uncorrected": ground_state_energy,
                "formation_energy_per_atom": 0.0,
                "formation_energy_per_atom_uncorrected": 0.0,
                "is_elemental_reference": True,
            }
        ]
    )
    write_materials(folder / "materials.csv", materials)
    return index


def load_frames(
    path: str | Path,
    *,
    sets: Sequence[str] | None = None,
    temperatures: Sequence[float] | None = None,
) -> list[Frame]:
    """Frames of a dataset's ``frames.jsonl.gz`` (or its folder), optionally filtered.

    Every frame is validated (canonical checks plus the sampling fields); errors name the file,
    line, frame and field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FRAMES_FILE
    wanted_t = None if temperatures is None else {float(t) for t in temperatures}
    frames = []
    for frame in iter_frames(path):
        row = frame_row(frame, file=str(path))
        if sets is not None and row["set"] not in sets:
            continue
        if wanted_t is not None and row["temperature"] not in wanted_t:
            continue
        frames.append(frame)
    return frames


def group_by_temperature(frames: Iterable[Frame]) -> dict[float, list[Frame]]:
    grouped: dict[float, list[Frame]] = {}
    for frame in frames:
        grouped.setdefault(float(frame.extra["temperature"]), []).append(frame)
    return dict(sorted(grouped.items()))
