import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import (
    MATERIAL_COLUMNS,
    Frame,
    read_frames,
    read_materials,
    write_frames,
    write_materials,
)


def make_frame(**overrides):
    structure = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    labels = dict(
        frame_id="mp-22862-0",
        material_id="mp-22862",
        functional="r2scan",
        energy=-7.5,
        energy_uncorrected=-7.5,
        forces=np.zeros((2, 3)),
        stress=np.eye(3) * 0.1,
        magmoms=np.zeros(2),
        source="test",
    )
    labels.update(overrides)
    return Frame.from_structure(structure, **labels)


def test_frames_round_trip_through_the_canonical_file(tmp_path):
    frame = make_frame()
    write_frames(tmp_path / "frames.jsonl.gz", [frame, make_frame(frame_id="mp-22862-1", magmoms=None)])
    first, second = read_frames(tmp_path / "frames.jsonl.gz")
    assert first.to_dict() == frame.to_dict()
    assert first.energy_per_atom == pytest.approx(-3.75)
    assert second.magmoms is None
    assert first.to_structure().composition.reduced_formula == "NaCl"


def test_written_file_is_byte_identical_when_written_twice(tmp_path):
    write_frames(tmp_path / "a.jsonl.gz", [make_frame()])
    write_frames(tmp_path / "b.jsonl.gz", [make_frame()])
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def _write_records(path, records):
    with gzip.open(path, "wt") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"energy": float("nan")}, "energy", "not finite"),
        ({"species": ["Na", "Xx"]}, "species", "unknown element 'Xx'"),
        ({"forces": [[0, 0, 0]]}, "forces", r"shape \(1, 3\)"),
        ({"stress": [[1, 2], [3, 4]]}, "stress", "shape"),
        ({"energy": "high"}, "energy", "expected a number"),
        ({"lattice": None}, "lattice", "missing"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, change, field, message):
    record = {**make_frame().to_dict(), **change}
    path = tmp_path / "frames.jsonl.gz"
    _write_records(path, [make_frame(frame_id="ok").to_dict(), record])
    with pytest.raises(DataError, match=message) as info:
        read_frames(path)
    assert info.value.field == field
    assert info.value.record == "mp-22862-0"
    assert info.value.file.endswith("frames.jsonl.gz:2")


def test_truncated_file_is_reported_not_half_read(tmp_path):
    path = tmp_path / "frames.jsonl.gz"
    write_frames(path, [make_frame(frame_id=f"f{i}") for i in range(50)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as info:
        read_frames(path)
    assert str(path) in str(info.value)


def test_materials_table_checks_columns_and_nan(tmp_path):
    table = pd.DataFrame(
        {
            "material_id": ["mp-1", "mp-1"],
            "formula": ["Na", "Na"],
            "functional": ["gga", "r2scan"],
            "relaxed_energy_per_atom": [-1.3, -2.0],
            "relaxed_energy_per_atom_uncorrected": [-1.3, -2.0],
            "formation_energy_per_atom": [0.0, 0.0],
            "formation_energy_per_atom_uncorrected": [0.0, 0.0],
            "is_elemental_reference": [True, True],
        }
    )
    write_materials(tmp_path / "m.csv", table)
    assert read_materials(tmp_path / "m.csv").equals(table)
    table.loc[1, "formation_energy_per_atom"] = np.nan
    write_materials(tmp_path / "nan.csv", table)
    with pytest.raises(DataError, match="formation_energy_per_atom"):
        read_materials(tmp_path / "nan.csv")
    with pytest.raises(DataError, match="lacks columns"):
        write_materials(tmp_path / "x.csv", table.drop(columns="formula"))


def test_interrupted_frame_and_material_writes_leave_no_partial_file(tmp_path, monkeypatch):
    """A failure mid-write leaves the earlier complete file (or nothing), never a half file."""
    path = tmp_path / "frames.jsonl.gz"
    write_frames(path, [make_frame()])
    before = path.read_bytes()

    def frames_then_failure():
        yield make_frame(frame_id="mp-22862-1")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_frames(path, frames_then_failure())
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_frames(tmp_path / "new.jsonl.gz", frames_then_failure())
    assert not (tmp_path / "new.jsonl.gz").exists()

    row = dict.fromkeys(MATERIAL_COLUMNS, 0.0) | {
        "material_id": "mp-1", "formula": "Si", "functional": "r2scan", "is_elemental_reference": True
    }
    table = pd.DataFrame([row])

    def half_csv(self, path, **_):
        Path(path).write_text("material_id,formula\nmp-1,")  # the first bytes, then the kill
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_csv)
    with pytest.raises(OSError, match="disk full"):
        write_materials(tmp_path / "materials.csv", table)
    assert not (tmp_path / "materials.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.jsonl.gz"]
