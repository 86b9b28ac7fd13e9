"""The mlip-transfer command as a user calls it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import units

from mlip_transfer.cli import EXAMPLES, build_parser, main
from mlip_transfer.data.dataset import read_frames

FIXTURES = Path(__file__).parent / "fixtures"


def test_help_lists_every_command_and_every_example_parses():
    result = subprocess.run(
        [sys.executable, "-m", "mlip_transfer.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("parse", "split", "check-config", "verify", "download", "rank-teachers", "retention",
                    "build-default", "data-budget"):
        assert command in result.stdout
    examples = [line.split()[1:] for line in EXAMPLES.splitlines() if line.startswith("  mlip-transfer")]
    assert len(examples) == 13 and result.stdout.count("  mlip-transfer ") == len(examples)
    parser = build_parser()
    for argv in examples:
        if argv[0] == "build-default":
            continue  # its own parser, tested in tests/data/test_surrogate.py
        args = parser.parse_args(argv)  # an outdated example exits here
        assert args.handler.__name__ == "_" + argv[0].replace("-", "_"), argv
    vasp = parser.parse_args(examples[1])
    assert (vasp.stress_unit, vasp.energy_key, vasp.material_ids_from) == ("kBar", "REF_energy", "match")


def test_parse_then_split_user_extxyz(tmp_path, capsys):
    out = tmp_path / "parsed"
    assert main(["parse", "extxyz", "--xyz", str(FIXTURES / "target_small.extxyz"), "--out", str(out)]) == 0
    frames = read_frames(out / "frames.jsonl.gz")
    assert frames and all(frame.functional == "r2scan" for frame in frames)
    assert "kept" in capsys.readouterr().out
    assert main(["split", str(out), "--seed", "1"]) == 0
    split = pd.read_csv(out / "split.csv")
    assert set(split["material_id"]) == {frame.material_id for frame in frames}


def test_bad_input_exits_2_with_a_located_message(tmp_path, capsys):
    bad = tmp_path / "bad.extxyz"
    bad.write_text((FIXTURES / "target_small.extxyz").read_text().replace("Si ", "Xx ", 1))
    assert main(["parse", "extxyz", "--xyz", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.extxyz" in err and "Xx" in err


def test_check_config_accepts_shipped_and_rejects_others(tmp_path, capsys):
    repo = Path(__file__).resolve().parents[1]
    assert main(["check-config", str(repo / "config" / "config.yaml")]) == 0
    (tmp_path / "c.yaml").write_text("output_dir: x\n")
    assert main(["check-config", str(tmp_path / "c.yaml")]) == 2
    assert "'data' is a required property" in capsys.readouterr().err


TARGET = FIXTURES / "target_small.extxyz"


def _parse_frames(tmp_path, name, *flags, xyz=TARGET):
    out = tmp_path / name
    assert main(["parse", "extxyz", "--xyz", str(xyz), "--out", str(out), *flags]) == 0
    return {frame.frame_id: frame for frame in read_frames(out / "frames.jsonl.gz")}


def test_stress_unit_flag_scales_the_stress(tmp_path):
    ev = _parse_frames(tmp_path, "ev")  # default eV/A^3
    gpa = _parse_frames(tmp_path, "gpa", "--stress-unit", "GPa")
    kbar = _parse_frames(tmp_path, "kbar", "--stress-unit", "kBar")
    assert set(ev) == set(gpa) == set(kbar) and len(ev) == 3
    for frame_id, frame in ev.items():
        np.testing.assert_allclose(gpa[frame_id].stress, frame.stress * units.GPa)  # 1/160.2
        np.testing.assert_allclose(kbar[frame_id].stress, 0.1 * gpa[frame_id].stress)
    np.testing.assert_allclose(gpa["target-si-0"].stress[0], [0.005, 0.001, 0.0])


def test_label_name_flags_read_renamed_labels(tmp_path, capsys):
    (tmp_path / "ref").mkdir()
    renamed = tmp_path / "ref" / TARGET.name  # the same stem, so the same frame ids
    text = TARGET.read_text().replace(" energy=", " REF_energy=").replace("material_id=", "mid=")
    renamed.write_text(text.replace(":forces:", ":REF_forces:"))
    expected = _parse_frames(tmp_path, "plain")
    flags = ["--energy-key", "REF_energy", "--forces-key", "REF_forces", "--material-id-key", "mid"]
    frames = _parse_frames(tmp_path, "parsed", *flags, xyz=renamed)
    assert set(frames) == set(expected)
    for frame_id, frame in frames.items():
        assert frame.energy == expected[frame_id].energy
        np.testing.assert_array_equal(frame.forces, expected[frame_id].forces)
        assert frame.material_id == expected[frame_id].material_id
    # without --energy-key the energies are not found: nothing is kept
    argv = ["parse", "extxyz", "--xyz", str(renamed), "--out", str(tmp_path / "no"), *flags[2:]]
    assert main(argv) == 2
    assert "no frame was kept" in capsys.readouterr().err


def test_material_ids_from_flag_groups_frames_without_ids(tmp_path, capsys):
    no_ids = tmp_path / "no_ids.extxyz"
    no_ids.write_text(TARGET.read_text().replace("material_id=mp-149 ", ""))
    assert main(["parse", "extxyz", "--xyz", str(no_ids), "--out", str(tmp_path / "info")]) == 2
    assert "no_ids.extxyz" in capsys.readouterr().err  # two Si frames could leak across the split
    frames = _parse_frames(tmp_path, "match", "--material-ids-from", "match", xyz=no_ids)
    silicon = {frame.material_id for frame in frames.values() if set(frame.species) == {"Si"}}
    assert len(silicon) == 1 and len(frames) == 3


@pytest.mark.parametrize("flag", [["--stress-unit", "GPa"], ["--energy-key", "E"]])
def test_extxyz_flags_are_refused_for_other_sources(tmp_path, flag, capsys):
    assert main(["parse", "default", "--path", str(tmp_path), "--out", str(tmp_path / "o"), *flag]) == 2
    assert f"{flag[0]}: only for source extxyz" in capsys.readouterr().err


def test_diagnose_json_is_standard_json_with_nan_as_null(tmp_path, monkeypatch, capsys):
    import json
    import math

    from mlip_transfer import cli
    from mlip_transfer.energy_scale import diagnose

    class Report:
        def to_markdown(self):
            return "# report"

        def to_dict(self):
            return {"mae": {"own_atomref": 0.12, "refit": math.nan}, "shift": [math.inf, 1.0]}

    seen = {}

    def fake_diagnose(**kwargs):
        seen.update(kwargs)
        return Report()

    monkeypatch.setattr(cli, "load_chgnet", lambda name: f"model {name}")
    monkeypatch.setattr(diagnose, "diagnose", fake_diagnose)
    out = tmp_path / "deep" / "diagnosis.json"
    argv = ["diagnose", "--xyz", str(TARGET), "--max-frames", "2", "--json", str(out)]
    assert main(argv) == 0
    assert "# report" in capsys.readouterr().out
    assert seen["max_frames"] == 2 and len(seen["frames"]) == 3 and seen["model"] == "model 0.3.0"

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    saved = json.loads(out.read_text(), parse_constant=refuse)
    assert saved == {"mae": {"own_atomref": 0.12, "refit": None}, "shift": [None, 1.0]}
