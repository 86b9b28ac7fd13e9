"""The parse report's files: standard JSON (NaN as null) and atomic writes."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from mlip_transfer.data import report as R
from mlip_transfer.data.report import ParseReport


def _strict(text: str):
    """``json.loads`` that rejects NaN and Infinity, as jq and JavaScript do."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _report() -> ParseReport:
    report = ParseReport()
    report.count_read("a.extxyz", 3)
    report.count_kept("r2scan", 2)
    report.drop(reason="invalid", file="a.extxyz", frame_id="a-1", material_id="m", field="energy",
                detail="value is nan")
    report.notes["median_stress_gpa"] = math.nan
    report.notes["largest"] = [1.0, math.inf]
    return report


def test_report_json_writes_nan_as_null(tmp_path):
    path = _report().write_json(tmp_path / "parse_report.json")
    saved = _strict(path.read_text())
    assert saved["notes"] == {"largest": [1.0, None], "median_stress_gpa": None}
    assert saved["total_read"] == 3 and saved["dropped_counts"]["invalid"] == 1


def test_interrupted_report_writes_leave_the_earlier_files(tmp_path, monkeypatch):
    report = _report()
    json_path = report.write_json(tmp_path / "parse_report.json")
    csv_path = report.write_dropped_csv(tmp_path / "dropped.csv")
    before = {p: p.read_bytes() for p in (json_path, csv_path)}
    report.drop(reason="duplicate", file="a.extxyz", frame_id="a-2", material_id="m")

    calls = []
    real_writer = csv.writer

    def dying_writerow(self, row):  # the header is written, then the process dies
        calls.append(row)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return self._writer.writerow(row)

    class Writer:
        def __init__(self, handle):
            self._writer = real_writer(handle)

        writerow = dying_writerow

    monkeypatch.setattr(R.csv, "writer", Writer)
    with pytest.raises(KeyboardInterrupt):
        report.write_dropped_csv(csv_path)
    real_write_text = Path.write_text

    def half_text(self, text, *args, **kwargs):  # half the bytes, then the kill
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", half_text)
    with pytest.raises(KeyboardInterrupt):
        report.write_json(json_path)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dropped.csv", "parse_report.json"]
