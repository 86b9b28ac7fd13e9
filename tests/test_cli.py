"""The mlip-transfer command as a user calls it."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from mlip_transfer.cli import main
from mlip_transfer.data.dataset import read_frames

FIXTURES = Path(__file__).parent / "fixtures"


def test_help_lists_every_command_with_examples():
    result = subprocess.run(
        [sys.executable, "-m", "mlip_transfer.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("parse", "split", "check-config", "verify", "download", "build-default"):
        assert command in result.stdout
    assert "examples:" in result.stdout


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
