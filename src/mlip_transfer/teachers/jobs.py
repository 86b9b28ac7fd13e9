"""One function per workflow job of the teacher stage; the Snakemake scripts only call these.

Each takes plain paths and settings, so a user's own script (or a test) runs the same steps.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.files import write_csv_atomic, write_json_atomic
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import Frame, iter_frames
from mlip_transfer.data.split import read_split
from mlip_transfer.data.surrogate.teacher_models import limit_threads, teacher
from mlip_transfer.energy_scale.elemental_shift import load_matpes_elemental_energies
from mlip_transfer.teachers.accuracy import (
    difference_summary,
    element_differences,
    energy_errors,
    error_stats,
    evenly_spaced,
    frame_differences,
)
from mlip_transfer.teachers.singlepoint import Prediction, predict_all

logger = logging.getLogger("mlip_transfer.teachers.jobs")

# What the frames' own labels are called in the pair tables.
LABELS = "labels"


def _structure(record: dict, *, file: Path, name: str) -> Structure:
    try:
        return Structure.from_dict(record["structure"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"no readable structure ({exc})", file=str(file), record=name,
                        field="structure") from None


def read_matpes_structures(path: str | Path) -> tuple[dict[str, Structure], dict[str, float]]:
    """Each element's MatPES ground-state structure and its DFT energy per atom (eV/atom)."""
    path = Path(path)
    energies = load_matpes_elemental_energies(path)
    with gzip.open(path, "rt") as handle:
        records = json.load(handle)
    return {el: _structure(records[el], file=path, name=el) for el in energies}, energies


def read_wbm(path: str | Path, cap: int | None) -> tuple[dict[str, Structure], dict[str, float]]:
    """At most ``cap`` WBM structures (spread over the file) and their MP2020-corrected PBE
    energies per atom, by material id."""
    path = Path(path)
    with gzip.open(path, "rt") as handle:
        records = {record["material_id"]: record for record in json.load(handle)}
    structures, energies = {}, {}
    for material_id in evenly_spaced(list(records), cap):
        record = records[material_id]
        structure = _structure(record, file=path, name=material_id)
        energy = record.get("corrected_energy")
        if energy is None or not np.isfinite(energy):
            raise DataError("missing or non-finite value", file=str(path), record=material_id,
                            field="corrected_energy")
        structures[material_id], energies[material_id] = structure, energy / len(structure)
    return structures, energies


def test_frames(frames: str | Path, split: str | Path, cap: int | None) -> tuple[list[Frame], int]:
    """At most ``cap`` r2SCAN frames of the test split (spread over the file), and how many
    there are."""
    parts = read_split(split)
    chosen = [f for f in iter_frames(frames)
              if f.functional == "r2scan" and parts.get(f.material_id) == "test"]  # fmt: skip
    by_id = {frame.frame_id: frame for frame in chosen}
    return [by_id[key] for key in evenly_spaced(list(by_id), cap)], len(chosen)


def _label_predictions(frames: Sequence[Frame]) -> dict[str, Prediction]:
    return {
        frame.frame_id: Prediction(frame.energy_per_atom, frame.forces, frame.stress)
        for frame in frames
        if frame.energy is not None
    }


def _labels_from(frames: Sequence[Frame], source: DataSource) -> dict[str, int]:
    """Who made the frames' labels: the teacher each frame records, else the data source."""
    return dict(Counter(frame.extra.get("teacher", source.name) for frame in frames))


def _teacher_card(name: str) -> dict[str, Any]:
    card = asdict(teacher(name))
    return {key: card[key] for key in ("name", "functional", "model", "trained_on",
                                       "shares_weights_with_source", "package")}


def _check_teachers(r2scan: Sequence[str], gga: str) -> None:
    wrong = [name for name in r2scan if teacher(name).functional != "r2scan"]
    if wrong or teacher(gga).functional != "gga":
        raise ConfigError(f"teachers.r2scan must name r2SCAN teachers and teachers.gga the GGA "
                          f"one, got r2scan={list(r2scan)}, gga={gga!r}")


def _predict(calculators: dict[str, Any], name: str, structures: dict[str, Structure]):
    if name not in calculators:
        calculators[name] = teacher(name).calculator()
    start = time.perf_counter()
    predictions, skipped = predict_all(calculators[name], structures)
    logger.info("%s: %d single points in %.1f s, %d skipped", name, len(structures),
                time.perf_counter() - start, len(skipped))
    return predictions, skipped


def _energy_part(calculators, names, structures, reference, *, key: str):
    """Errors of each teacher in ``names`` against ``reference`` and their statistics."""
    predicted, skipped = {}, {}
    for name in names:
        predictions, skipped[name] = _predict(calculators, name, structures)
        predicted[name] = {k: p.energy_per_atom for k, p in predictions.items()}
    table = energy_errors(reference, predicted, skipped, key=key)
    stats = {name: error_stats(table, name, key=key) for name in names}
    for name, info in stats.items():
        logger.info("%s against DFT: MAE %.3f eV/atom, median %.3f, max %.2f (%s), n %d, "
                    "skipped %d", name, info["mae"], info["median_ae"], info["max_ae"],
                    info["worst"], info["n"], info["n_skipped"])
    return table, stats


