"""Loaders: MP trajectory JSON, extended XYZ and the MP thermo API (replayed, no network)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import ijson
import mp_format
import numpy as np
import pytest
from ase import units

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.filters import ParseReport
from mlip_transfer.data.loaders import (
    ExtxyzConfig,
    MPAPIError,
    fetch_thermo_docs,
    fetch_thermo_for_trajectory_file,
    iter_mp_trajectories,
    load_extxyz,
    load_mp_trajectories,
    load_thermo_docs,
    read_material_ids,
    save_thermo_docs,
    thermo_docs_to_materials,
)
from mlip_transfer.data.loaders.mp_trajectories import _NonFiniteQuoter

FIXTURES = Path(__file__).parents[1] / "fixtures"
R2SCAN = FIXTURES / "mp_r2scan_small.json"
MPTRJ = FIXTURES / "mptrj_small.json"
EXTXYZ = FIXTURES / "target_small.extxyz"
RESPONSES = FIXTURES / "mp_api_thermo_responses.json"
THERMO_DOCS = FIXTURES / "mp_thermo_docs.json"
SI_FRAME = ("mp-149", "mp-2355719-1-0")


def raw(path: Path = R2SCAN) -> dict:
    return json.loads(path.read_text())


def write(tmp_path: Path, data: dict, name: str = "edited.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))  # writes bare NaN like the real files may
    return path


def load(path: Path, **kwargs) -> list:
    return load_mp_trajectories(path, functional="r2scan", source="mp-r2scan", **kwargs)


def located_error(path: Path) -> DataError:
    with pytest.raises(DataError) as info:
        load(path)
    return info.value


# --- MP trajectory JSON -----------------------------------------------------------------------


def test_mp_r2scan_frames_and_units():
    data = raw()
    frames = {f.frame_id: f for f in load(R2SCAN)}
    assert len(frames) == 13
    assert {f.material_id for f in frames.values()} == {"mp-149", "mp-22862", "mp-1138"}
    record = data[SI_FRAME[0]][SI_FRAME[1]]
    frame = frames[SI_FRAME[1]]
    assert frame.species == ("Si", "Si") and frame.functional == "r2scan"
    assert frame.source == "mp-r2scan"
    assert frame.energy == pytest.approx(record["uncorrected_total_energy"])
    assert frame.energy_uncorrected == pytest.approx(record["uncorrected_total_energy"])
    np.testing.assert_allclose(frame.lattice, record["structure"]["lattice"]["matrix"])
    np.testing.assert_allclose(frame.forces, record["force"])
    # 37.5 kBar compressive (VASP sign) is -3.75 GPa in the ASE/CHGNet sign
    assert record["stress"][0][0] == pytest.approx(37.5)
    assert frame.stress[0, 0] == pytest.approx(-3.75)
    np.testing.assert_allclose(frame.stress, -0.1 * np.array(record["stress"]))
    assert frame.extra == {"e_per_atom_relaxed": -10.4035}
    lif = frames["mp-2536000-0-2"]
    assert lif.magmoms is None and lif.species == ("Li", "F")
    assert frames["mp-2536000-0-1"].forces is None  # missing label, left to the filters


def test_mptrj_energy_is_the_corrected_total():
    frames = {f.frame_id: f for f in load_mp_trajectories(MPTRJ, functional="gga", source="mptrj")}
    record = raw(MPTRJ)["mp-22862"]["mp-1245300-0-1"]
    nacl = frames["mp-1245300-0-1"]
    assert nacl.energy == pytest.approx(record["corrected_total_energy"])
    assert nacl.energy_uncorrected == pytest.approx(record["uncorrected_total_energy"])
    assert nacl.energy - nacl.energy_uncorrected == pytest.approx(-0.614)  # MP2020 Cl
    assert nacl.functional == "gga" and nacl.magmoms.tolist() == [0.0, 0.0]


def test_energy_falls_back_to_energy_per_atom_then_none(tmp_path):
    data = raw()
    record = data[SI_FRAME[0]][SI_FRAME[1]]
    del record["uncorrected_total_energy"]
    other = data["mp-149"]["mp-2355719-1-1"]
    for key in ("uncorrected_total_energy", "energy_per_atom", "stress", "magmom", "bandgap"):
        other.pop(key)
    frames = {f.frame_id: f for f in load(write(tmp_path, data))}
    assert frames[SI_FRAME[1]].energy == pytest.approx(2 * record["energy_per_atom"])
    assert frames[SI_FRAME[1]].energy_uncorrected is None
    assert frames["mp-2355719-1-1"].energy is None
    assert frames["mp-2355719-1-1"].stress is None


def test_material_subset_stops_early():
    report = ParseReport()
    frames = load(R2SCAN, material_ids={"mp-22862"}, report=report)
    assert {f.material_id for f in frames} == {"mp-22862"}
    assert report.records_read == {str(R2SCAN): 3}


def test_truncated_json_names_file_and_last_complete_material(tmp_path):
    text = R2SCAN.read_text()
    cut = text.index('"mp-1138"') + 500
    path = tmp_path / "MPr2SCAN.json"
    path.write_text(text[:cut])
    error = located_error(path)
    assert error.file == str(path)
    assert error.record == "mp-22862"
    assert "byte" in str(error) and "mp-22862" in str(error) and "MPr2SCAN.json" in str(error)
    # frames of the complete materials were yielded before the error
    seen = []
    with pytest.raises(DataError):
        for material_id, _ in iter_mp_trajectories(path, functional="r2scan", source="x"):
            seen.append(material_id)
    assert seen == ["mp-149", "mp-22862"]


def test_malformed_json_before_any_material(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"mp-1": {"a": [1, 2,,]}}')
    error = located_error(path)
    assert error.record is None and "before the first material" in str(error)


def test_nan_energy_names_frame_and_field(tmp_path):
    data = raw()
    data[SI_FRAME[0]][SI_FRAME[1]]["uncorrected_total_energy"] = math.nan
    path = write(tmp_path, data)
    assert "NaN" in path.read_text()
    error = located_error(path)
    assert (error.file, error.record, error.field) == (
        str(path),
        SI_FRAME[1],
        "uncorrected_total_energy",
    )
    assert "not finite" in str(error)


def test_unknown_element_names_the_site(tmp_path):
    data = raw()
    data[SI_FRAME[0]][SI_FRAME[1]]["structure"]["sites"][1]["species"][0]["element"] = "Xx"
    error = located_error(write(tmp_path, data))
    assert error.record == SI_FRAME[1]
    assert error.field == "structure.sites[1].species" and "Xx" in str(error)


def test_force_shape_mismatch_names_the_force_field(tmp_path):
    data = raw()
    data[SI_FRAME[0]][SI_FRAME[1]]["force"].append([0.0, 0.0, 0.0])
    error = located_error(write(tmp_path, data))
    assert (error.record, error.field) == (SI_FRAME[1], "force")
    assert "(3, 3)" in str(error)


def test_non_numeric_values_are_invalid(tmp_path):
    data = raw()
    data[SI_FRAME[0]][SI_FRAME[1]]["uncorrected_total_energy"] = "abc"
    data["mp-149"]["mp-2355719-1-1"]["stress"] = [["x", 0, 0], [0, 0, 0], [0, 0, 0]]
    error = located_error(write(tmp_path, data))
    assert (error.record, error.field) == (SI_FRAME[1], "uncorrected_total_energy")
    report = ParseReport()
    frames = load(write(tmp_path, data), on_invalid="drop", report=report)
    assert len(frames) == 11
    assert report.dropped_counts["invalid"] == 2
    assert {(r.frame_id, r.field) for r in report.dropped} == {
        (SI_FRAME[1], "uncorrected_total_energy"),
        ("mp-2355719-1-1", "stress"),
    }
    assert report.records_read[str(tmp_path / "edited.json")] == 13


def test_drop_needs_a_report():
    with pytest.raises(ConfigError, match="ParseReport"):
        load(R2SCAN, on_invalid="drop")
    with pytest.raises(ConfigError, match="on_invalid"):
        load(R2SCAN, on_invalid="ignore")


# --- extended XYZ -----------------------------------------------------------------------------


def test_extxyz_frames_ids_and_stress_units():
    frames = load_extxyz(EXTXYZ, functional="r2scan")
    assert [f.frame_id for f in frames] == ["target-si-0", "target_small-1", "target_small-2"]
    assert [f.material_id for f in frames] == ["mp-149", "mp-149", "target_small-2"]
    si = frames[0]
    assert si.energy == pytest.approx(-20.806) and si.functional == "r2scan"
    np.testing.assert_allclose(si.forces, [[0.01, 0.0, 0.02], [-0.01, 0.0, -0.02]])
    # 0.005 eV/Å³ tensile = +0.801 GPa (ASE sign kept); off-diagonal xy from Voigt slot 6
    assert si.stress[0, 0] == pytest.approx(0.005 / units.GPa) == pytest.approx(0.80108, abs=1e-4)
    assert si.stress[0, 1] == pytest.approx(0.001 / units.GPa)
    assert si.magmoms.tolist() == [0.0, 0.0]
    gpa = load_extxyz(EXTXYZ, functional="r2scan", config=ExtxyzConfig(stress_unit="GPa"))
    assert gpa[0].stress[2, 2] == pytest.approx(0.004)
    with pytest.raises(ConfigError, match="stress_unit"):
        ExtxyzConfig(stress_unit="kbar")


def _xyz(tmp_path: Path, body: str, name: str = "user.xyz") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


HEADER = 'Lattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3:{props} {info} pbc="T T T"\n'


def test_extxyz_custom_keys_stay_in_info_and_arrays(tmp_path):
    body = "2\n" + HEADER.format(
        props="REF_forces:R:3",
        info="REF_energy=-7.5 REF_stress=" '"1 0 0 0 1 0 0 0 1" material_id=m1',
    )
    body += "Na 0 0 0 0.1 0 0\nCl 1.5 1.5 1.5 -0.1 0 0\n"
    config = ExtxyzConfig(
        energy_key="REF_energy", forces_key="REF_forces", stress_key="REF_stress", stress_unit="GPa"
    )
    (frame,) = load_extxyz(_xyz(tmp_path, body), functional="pbe", config=config)
    assert frame.energy == -7.5 and frame.functional == "pbe" and frame.material_id == "m1"
    assert frame.forces[0, 0] == pytest.approx(0.1) and frame.stress[1, 1] == 1.0
    (default_keys,) = load_extxyz(_xyz(tmp_path, body), functional="pbe")
    assert default_keys.energy is None and default_keys.forces is None


def test_extxyz_invalid_frames_raise_or_drop(tmp_path):
    good = (
        "2\n"
        + HEADER.format(props="forces:R:3", info="energy=-5.0")
        + ("Na 0 0 0 0.1 0 0\nCl 1.5 1.5 1.5 -0.1 0 0\n")
    )
    nan = (
        "2\n"
        + HEADER.format(props="forces:R:3", info="energy=nan")
        + ("Na 0 0 0 0.1 0 0\nCl 1.5 1.5 1.5 -0.1 0 0\n")
    )
    alien = (
        "2\n"
        + HEADER.format(props="forces:R:3", info="energy=-5.0")
        + ("Xx 0 0 0 0.1 0 0\nCl 1.5 1.5 1.5 -0.1 0 0\n")
    )
    short_forces = (
        "2\n"
        + HEADER.format(props="forces:R:2", info="energy=-5.0")
        + ("Na 0 0 0 0.1 0\nCl 1.5 1.5 1.5 -0.1 0\n")
    )
    path = _xyz(tmp_path, good + nan + alien + short_forces + good)
    with pytest.raises(DataError) as info:
        load_extxyz(path, functional="r2scan")
    assert (info.value.file, info.value.record, info.value.field) == (str(path), "user-1", "energy")
    report = ParseReport()
    frames = load_extxyz(path, functional="r2scan", on_invalid="drop", report=report)
    assert [f.frame_id for f in frames] == ["user-0", "user-4"]
    assert report.records_read == {str(path): 5}
    assert [(r.frame_id, r.field) for r in report.dropped] == [
        ("user-1", "energy"),
        ("user-2", "species"),
        ("user-3", "forces"),
    ]
    assert "Xx" in report.dropped[1].detail


def test_extxyz_truncated_file(tmp_path):
    text = EXTXYZ.read_text()
    path = _xyz(tmp_path, text[: text.rindex("Na")], "cut.extxyz")
    with pytest.raises(DataError, match="truncated") as info:
        load_extxyz(path, functional="r2scan")
    assert info.value.file == str(path) and info.value.record == "frame 2"


# --- Materials Project thermo API (recorded responses) ----------------------------------------


def ReplaySession(path: Path = RESPONSES) -> mp_format.ReplaySession:
    return mp_format.ReplaySession(path)


MATERIAL_IDS = [
    "mp-149",
    "mp-22862",
    "mp-1138",
    "mp-127",
    "mp-22848",
    "mp-135",
    "mp-561203",
    "mp-1204046",
]


def test_fetch_thermo_docs_paginates_recorded_responses():
    session = ReplaySession()
    meta: dict = {}
    docs = fetch_thermo_docs(
        material_ids=MATERIAL_IDS,
        api_key="test-key",
        session=session,
        page_size=5,
        response_meta=meta,
    )
    assert len(docs) == 15
    assert [c["params"]["_skip"] for c in session.calls] == [0, 5, 10]
    assert all(c["headers"]["X-API-KEY"] == "test-key" for c in session.calls)
    assert {d["thermo_type"] for d in docs} == {"GGA_GGA+U", "R2SCAN"}
    assert meta["total_doc"] == 15 and meta["api_version"]


def test_fetch_thermo_docs_batches_material_ids():
    class Generated:
        def __init__(self):
            self.batches = []

        def get(self, url, *, params, headers, timeout):
            ids = params["material_ids"].split(",")
            self.batches.append(ids)
            docs = [{"material_id": m, "thermo_type": t} for m in ids for t in ("GGA_GGA+U",)]
            return mp_format.Response(200, {"data": docs, "meta": {"total_doc": len(docs)}})

    session = Generated()
    docs = fetch_thermo_docs(material_ids=MATERIAL_IDS, api_key="k", session=session, batch_size=3)
    assert [len(b) for b in session.batches] == [3, 3, 2]
    assert sorted(d["material_id"] for d in docs) == sorted(MATERIAL_IDS)


def test_fetch_thermo_docs_errors(monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="MP_API_KEY"):
        fetch_thermo_docs(material_ids=["mp-149"], session=ReplaySession())

    class Denied:
        def get(self, url, **kwargs):
            return mp_format.Response(401, {"detail": "Invalid API key"})

    monkeypatch.setenv("MP_API_KEY", "from-env")
    with pytest.raises(MPAPIError, match="401.*Invalid API key"):
        fetch_thermo_docs(material_ids=["mp-149"], session=Denied())


def test_thermo_docs_to_materials_table():
    docs = fetch_thermo_docs(
        material_ids=MATERIAL_IDS, api_key="k", session=ReplaySession(), page_size=5
    )
    table = thermo_docs_to_materials(docs).set_index(["material_id", "functional"])
    assert len(table) == 15
    nacl = table.loc[("mp-22862", "gga")]
    assert nacl.formula == "NaCl"
    assert nacl.relaxed_energy_per_atom == pytest.approx(-3.7243)
    assert nacl.relaxed_energy_per_atom_uncorrected == pytest.approx(-3.4173)
    assert nacl.formation_energy_per_atom == pytest.approx(-2.14395)
    # uncorrected: -3.4173 - (-1.3122 - 1.8485) / 2
    assert nacl.formation_energy_per_atom_uncorrected == pytest.approx(-1.83695)
    # the metastable Si polymorph is not the reference; its formation energy is its offset
    assert table.loc[("mp-149", "r2scan")].is_elemental_reference
    assert not table.loc[("mp-1204046", "r2scan")].is_elemental_reference
    assert table.loc[("mp-1204046", "r2scan")].formation_energy_per_atom_uncorrected == (
        pytest.approx(0.1194)
    )
    # no r2SCAN F reference: NaN, and counted rather than hidden
    assert math.isnan(table.loc[("mp-1138", "r2scan")].formation_energy_per_atom_uncorrected)
    assert table.loc[("mp-1138", "r2scan")].formation_energy_per_atom == pytest.approx(-3.5234)
    notes = thermo_docs_to_materials(docs).attrs["notes"]
    assert notes["missing_elemental_references"] == {"r2scan": ["F"]}
    assert notes["rows_without_uncorrected_formation_energy"] == {"r2scan": 1}


def test_save_and_load_thermo_docs(tmp_path):
    docs = load_thermo_docs(THERMO_DOCS)
    assert len(docs) == 15
    for name in ("docs.json", "docs.json.gz"):
        path = save_thermo_docs(tmp_path / name, docs[::-1], meta={"api_version": "x"})
        assert load_thermo_docs(path) == docs
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(docs[:2]))
    assert load_thermo_docs(bare) == docs[:2]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"material_id": "mp-1"}]))
    with pytest.raises(DataError) as info:
        load_thermo_docs(bad)
    assert (info.value.file, info.value.record, info.value.field) == (
        str(bad),
        "doc 0",
        "thermo_type",
    )


def test_fetch_thermo_for_trajectory_file_adds_elemental_docs(tmp_path):
    docs = load_thermo_docs(THERMO_DOCS)

    class Generated:
        def __init__(self):
            self.params = []

        def get(self, url, *, params, headers, timeout):
            self.params.append(params)
            if "material_ids" in params:
                ids = set(params["material_ids"].split(","))
                page = [d for d in docs if d["material_id"] in ids]
            else:
                assert (params["nelements_min"], params["nelements_max"]) == (1, 1)
                page = [d for d in docs if len(d["composition"]) == 1]
            return mp_format.Response(200, {"data": page, "meta": {"total_doc": len(page)}})

    assert read_material_ids(R2SCAN) == ["mp-149", "mp-22862", "mp-1138"]
    session = Generated()
    out = fetch_thermo_for_trajectory_file(
        R2SCAN, tmp_path / "thermo.json", api_key="k", session=session
    )
    saved = load_thermo_docs(out)
    assert session.params[0]["material_ids"] == "mp-1138,mp-149,mp-22862"
    ids = {d["material_id"] for d in saved}
    assert ids == {
        "mp-1138",
        "mp-149",
        "mp-22862",
        "mp-127",
        "mp-135",
        "mp-1204046",
        "mp-22848",
        "mp-561203",
    }
    assert len(saved) == len({(d["material_id"], d["thermo_type"]) for d in saved})


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_bare_nan_tokens_are_found_across_read_boundaries(chunk, monkeypatch):
    monkeypatch.setattr(_NonFiniteQuoter, "_CHUNK", chunk)
    data = {"mp-1": {"a": {"e": math.nan, "f": [1.5, math.inf, -math.inf], "label": "NaN"}}}
    for indent in (None, 2):
        stream = _NonFiniteQuoter(io.BytesIO(json.dumps(data, indent=indent).encode()))
        ((key, value),) = ijson.kvitems(stream, "", use_float=True)
        assert value["a"] == {"e": "NaN", "f": [1.5, "Infinity", "-Infinity"], "label": "NaN"}
