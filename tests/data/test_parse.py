"""End to end: each source parsed into a canonical folder that the dataset readers accept."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import read_frames, read_materials, write_materials
from mlip_transfer.data.filters import FilterConfig
from mlip_transfer.data.loaders import load_thermo_docs, thermo_docs_to_materials
from mlip_transfer.data.parse import parse_dataset

FIXTURES = Path(__file__).parents[1] / "fixtures"
MP_SETTINGS = {
    "r2scan_json": str(FIXTURES / "mp_r2scan_small.json"),
    "mptrj_json": str(FIXTURES / "mptrj_small.json"),
    "thermo_json": str(FIXTURES / "mp_thermo_docs.json"),
}
ELEMENTAL_REFERENCES = {"mp-127", "mp-135", "mp-149", "mp-22848", "mp-561203"}


def parse_mp(out: Path, **settings) -> object:
    return parse_dataset(
        source="mp", settings={**MP_SETTINGS, **settings}, filters=FilterConfig(), out_dir=out
    )


def test_mp_source_writes_a_readable_canonical_folder(tmp_path, caplog):
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO, logger="mlip_transfer.data.parse"):
        report = parse_mp(out)
    frames = read_frames(out / "frames.jsonl.gz")
    assert len(frames) == report.kept == 11
    assert report.kept_by_functional == {"gga": 4, "r2scan": 7}
    assert report.dropped_counts == {
        "invalid": 0,
        "missing_label": 1,
        "final_frame_mismatch": 2,
        "energy_out_of_window": 2,
        "duplicate": 1,
    }
    assert sum(report.records_read.values()) == 17
    by_id = {f.frame_id: f for f in frames}
    assert {fid for fid, f in by_id.items() if f.material_id == "mp-1138"} == {
        "mp-2536000-0-2",
        "mp-2536000-0-3",
    }
    assert (
        by_id["mp-2476600-0-0"].source == "mp-r2scan" and by_id["mp-1245300-0-1"].source == "mptrj"
    )
    raw = json.loads((FIXTURES / "mp_r2scan_small.json").read_text())
    np.testing.assert_allclose(
        by_id["mp-2536000-0-2"].stress, -0.1 * np.array(raw["mp-1138"]["mp-2536000-0-2"]["stress"])
    )

    materials = read_materials(out / "materials.csv")
    # materials with frames (both functionals) plus elemental references; not the Si polymorph
    assert set(materials.material_id) == {"mp-1138", "mp-22862"} | ELEMENTAL_REFERENCES
    assert len(materials) == 13
    assert DataSource.read(out).name == "mp-r2scan"
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["parse"]["frames"] == 11 and provenance["parse"]["source"] == "mp"

    saved = json.loads((out / "parse_report.json").read_text())
    assert saved["dropped_counts"] == report.dropped_counts
    assert saved["notes"]["missing_elemental_references"] == {"r2scan": ["F"]}
    with open(out / "dropped.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["frame_id"], r["reason"]) for r in rows} == {
        ("mp-2355719-0-2", "duplicate"),
        ("mp-2476511-0-0", "final_frame_mismatch"),
        ("mp-2476511-0-1", "final_frame_mismatch"),
        ("mp-2536000-0-0", "energy_out_of_window"),
        ("mp-2536000-0-1", "missing_label"),
        ("mp-2536000-0-4", "energy_out_of_window"),
    }
    assert any("dropped 1 as duplicate" in r.getMessage() for r in caplog.records)
    assert not list(out.glob(".tmp*")), "a temporary file of an atomic write was left behind"


def test_mp_source_subsets_and_invalid_records(tmp_path):
    report = parse_mp(tmp_path / "one", mptrj_json=None, material_ids=["mp-22862"])
    assert {f.material_id for f in read_frames(tmp_path / "one" / "frames.jsonl.gz")} == {
        "mp-22862"
    }
    assert report.kept == 1 and sum(report.records_read.values()) == 3

    # max_materials: first material of the file plus elemental references (mp-149 is one)
    report = parse_mp(tmp_path / "few", max_materials=1)
    kept = {f.material_id for f in read_frames(tmp_path / "few" / "frames.jsonl.gz")}
    assert kept == {"mp-149", "mp-22862"}

    data = json.loads((FIXTURES / "mp_r2scan_small.json").read_text())
    data["mp-149"]["mp-2355719-1-0"]["structure"]["sites"][0]["species"][0]["element"] = "Xx"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match="Xx"):
        parse_mp(tmp_path / "raise", r2scan_json=str(bad), mptrj_json=None)
    report = parse_dataset(
        source="mp",
        settings={**MP_SETTINGS, "r2scan_json": str(bad), "mptrj_json": None},
        filters=FilterConfig(on_invalid_record="drop"),
        out_dir=tmp_path / "d",
    )
    assert report.dropped_counts["invalid"] == 1 and report.kept == 6  # 7 less the bad Si frame


def test_extxyz_source(tmp_path):
    materials_csv = tmp_path / "materials.csv"
    write_materials(
        materials_csv, thermo_docs_to_materials(load_thermo_docs(FIXTURES / "mp_thermo_docs.json"))
    )
    out = tmp_path / "xyz"
    report = parse_dataset(
        source="extxyz",
        settings={
            "paths": [str(FIXTURES / "target_small.extxyz")],
            "functional": "r2scan",
            "materials_csv": str(materials_csv),
        },
        filters=FilterConfig(),
        out_dir=out,
    )
    frames = read_frames(out / "frames.jsonl.gz")
    assert [f.frame_id for f in frames] == ["target-si-0", "target_small-1", "target_small-2"]
    assert report.kept == 3 and report.no_relaxed_reference == {"target_small-2": 1}
    assert {f.functional for f in frames} == {"r2scan"}
    materials = read_materials(out / "materials.csv")
    assert set(materials.material_id) == ELEMENTAL_REFERENCES  # mp-149 is both
    assert DataSource.read(out).name == "extxyz"
    assert frames[0].stress[0, 0] == pytest.approx(0.80108, abs=1e-4)


def test_default_source_reapplies_filters_idempotently(tmp_path):
    parse_mp(tmp_path / "mp")
    report = parse_dataset(
        source="default",
        settings={"path": str(tmp_path / "mp")},
        filters=FilterConfig(),
        out_dir=tmp_path / "again",
    )
    first = read_frames(tmp_path / "mp" / "frames.jsonl.gz")
    again = read_frames(tmp_path / "again" / "frames.jsonl.gz")
    assert sorted(f.frame_id for f in again) == sorted(f.frame_id for f in first)
    assert not report.dropped and report.kept == 11
    assert DataSource.read(tmp_path / "again").name == "mp-r2scan"  # carried over
    # tighter filters on re-parse drop more, from the folder's own materials.csv
    report = parse_dataset(
        source="default",
        settings={"path": str(tmp_path / "mp")},
        filters=FilterConfig(max_energy_above_relaxed=0.005),
        out_dir=tmp_path / "tight",
    )
    # exactly the frames more than 5 meV/atom above their material's relaxed energy
    materials = read_materials(tmp_path / "mp" / "materials.csv")
    relaxed = {(m.material_id, m.functional): m.relaxed_energy_per_atom for m in materials.itertuples()}
    expected = {
        f.frame_id for f in first if f.energy_per_atom - relaxed[(f.material_id, f.functional)] > 0.005
    }
    assert 0 < len(expected) < len(first)
    assert {r.frame_id for r in report.dropped} == expected
    assert report.dropped_counts["energy_out_of_window"] == len(expected)
    assert report.kept == len(first) - len(expected)


def test_duplicate_frame_ids_across_files_are_an_error(tmp_path):
    text = (FIXTURES / "target_small.extxyz").read_text()
    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        paths.append(tmp_path / folder / "target_small.extxyz")
        paths[-1].write_text(text)
    with pytest.raises(DataError, match="unique") as info:
        parse_dataset(
            source="extxyz",
            settings={"paths": [str(p) for p in paths], "functional": "r2scan"},
            filters=FilterConfig(deduplicate=False),
            out_dir=tmp_path / "out",
        )
    assert info.value.field == "frame_id"


@pytest.mark.parametrize(
    ("source", "settings", "message"),
    [
        ("nope", {}, "unknown data source"),
        ("mp", {"r2scan_json": "x.json", "bogus": 1}, "bogus"),
        ("mp", {"mptrj_json": None}, "r2scan_json"),
        ("mp", {"r2scan_json": "missing.json"}, "does not exist"),
        ("extxyz", {"paths": ["a.xyz"], "max_materials": 0}, "max_materials"),
    ],
)
def test_bad_settings_raise_config_errors(tmp_path, source, settings, message):
    with pytest.raises(ConfigError, match=message):
        parse_dataset(source=source, settings=settings, filters=FilterConfig(), out_dir=tmp_path)


def test_max_materials_keeps_elemental_references_of_chosen_elements(tmp_path):
    header = (
        'Lattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3:forces:R:3 '
        'energy={e} material_id={m} pbc="T T T"\n'
    )

    def frame(material_id: str, a: str, b: str, energy: float) -> str:
        return (
            "2\n"
            + header.format(e=energy, m=material_id)
            + f"{a} 0 0 0 0 0 0\n{b} 1.5 1.5 1.5 0 0 0\n"
        )

    path = tmp_path / "mix.extxyz"
    path.write_text(
        frame("nacl", "Na", "Cl", -6.0)
        + frame("mp-127", "Na", "Na", -2.6)
        + frame("mp-149", "Si", "Si", -10.8)
    )
    table = thermo_docs_to_materials(load_thermo_docs(FIXTURES / "mp_thermo_docs.json"))
    write_materials(tmp_path / "m.csv", table)
    settings = {
        "paths": [str(path)],
        "functional": "r2scan",
        "materials_csv": str(tmp_path / "m.csv"),
    }
    filters = FilterConfig(
        final_frame_tolerance=None, max_energy_above_relaxed=None, max_energy_below_relaxed=None
    )
    parse_dataset(
        source="extxyz",
        settings={**settings, "max_materials": 1},
        filters=filters,
        out_dir=tmp_path / "one",
    )
    kept = {f.material_id for f in read_frames(tmp_path / "one" / "frames.jsonl.gz")}
    assert kept == {"nacl", "mp-127"}  # Na is needed by NaCl, Si is not
    parse_dataset(source="extxyz", settings=settings, filters=filters, out_dir=tmp_path / "all")
    kept = {f.material_id for f in read_frames(tmp_path / "all" / "frames.jsonl.gz")}
    assert kept == {"nacl", "mp-127", "mp-149"}