def _pair_part(calculators, names, frames: list[Frame]):
    """Per-frame differences between every two teachers, and each teacher against the labels."""
    predictions = {LABELS: _label_predictions(frames)}
    structures = {frame.frame_id: frame.to_structure() for frame in frames}
    skipped = {}
    for name in names:
        predictions[name], skipped[name] = _predict(calculators, name, structures)
    species = {frame.frame_id: frame.species for frame in frames}
    pairs = [*combinations(names, 2), *((name, LABELS) for name in names)]
    table = pd.concat(
        [frame_differences(predictions[a], predictions[b], species, names=(a, b)) for a, b in pairs],
        ignore_index=True,
    )
    summaries = [{"a": a, "b": b, **difference_summary(table[(table["a"] == a) & (table["b"] == b)])}
                 for a, b in pairs]  # fmt: skip
    for row in summaries:
        logger.info("%s - %s on %d frames: energy %.1f meV/atom, forces %.1f meV/Å, stress "
                    "%.3f GPa", row["a"], row["b"], row["n_frames"], row["energy_mae"],
                    row["force_mae"], row["stress_mae"])
    return table, summaries, skipped


def teacher_accuracy(
    *, matpes_r2scan: str | Path, wbm: str | Path, frames: str | Path, split: str | Path,
    data_dir: str | Path, r2scan_teachers: Sequence[str], gga_teacher: str,
    max_wbm: int | None, max_frames: int | None, out_matpes: str | Path, out_wbm: str | Path,
    out_pair_frames: str | Path, out_pair_elements: str | Path, out_summary: str | Path,
) -> dict[str, Any]:
    """How far each teacher is from real DFT, and the teachers from each other.

    Args:
        matpes_r2scan: MatPES r2SCAN elemental references (json.gz): each r2SCAN teacher's
            single point on every element's ground state against its DFT energy per atom.
        wbm: WBM structures with MP2020-corrected PBE energies (json.gz), for the GGA teacher
            (trained on corrected MPtrj energies).
        frames: The run's canonical frames file.
        split: Its split file; the r2SCAN frames of the test split are compared.
        data_dir: The dataset folder (its provenance names the data source).
        r2scan_teachers: The r2SCAN teachers to compare (``chgnet-r2scan``, ``diep``).
        gga_teacher: The GGA teacher (``chgnet-0.3.0``).
        max_wbm: Use at most this many WBM structures (None: all).
        max_frames: Use at most this many test frames (None: all).
        out_matpes: Output CSV, one row per element and r2SCAN teacher (eV/atom).
        out_wbm: Output CSV, one row per WBM structure (eV/atom).
        out_pair_frames: Output CSV, one row per frame and pair of predictions.
        out_pair_elements: Output CSV, one row per pair and element of the frames.
        out_summary: Output JSON: teachers, data banner, statistics, counts and skipped keys.

    Returns:
        The content of ``out_summary``.
    """
    _check_teachers(r2scan_teachers, gga_teacher)
    limit_threads()
    source = DataSource.read(data_dir)
    calculators: dict[str, Any] = {}

    structures, reference = read_matpes_structures(matpes_r2scan)
    matpes, matpes_stats = _energy_part(calculators, r2scan_teachers, structures, reference,
                                        key="element")
    write_csv_atomic(out_matpes, matpes, index=False)

    structures, reference = read_wbm(wbm, max_wbm)
    wbm_table, wbm_stats = _energy_part(calculators, [gga_teacher], structures, reference,
                                        key="material_id")
    write_csv_atomic(out_wbm, wbm_table, index=False)

    chosen, n_test = test_frames(frames, split, max_frames)
    pair_frames, pairs, skipped = _pair_part(calculators, r2scan_teachers, chosen)
    write_csv_atomic(out_pair_frames, pair_frames, index=False)
    write_csv_atomic(out_pair_elements, element_differences(pair_frames), index=False)

    summary = {
        "data_source": source.name,
        "data_banner": source.banner,
        "teachers": {name: _teacher_card(name) for name in [gga_teacher, *r2scan_teachers]},
        "r2scan_vs_matpes": {
            "reference": "MatPES r2SCAN elemental ground states (DFT), energy per atom",
            "units": "eV/atom", "error": "teacher - DFT", "teachers": matpes_stats,
        },
        "gga_vs_wbm": {
            "reference": "WBM PBE relaxed structures, MP2020-corrected energy per atom (DFT)",
            "units": "eV/atom", "error": "teacher - DFT", "max_structures": max_wbm,
            "teachers": wbm_stats,
        },
        "teacher_pairs": {
            "frames": "r2SCAN frames of the test split", "n_available": n_test,
            "n_used": len(chosen), "max_frames": max_frames,
            "labels_from": _labels_from(chosen, source),
            "units": {"energy": "meV/atom", "forces": "meV/Å", "stress": "GPa"},
            "difference": "a - b", "pairs": pairs, "skipped": skipped,
        },
    }
    write_json_atomic(out_summary, summary)
    return summary
