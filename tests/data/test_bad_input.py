"""Bad input, one class per section: each stops with a message naming the file, the record and
the field, or (``on_invalid_record: drop``) is dropped and counted with its reason."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import zlib
from pathlib import Path

import pytest

from mlip_transfer.cli import main
from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import read_frames, write_frames
from mlip_transfer.data.filters import FilterConfig
from mlip_transfer.data.loaders import (
    ExtxyzConfig,
    load_extxyz,
    load_mp_trajectories,
    load_thermo_docs,
    thermo_docs_to_materials,
)
from mlip_transfer.data.parse import parse_dataset
from mlip_transfer.data.report import ParseReport

FIXTURES = Path(__file__).parents[1] / "fixtures"
R2SCAN = FIXTURES / "mp_r2scan_small.json"
THERMO_DOCS = FIXTURES / "mp_thermo_docs.json"
EXTXYZ = FIXTURES / "target_small.extxyz"
SI_MATERIAL, SI_FRAME = "mp-149", "mp-2355719-1-0"


# --- helpers ----------------------------------------------------------------------------------


def mp_data() -> dict:
    return json.loads(R2SCAN.read_text())


def si_record(data: dict) -> dict:
    return data[SI_MATERIAL][SI_FRAME]


def write_json(tmp_path: Path, data, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))  # bare NaN / Infinity, as Python writes them
    return path


def mp_error(path: Path) -> DataError:
    with pytest.raises(DataError) as info:
        load_mp_trajectories(path, functional="r2scan", source="mp-r2scan")
    return info.value


def parse_mp(tmp_path: Path, r2scan: Path, *, thermo: Path | None = THERMO_DOCS, **filters):
    settings = {"r2scan_json": str(r2scan), "mptrj_json": None, "thermo_json": thermo}
    return parse_dataset(
        source="mp",
        settings={k: (None if v is None else str(v)) for k, v in settings.items()},
        filters=FilterConfig(**filters),
        out_dir=tmp_path / "parsed",
    )


def dropped_rows(tmp_path: Path) -> list[dict]:
    with open(tmp_path / "parsed" / "dropped.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def xyz_frame(
    atoms: tuple[tuple[str, str], ...] = (("Na", "0 0 0"), ("Cl", "1.5 1.5 1.5")),
    *,
    info: str = "energy=-5.0 material_id=nacl",
    lattice: str = "3 0 0 0 3 0 0 0 3",
    forces: str = "0.1 0 0",
    magmoms: str = "0",
) -> str:
    """One extxyz frame (species, positions, forces, magmoms) with the given info line."""
    header = (
        f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:forces:R:3:magmoms:R:1 '
        f'{info} pbc="T T T"\n'
    )
    lines = "".join(f"{symbol} {pos} {forces} {magmoms}\n" for symbol, pos in atoms)
    return f"{len(atoms)}\n{header}{lines}"


def write_xyz(tmp_path: Path, *frames: str, name: str = "user.xyz") -> Path:
    path = tmp_path / name
    path.write_text("".join(frames))
    return path


def xyz_error(path: Path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_extxyz(path, functional="r2scan", **kwargs)
    return info.value


def located(error: DataError) -> tuple:
    return error.file, error.record, error.field


# --- elements the source model cannot represent ------------------------------------------------


def test_element_beyond_chgnet_fails_at_load_time_in_mp_json(tmp_path):
    data = mp_data()
    si_record(data)["structure"]["sites"][1]["species"][0]["element"] = "Am"
    path = write_json(tmp_path, data)
    error = mp_error(path)
    assert located(error) == (str(path), SI_FRAME, "structure.sites[1].species")
    assert "Am (Z = 95)" in str(error) and "Z = 1..94" in str(error)


def test_element_beyond_chgnet_fails_at_load_time_in_extxyz(tmp_path):
    path = write_xyz(tmp_path, xyz_frame((("Am", "0 0 0"), ("O", "1.5 1.5 1.5"))))
    error = xyz_error(path)
    assert located(error) == (str(path), "user-0", "species")
    assert "Am (Z = 95)" in str(error)
    # Pu (Z = 94) is the last element CHGNet has
    (frame,) = load_extxyz(
        write_xyz(tmp_path, xyz_frame((("Pu", "0 0 0"), ("O", "1.5 1.5 1.5"))), name="pu.xyz"),
        functional="r2scan",
    )
    assert frame.species == ("Pu", "O")


# --- atoms too close ---------------------------------------------------------------------------


def test_close_atoms_in_mp_json_are_found_across_the_periodic_boundary(tmp_path):
    data = mp_data()
    sites = si_record(data)["structure"]["sites"]
    sites[0]["abc"], sites[1]["abc"] = [0.002, 0.0, 0.0], [0.997, 0.0, 0.0]  # 0.5 % of 3.94 Å
    path = write_json(tmp_path, data)
    error = mp_error(path)
    assert located(error) == (str(path), SI_FRAME, "structure.sites")
    assert "atoms 0 (Si) and 1 (Si) are 0.020 Å apart" in str(error)
    assert "filters.min_interatomic_distance = 0.5" in str(error)


def test_close_atoms_in_extxyz_and_the_threshold_setting(tmp_path):
    path = write_xyz(tmp_path, xyz_frame((("Na", "0 0 0"), ("Cl", "0.04 0 0"))))
    error = xyz_error(path)
    assert located(error) == (str(path), "user-0", "pos")
    assert "0.040 Å apart" in str(error)
    # a lattice vector shorter than the threshold brings an atom close to its own image
    short = write_xyz(tmp_path, xyz_frame((("Na", "0 0 0"),), lattice="0.3 0 0 0 3 0 0 0 3"),
                      name="short.xyz")
    assert "atom 0 (Na) and a periodic image of itself are 0.300 Å apart" in str(xyz_error(short))
    # the config key moves the threshold; null switches the check off
    report = parse_dataset(
        source="extxyz",
        settings={"paths": [str(path)], "functional": "r2scan"},
        filters=FilterConfig(min_interatomic_distance=None),
        out_dir=tmp_path / "off",
    )
    assert report.kept == 1
    with pytest.raises(ConfigError, match="min_interatomic_distance"):
        FilterConfig(min_interatomic_distance=-1.0)


# --- NaN and infinity in every array -----------------------------------------------------------


def _set(path: tuple, value):
    def change(record: dict) -> None:
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set(("structure", "lattice", "matrix", 0, 1), math.nan), "structure.lattice.matrix"),
        (_set(("structure", "sites", 1, "abc", 2), math.inf), "structure.sites"),
        (_set(("force", 0, 0), math.nan), "force"),
        (_set(("stress", 1, 1), -math.inf), "stress"),
        (_set(("magmom",), [math.nan, 0.0]), "magmom"),
        (_set(("uncorrected_total_energy",), math.nan), "uncorrected_total_energy"),
        (_set(("corrected_total_energy",), math.inf), "corrected_total_energy"),
        (_set(("energy_per_atom",), math.nan), "energy_per_atom"),
        (_set(("e_per_atom_relaxed",), math.nan), "e_per_atom_relaxed"),
    ],
)
def test_non_finite_values_in_mp_json_name_the_field(tmp_path, change, field):
    data = mp_data()
    change(si_record(data))
    path = write_json(tmp_path, data)
    error = mp_error(path)
    assert located(error) == (str(path), SI_FRAME, field)
    assert "not finite" in str(error) or "NaN or infinite" in str(error)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"lattice": "nan 0 0 0 3 0 0 0 3"}, "Lattice"),
        ({"atoms": (("Na", "0 nan 0"), ("Cl", "1.5 1.5 1.5"))}, "pos"),
        ({"forces": "0.1 inf 0"}, "forces"),
        ({"magmoms": "nan"}, "magmoms"),
        ({"info": 'energy=-5.0 stress="0 0 0 0 nan 0 0 0 0"'}, "stress"),
        ({"info": "energy=nan"}, "energy"),
        ({"info": "energy=-5.0 energy_uncorrected=inf"}, "energy_uncorrected"),
        ({"info": "energy=-5.0 e_per_atom_relaxed=nan"}, "e_per_atom_relaxed"),
    ],
)
def test_non_finite_values_in_extxyz_name_the_field(tmp_path, options, field):
    path = write_xyz(tmp_path, xyz_frame(**options))
    error = xyz_error(path)
    assert located(error) == (str(path), "user-0", field)
    assert "not finite" in str(error) or "NaN or infinite" in str(error)


def test_drop_mode_counts_and_lists_each_bad_record(tmp_path):
    data = mp_data()
    frames = data[SI_MATERIAL]
    ids = sorted(frames)
    frames[ids[0]]["structure"]["sites"][0]["species"][0]["element"] = "Am"
    frames[ids[1]]["structure"]["sites"][1]["abc"] = frames[ids[1]]["structure"]["sites"][0]["abc"]
    frames[ids[2]]["force"][0][0] = math.nan
    report = parse_mp(tmp_path, write_json(tmp_path, data), on_invalid_record="drop")
    assert report.dropped_counts["invalid"] == 3
    rows = {r["frame_id"]: r for r in dropped_rows(tmp_path) if r["reason"] == "invalid"}
    assert {fid: rows[fid]["field"] for fid in ids[:3]} == {
        ids[0]: "structure.sites[0].species",
        ids[1]: "structure.sites",
        ids[2]: "force",
    }
    assert "Z = 95" in rows[ids[0]]["detail"] and "0.000 Å apart" in rows[ids[1]]["detail"]


# --- inputs that yield no frame ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [({}, "holds no material"), ([], "holds no material"), ({"mp-1": {}}, "hold no frame")],
)
def test_mp_json_without_frames_is_an_error_naming_the_file(tmp_path, content, message):
    path = write_json(tmp_path, content, name="empty.json")
    error = mp_error(path)
    assert error.file == str(path) and message in str(error)


def test_empty_mp_json_exits_2_from_the_command(tmp_path, capsys):
    path = write_json(tmp_path, {}, name="empty.json")
    code = main(["parse", "mp", "--r2scan-json", str(path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "empty.json" in capsys.readouterr().err


def test_empty_extxyz_is_an_error_naming_the_file(tmp_path):
    path = write_xyz(tmp_path, "\n\n", name="empty.xyz")
    error = xyz_error(path)
    assert error.file == str(path) and "holds no frame" in str(error)


def test_a_parse_that_keeps_no_frame_fails_but_leaves_its_report(tmp_path):
    data = {SI_MATERIAL: {SI_FRAME: si_record(mp_data())}}
    si_record(data)["force"] = None  # criterion 2 drops the only frame
    path = write_json(tmp_path, data)
    with pytest.raises(DataError, match="no frame was kept") as info:
        parse_mp(tmp_path, path)
    assert info.value.file == str(path) and "1 missing_label" in str(info.value)
    assert not (tmp_path / "parsed" / "frames.jsonl.gz").exists()
    assert [r["frame_id"] for r in dropped_rows(tmp_path)] == [SI_FRAME]


# --- corrupted gzip streams --------------------------------------------------------------------


def corrupt_deflate(path: Path) -> Path:
    """Flip the first deflate block header into the reserved block type: zlib.error on read."""
    data = bytearray(path.read_bytes())
    assert data[:2] == b"\x1f\x8b" and data[3] == 0  # gzip, no optional header fields
    data[10] = 0xFF
    path.write_bytes(bytes(data))
    return path


def test_corrupted_frames_file_raises_a_located_error_not_zlib_error(tmp_path):
    frames = load_extxyz(EXTXYZ, functional="r2scan")
    path = tmp_path / "frames.jsonl.gz"
    write_frames(path, frames)
    corrupt_deflate(path)
    with pytest.raises(DataError) as info:
        read_frames(path)
    assert isinstance(info.value.__cause__, zlib.error)
    assert info.value.file == str(path) and "corrupted" in str(info.value)


def test_corrupted_gzip_extxyz_and_thermo_docs(tmp_path):
    good = tmp_path / "good.xyz.gz"
    good.write_bytes(gzip.compress(EXTXYZ.read_bytes()))
    assert len(load_extxyz(good, functional="r2scan")) == 3  # .gz is read transparently
    error = xyz_error(corrupt_deflate(good))
    assert error.file == str(good) and isinstance(error.__cause__, zlib.error)
    thermo = tmp_path / "thermo.json.gz"
    thermo.write_bytes(gzip.compress(THERMO_DOCS.read_bytes(), mtime=0))
    corrupt_deflate(thermo)
    with pytest.raises(DataError, match="corrupted or truncated thermo docs") as info:
        parse_mp(tmp_path, R2SCAN, thermo=thermo)
    assert info.value.file == str(thermo) and isinstance(info.value.__cause__, zlib.error)


# --- thermo docs without finite energies -------------------------------------------------------


def test_thermo_docs_without_energies_are_listed_by_document_and_field(tmp_path):
    docs = load_thermo_docs(THERMO_DOCS)
    by_id = {doc["thermo_id"]: doc for doc in docs}
    by_id["mp-22862_R2SCAN"]["energy_per_atom"] = math.nan
    by_id["mp-1138_R2SCAN"]["formation_energy_per_atom"] = None  # and no r2SCAN F reference
    thermo = write_json(tmp_path, {"data": docs}, name="thermo.json")
    left_out = thermo_docs_to_materials(load_thermo_docs(thermo)).attrs["left_out_docs"]
    assert [(d["record"], d["material_id"], d["field"]) for d in left_out] == [
        ("mp-1138_R2SCAN", "mp-1138", "formation_energy_per_atom"),
        ("mp-22862_R2SCAN", "mp-22862", "energy_per_atom"),
    ]
    report = parse_mp(tmp_path, R2SCAN, thermo=thermo)
    rows = {r["frame_id"]: r for r in dropped_rows(tmp_path) if r["file"] == str(thermo)}
    assert set(rows) == {"mp-1138_R2SCAN", "mp-22862_R2SCAN"}
    assert rows["mp-22862_R2SCAN"]["field"] == "energy_per_atom"
    assert "nan, not a finite number" in rows["mp-22862_R2SCAN"]["detail"]
    assert "missing, and no elemental reference for F" in rows["mp-1138_R2SCAN"]["detail"]
    assert report.notes["rows_without_energy_left_out"] == {"r2scan": 2}


# --- material ids of extended XYZ --------------------------------------------------------------


def trajectory(n: int, *, with_ids: bool) -> list[str]:
    """``n`` rattled frames of one NaCl structure, as a relaxation trajectory gives them."""
    info = "energy={e} material_id=nacl" if with_ids else "energy={e}"
    return [
        xyz_frame(
            (("Na", f"0 0 {0.01 * step}"), ("Cl", "1.5 1.5 1.5")), info=info.format(e=-5 - step)
        )
        for step in range(n)
    ]


def parse_xyz(tmp_path: Path, *paths: Path, **settings):
    return parse_dataset(
        source="extxyz",
        settings={"paths": [str(p) for p in paths], "functional": "r2scan", **settings},
        filters=FilterConfig(deduplicate=False),
        out_dir=tmp_path / "parsed",
    )


def test_frames_of_one_trajectory_without_ids_are_refused_with_the_leak_explained(tmp_path):
    path = write_xyz(tmp_path, *trajectory(4, with_ids=False), name="traj.xyz")
    with pytest.raises(DataError) as info:
        parse_xyz(tmp_path, path)
    error = info.value
    assert located(error) == (str(path), "traj-0", "material_id")
    for words in ("same composition (NaCl)", "train/test leak", "material_ids_from: match"):
        assert words in str(error)


def test_match_groups_the_trajectory_into_one_material(tmp_path):
    other = xyz_frame(
        (("Na", "0 0 0"), ("Cl", "0 0 1.9")), info="energy=-2", lattice="5 0 0 0 5 0 0 0 7"
    )
    path = write_xyz(tmp_path, *trajectory(4, with_ids=False), other, name="traj.xyz")
    parse_xyz(tmp_path, path, material_ids_from="match")
    frames = read_frames(tmp_path / "parsed" / "frames.jsonl.gz")
    ids = {f.frame_id: f.material_id for f in frames}
    assert ids == {f"traj-{i}": "traj-0" for i in range(4)} | {"traj-4": "traj-4"}
    # a frame without an id joins the matching material that has one
    labelled = write_xyz(tmp_path, *trajectory(2, with_ids=True), name="ids.xyz")
    parse_xyz(tmp_path, labelled, path, material_ids_from="match")
    ids = {f.frame_id: f.material_id for f in read_frames(tmp_path / "parsed" / "frames.jsonl.gz")}
    assert {ids[f"traj-{i}"] for i in range(4)} == {"nacl"} and ids["traj-4"] == "traj-4"


def test_ids_from_a_configured_info_key_and_lone_frames_without_one(tmp_path):
    frames = [f.replace("material_id=nacl", "mid=nacl") for f in trajectory(3, with_ids=True)]
    lone = xyz_frame((("Si", "0 0 0"), ("Si", "1.5 1.5 1.5")), info="energy=-9")
    path = write_xyz(tmp_path, *frames, lone, name="keyed.xyz")
    parse_xyz(tmp_path, path, material_id_key="mid")
    ids = {f.frame_id: f.material_id for f in read_frames(tmp_path / "parsed" / "frames.jsonl.gz")}
    # the Si frame has a composition of its own, so it cannot share a material with another
    assert ids == {"keyed-0": "nacl", "keyed-1": "nacl", "keyed-2": "nacl", "keyed-3": "keyed-3"}
    with pytest.raises(ConfigError, match="material_ids_from"):
        ExtxyzConfig(material_ids_from="frame")


# --- stress units ------------------------------------------------------------------------------


def test_stress_units_convert_to_gpa():
    values = {
        unit: load_extxyz(EXTXYZ, functional="r2scan", config=ExtxyzConfig(stress_unit=unit))[0]
        .stress[0, 0]
        for unit in ("eV/A^3", "eV/A3", "GPa", "kBar")
    }
    assert values["eV/A^3"] == values["eV/A3"] == pytest.approx(0.005 * 160.21766)
    assert values["GPa"] == pytest.approx(0.005) and values["kBar"] == pytest.approx(0.0005)


def test_implausible_stress_magnitudes_warn_naming_the_file(tmp_path, caplog):
    report = ParseReport()
    with caplog.at_level(logging.WARNING, logger="mlip_transfer.data.parse"):
        load_extxyz(
            EXTXYZ, functional="r2scan", config=ExtxyzConfig(stress_unit="GPa"), report=report
        )
    (warning,) = report.notes["stress_unit_warnings"].values()
    assert str(EXTXYZ) in warning and "read as eV/A^3 it would be 0.8011 GPa" in warning
    assert any(warning == record.getMessage() for record in caplog.records)
    # the unit the file was written in gives no warning
    report = ParseReport()
    load_extxyz(EXTXYZ, functional="r2scan", report=report)
    assert "stress_unit_warnings" not in report.notes


def test_stress_unit_in_the_parse_settings(tmp_path):
    report = parse_dataset(
        source="extxyz",
        settings={"paths": [str(EXTXYZ)], "functional": "r2scan", "stress_unit": "kBar"},
        filters=FilterConfig(),
        out_dir=tmp_path / "parsed",
    )
    frames = read_frames(tmp_path / "parsed" / "frames.jsonl.gz")
    assert frames[0].stress[2, 2] == pytest.approx(0.0004)
    assert str(EXTXYZ) in report.notes["stress_unit_warnings"]
    with pytest.raises(ConfigError, match="stress_unit"):
        parse_xyz(tmp_path, EXTXYZ, stress_unit="Pa")
