"""Real tiny data-budget runs: the point job's recipe, the in-process runner (with the measured
full size beside the estimate), the CLI on a canonical folder, and the collect job's checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlip_transfer.budget import jobs
from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import iter_frames

DATASET = "resources/default_dataset/frames.jsonl.gz"
TRAINING = {"source_model": "0.3.0", "functional": "r2scan", "epochs": 1, "batch_size": 16,
            "learning_rate": 1e-3, "final_learning_rate": 1e-5, "loss_ratios": [3, 1, 0.1, 1],
            "criterion": "Huber", "max_train_frames": None, "max_val_frames": None,
            "device": "cpu", "seed": 0}


@pytest.fixture(scope="module")
def tiny(request):
    """12 small r2SCAN frames, one per material: 8 train, 2 validation, 2 test."""
    frames, seen = [], set()
    for frame in iter_frames(request.config.rootpath / DATASET):
        if frame.functional == "r2scan" and frame.n_atoms <= 4 and frame.material_id not in seen:
            frames.append(frame)
            seen.add(frame.material_id)
        if len(frames) == 12:
            break
    split = {f.material_id: "train" if k < 8 else "val" if k < 10 else "test"
             for k, f in enumerate(frames)}
    return frames, split


def test_cli_on_a_canonical_folder_extrapolates_beside_the_measured_full_size(
    tiny, tmp_path, capsys
):
    """``mlip-transfer data-budget`` (:func:`jobs.run_local`): points with the recipe, the
    full-size training beside the estimate, the report's words."""
    from mlip_transfer.cli import main
    from mlip_transfer.data.dataset import write_frames
    from mlip_transfer.data.split import write_split

    frames, split = tiny
    write_frames(tmp_path / "data" / "frames.jsonl.gz", frames)
    write_split(tmp_path / "data" / "split.csv", split)
    out = tmp_path / "out"
    code = main(["data-budget", "--data", str(tmp_path / "data"), "--out", str(out),
                 "--methods", "4_refit_atomref", "--fractions", "0.25", "0.5", "--epochs", "1",
                 "--max-train-frames", "8", "--measure-full"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "This is an extrapolation" in printed and "N_full = 8" in printed
    points = pd.read_csv(out / jobs.POINTS_FILE)
    assert sorted(points["size"].unique()) == [2, 4] and (points["n_full"] == 8).all()
    # The recipe: one epoch of batch 16 is one step; every point validates on the 2 frames.
    assert (points["steps_taken"] == 1).all() and (points["n_val_frames"] == 2).all()
    summary = json.loads((out / jobs.JSON_FILE).read_text())
    row = summary["targets"]["energy"]["estimates"]["4_refit_atomref"]
    assert row["n_full"] == 8 and row["measured"] > 0 and row["extrapolation_factor"] == 2
    assert row["low"] is None  # two sizes: a line, no interval
    # No Scratch curve: no verdict, and the sentence says why.
    assert summary["targets"]["force"]["verdicts"] == {} and "no verdict" in summary["sentence"]
    # Every point starts from the AtomRef fitted once on all training frames, and validates
    # only after its last epoch (no epoch-0 row).
    trainings = out / "trainings" / "4_refit_atomref"
    starts = [json.loads((trainings / name / "train_summary.json").read_text())["model_info"]
              for name in ("n2_seed0", "n4_seed0", "full")]
    assert starts[0]["atomref"] == starts[1]["atomref"] == starts[2]["atomref"]
    assert "all 8 training frames" in starts[0]["atomref_start"]
    history = pd.read_csv(trainings / "n2_seed0" / "history.csv").query("split == 'val'")
    assert list(history["epoch"]) == [1]


def test_cli_refuses_fractions_that_collapse(tiny, tmp_path, capsys):
    from mlip_transfer.cli import main

    code = main(["data-budget", "--xyz", "tests/fixtures/target_small.extxyz", "--out",
                 str(tmp_path), "--fractions", "0.5", "1.0"])
    assert code == 2 and "data_budget.fractions" in capsys.readouterr().err


def test_collect_job_refuses_points_of_different_full_sizes(tmp_path):
    paths = []
    for k, n_full in enumerate((350, 400)):
        paths.append(tmp_path / f"r{k}.json")
        paths[-1].write_text(json.dumps({"method": "1_scratch", "size": 40 * (k + 1), "seed": 0,
                                         "n_full": n_full, "energy_mae_mev_per_atom": 1.0,
                                         "force_mae_mev_per_a": 1.0}))
    with pytest.raises(DataError, match="full sizes \\[350, 400\\]"):
        jobs.data_budget_report(results=paths, histories=[], provenance=tmp_path / "p.json",
                                out_dir=tmp_path, training=TRAINING,
                                data_budget={"methods": ["1_scratch"], "fractions": [0.1, 0.2]})


def test_measured_full_size_is_the_last_validation_row(tmp_path):
    path = tmp_path / "4_refit_atomref" / "history.csv"
    path.parent.mkdir()
    pd.DataFrame({"epoch": [0, 1, 2, 2], "split": ["val", "train", "train", "val"],
                  "energy_mae": [0.3, 0.2, 0.1, 0.25], "force_mae": [0.2, 0.1, 0.1, 0.15]}
                 ).to_csv(path, index=False)
    assert jobs.measured_full_size([path]) == {"4_refit_atomref": {"energy": 250.0, "force": 150.0}}
    # Training moved both errors by more than 1 %: no flag.
    assert jobs.full_size_flags([path]) == {"4_refit_atomref": {"energy": "", "force": ""}}


def test_a_full_size_training_that_barely_moved_is_flagged(tmp_path):
    path = tmp_path / "4_refit_atomref" / "history.csv"
    path.parent.mkdir()
    pd.DataFrame({"epoch": [0, 3], "split": ["val", "val"], "energy_mae": [0.3, 0.2],
                  "force_mae": [0.0874, 0.0866]}).to_csv(path, index=False)
    raised = jobs.full_size_flags([path])["4_refit_atomref"]
    assert raised["energy"] == "" and raised["force"].startswith("not trained at this budget")
    # Without a row before training there is nothing to compare with (the CLI's points).
    pd.DataFrame({"epoch": [3], "split": ["val"], "energy_mae": [0.2], "force_mae": [0.08]}
                 ).to_csv(path, index=False)
    assert jobs.full_size_flags([path]) == {}


def test_point_refuses_an_atomref_fitted_on_another_split(tiny, tmp_path):
    from mlip_transfer.data.dataset import write_frames
    from mlip_transfer.data.split import write_split

    frames, split = tiny
    write_frames(tmp_path / "frames.jsonl.gz", frames)
    write_split(tmp_path / "split.csv", split)
    summary = tmp_path / "train_summary.json"
    summary.write_text(json.dumps({"model_info": {"n_atomref_frames": 350, "atomref": {}}}))
    with pytest.raises(DataError, match="fitted on 350 frames, the training split holds 8"):
        jobs.data_budget_point(
            frames=tmp_path / "frames.jsonl.gz", split=tmp_path / "split.csv",
            method="4_refit_atomref", fraction=0.5, seed=0, out_dir=tmp_path / "point",
            result=tmp_path / "result.json", training=TRAINING, summary=summary,
            data_budget={"methods": ["4_refit_atomref"], "fractions": [0.25, 0.5]},
        )
