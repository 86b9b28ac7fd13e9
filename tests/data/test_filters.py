"""The paper's four filter criteria, the report, and their independence of input order."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import Frame
from mlip_transfer.data.filters import (
    FilterConfig,
    ParseReport,
    apply_filters,
    frame_sort_key,
    parse_frame_id,
)

NO_DEDUP = dict(deduplicate=False)


def make_frame(
    frame_id: str,
    e_atom: float | None,
    *,
    material_id: str = "mp-1",
    functional: str = "r2scan",
    shift: float = 0.0,
    forces: bool = True,
    extra: dict | None = None,
) -> Frame:
    """A 2-atom diamond Si cell; ``shift`` moves the second atom (fractional units)."""
    half = 5.468 / 2
    return Frame(
        frame_id=frame_id,
        material_id=material_id,
        functional=functional,
        species=("Si", "Si"),
        lattice=np.array([[0, half, half], [half, 0, half], [half, half, 0]]),
        frac_coords=np.array([[0, 0, 0], [0.25 + shift] * 3]),
        energy=None if e_atom is None else 2 * e_atom,
        forces=np.zeros((2, 3)) if forces else None,
        extra=extra or {},
    )


def run(frames, *, relaxed=None, **config):
    report = ParseReport()
    kept = apply_filters(
        frames,
        config=FilterConfig(**config),
        report=report,
        relaxed_energies=relaxed,
        file="in.json",
    )
    return [f.frame_id for f in kept], report


def dropped(report: ParseReport, reason: str) -> set[str]:
    return {r.frame_id for r in report.dropped if r.reason == reason}


def test_frame_ids_parse_from_the_right():
    assert parse_frame_id("mp-1234567-0-12") == ("mp-1234567", 0, 12)
    assert parse_frame_id("1234-1-3") == ("1234", 1, 3)
    assert parse_frame_id("target-si-0") is None
    ids = ["mp-5-0-10", "mp-5-0-2", "mp-5-1-0"]
    assert sorted(ids, key=frame_sort_key) == ["mp-5-0-2", "mp-5-0-10", "mp-5-1-0"]


def test_missing_labels_are_dropped_with_their_field():
    frames = [
        make_frame("mp-1-0-0", -10.0),
        make_frame("mp-1-0-1", None),
        make_frame("mp-1-0-2", -10.0, shift=0.1, forces=False),
        make_frame("mp-1-0-3", -10.0, shift=0.2, extra={"electronic_converged": False}),
    ]
    kept, report = run(frames, **NO_DEDUP)
    assert kept == ["mp-1-0-0"]
    fields = {r.frame_id: r.field for r in report.dropped if r.reason == "missing_label"}
    assert fields == {
        "mp-1-0-1": "energy",
        "mp-1-0-2": "forces",
        "mp-1-0-3": "electronic_converged",
    }
    assert report.dropped_counts["missing_label"] == 3
    # a material left without any labelled frame simply disappears
    kept, report = run(frames[1:], relaxed={("mp-1", "r2scan"): -10.0})
    assert kept == [] and report.kept == 0 and report.dropped_counts["missing_label"] == 3


def test_missing_label_raises_when_labels_not_required():
    frames = [make_frame("mp-1-0-0", -10.0), make_frame("mp-1-0-1", -10.0, forces=False)]
    with pytest.raises(DataError) as info:
        run(frames, require_complete_labels=False)
    assert (info.value.file, info.value.record, info.value.field) == (
        "in.json",
        "mp-1-0-1",
        "forces",
    )


def test_final_frame_mismatch_drops_the_whole_task_only():
    frames = [
        make_frame("mp-9-0-0", -9.90, shift=0.02),
        make_frame("mp-9-0-1", -9.97, shift=0.01),  # final frame of task mp-9: +30 meV/atom
        make_frame("mp-8-0-0", -9.995),  # another task of the same material: +5 meV/atom
    ]
    kept, report = run(frames, relaxed={("mp-1", "r2scan"): -10.0}, **NO_DEDUP)
    assert kept == ["mp-8-0-0"]
    assert dropped(report, "final_frame_mismatch") == {"mp-9-0-0", "mp-9-0-1"}
    # 30 meV/atom passes a looser tolerance
    kept, _ = run(
        frames, relaxed={("mp-1", "r2scan"): -10.0}, final_frame_tolerance=0.05, **NO_DEDUP
    )
    assert len(kept) == 3


def test_final_frame_is_the_last_step_of_calc_zero():
    # calc_id indexes calcs_reversed: calc 1 ran first, so mp-7-1-5 is not the final frame
    frames = [
        make_frame("mp-7-1-0", -9.95, shift=0.03),
        make_frame("mp-7-1-5", -9.90, shift=0.02),
        make_frame("mp-7-0-0", -9.96, shift=0.01),
        make_frame("mp-7-0-2", -9.995),
    ]
    kept, report = run(frames, relaxed={("mp-1", "r2scan"): -10.0}, **NO_DEDUP)
    assert len(kept) == 4 and not report.dropped


def test_final_frame_of_plain_ids_is_the_last_in_input_order():
    a = make_frame("frame-a", -9.99, shift=0.01)
    b = make_frame("frame-b", -9.90)
    relaxed = {("mp-1", "r2scan"): -10.0}
    kept, report = run([a, b], relaxed=relaxed, **NO_DEDUP)
    assert kept == [] and dropped(report, "final_frame_mismatch") == {"frame-a", "frame-b"}
    kept, _ = run([b, a], relaxed=relaxed, **NO_DEDUP)
    assert kept == ["frame-a", "frame-b"]


def test_final_frame_check_can_be_disabled():
    frames = [make_frame("mp-9-0-0", -9.90)]
    kept, _ = run(frames, relaxed={("mp-1", "r2scan"): -10.0}, final_frame_tolerance=None)
    assert kept == ["mp-9-0-0"]


def test_energy_window_drops_frames_too_high_or_too_low():
    energies = {"mp-1-0-0": -8.8, "mp-1-0-1": -9.1, "mp-1-0-2": -10.015, "mp-1-0-3": -10.005}
    frames = [make_frame(fid, e, shift=0.01 * i) for i, (fid, e) in enumerate(energies.items())]
    relaxed = {("mp-1", "r2scan"): -10.0}
    kept, report = run(frames, relaxed=relaxed, final_frame_tolerance=None, **NO_DEDUP)
    assert kept == ["mp-1-0-1", "mp-1-0-3"]
    assert dropped(report, "energy_out_of_window") == {"mp-1-0-0", "mp-1-0-2"}
    kept, _ = run(
        frames,
        relaxed=relaxed,
        final_frame_tolerance=None,
        max_energy_above_relaxed=0.5,
        max_energy_below_relaxed=None,
        **NO_DEDUP,
    )
    assert kept == ["mp-1-0-2", "mp-1-0-3"]


def test_relaxed_energy_from_dict_wins_over_frame_extra():
    frames = [make_frame("mp-1-0-0", -10.0, extra={"e_per_atom_relaxed": -10.0})]
    kept, _ = run(frames)
    assert kept == ["mp-1-0-0"]
    kept, report = run(frames, relaxed={("mp-1", "r2scan"): -9.0}, final_frame_tolerance=None)
    assert kept == [] and dropped(report, "energy_out_of_window") == {"mp-1-0-0"}


def test_frames_without_relaxed_reference_are_kept_and_counted():
    frames = [make_frame("mp-1-0-0", 50.0), make_frame("x-0-0", -3.0, material_id="mp-2")]
    kept, report = run(frames, relaxed={("mp-2", "r2scan"): -3.0})
    assert kept == ["mp-1-0-0", "x-0-0"]
    assert report.no_relaxed_reference == {"mp-1": 1}
    assert report.to_dict()["no_relaxed_reference"] == {"frames": 1, "materials": ["mp-1"]}


def test_deduplicate_needs_matching_structure_and_energy():
    frames = [
        make_frame("mp-5-0-0", -10.000),
        make_frame("mp-5-0-1", -10.001),  # same structure, 1 meV/atom: duplicate
        make_frame("mp-5-0-3", -10.005),  # same structure, 5 meV/atom apart: kept
        make_frame("mp-5-0-4", -10.0005, shift=0.3),  # other structure, same energy: kept
        make_frame("mp-5-0-5", -10.000, material_id="mp-6"),  # other material: kept
        make_frame("mp-5-0-6", -10.000, functional="gga"),  # other functional: kept
    ]
    kept, report = run(frames, final_frame_tolerance=None)
    assert dropped(report, "duplicate") == {"mp-5-0-1"}
    assert len(kept) == 5
    detail = next(r.detail for r in report.dropped)
    assert "mp-5-0-0" in detail
    kept, report = run(frames, deduplicate=False)
    assert len(kept) == 6 and not report.dropped


def test_deduplicate_keeps_the_first_in_numeric_frame_id_order():
    frames = [make_frame("mp-5-0-10", -10.0), make_frame("mp-5-0-2", -10.0)]
    for order in (frames, frames[::-1]):
        kept, report = run(order)
        assert kept == ["mp-5-0-2"] and dropped(report, "duplicate") == {"mp-5-0-10"}


def test_result_does_not_depend_on_input_order():
    frames = []
    for m in range(3):
        material = f"mp-{m}"
        frames += [
            make_frame(
                f"mp-{m}0-0-{s}", -10.0 + 0.001 * s, material_id=material, shift=0.01 * (s % 2)
            )
            for s in range(5)
        ]
        frames.append(make_frame(f"mp-{m}1-0-0", -8.5, material_id=material, forces=False))
    relaxed = {(f"mp-{m}", "r2scan"): -10.0 for m in range(2)}
    kept, report = run(frames, relaxed=relaxed)
    shuffled = frames[:]
    random.Random(0).shuffle(shuffled)
    kept2, report2 = run(shuffled, relaxed=relaxed)
    assert kept == kept2
    assert report.to_dict() == report2.to_dict()
    assert report.dropped_counts["duplicate"] > 0 and report.dropped_counts["missing_label"] == 3


def test_report_files_and_summary(tmp_path):
    frames = [
        make_frame("mp-5-0-0", -10.0),
        make_frame("mp-5-0-1", -10.0),
        make_frame("mp-5-0-2", -10.0, shift=0.1, forces=False),
    ]
    report = ParseReport()
    report.count_read("in.json", 3)
    apply_filters(frames, config=FilterConfig(), report=report, file="in.json")
    data = json.loads(report.write_json(tmp_path / "r.json").read_text())
    assert data["records_read"] == {"in.json": 3}
    assert data["kept"] == 1 and data["kept_by_functional"] == {"r2scan": 1}
    assert data["dropped_counts"] == {
        "invalid": 0,
        "missing_label": 1,
        "final_frame_mismatch": 0,
        "energy_out_of_window": 0,
        "duplicate": 1,
    }
    with open(report.write_dropped_csv(tmp_path / "d.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["frame_id"], r["reason"], r["field"], r["file"]) for r in rows] == [
        ("mp-5-0-1", "duplicate", "structure", "in.json"),
        ("mp-5-0-2", "missing_label", "forces", "in.json"),
    ]
    lines = report.summary_lines()
    assert "dropped 1 as duplicate" in lines and "kept 1 frames (r2scan 1)" in lines


def test_filter_config_is_validated():
    with pytest.raises(ConfigError, match="final_frame_tolerance"):
        FilterConfig(final_frame_tolerance=-1)
    with pytest.raises(ConfigError, match="bogus"):
        FilterConfig.from_dict({"bogus": 1})
    assert FilterConfig.from_dict({"deduplicate": False}).deduplicate is False
    with pytest.raises(ConfigError, match="on_invalid_record"):
        FilterConfig(on_invalid_record="ignore")
    with pytest.raises(ValueError, match="unknown drop reason"):
        ParseReport().drop(reason="other", file=None, frame_id=None, material_id=None)
