"""The Table 1 job: metrics files in, CSV and markdown (data banner, training sentence) out."""

import json

import pandas as pd

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.transfer.jobs import table1

TRAINING = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "final_learning_rate": 1e-5,
            "criterion": "Huber", "loss_ratios": [3, 1, 0.1, 1], "max_train_frames": None}


def test_table1_job_writes_csv_and_markdown(tmp_path):
    paths = []
    for label, row in (("4_refit_atomref", "method4"), ("4r_residual_atomref", None)):
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps({"model": label, "paper_row": row, "energy_mae_mev": 20.0}))
        paths.append(path)
    SURROGATE_DEFAULT.write(tmp_path / "data")
    table = table1(metrics=paths, provenance=tmp_path / "data/provenance.json",
                   training=TRAINING, out_csv=tmp_path / "t.csv", out_markdown=tmp_path / "t.md")
    assert list(table["model"]) == ["4_refit_atomref", "4r_residual_atomref"]
    assert pd.read_csv(tmp_path / "t.csv")["paper_row"].tolist()[0] == "method4"
    lines = (tmp_path / "t.md").read_text().splitlines()
    assert lines[0] == "# Table 1: test-split errors and stability of each model"
    assert lines[2].startswith(f"**{SURROGATE_DEFAULT.banner}.**")
    assert lines[4] == (
        "Training: 1 epochs, batch 8, lr 0.001 cosine to 1e-05, loss Huber [3, 1, 0.1, 1], "
        "every training frame (scaled down from the paper's 50 epochs, batch 64)."
    )


def test_table1_flags_models_that_training_or_relaxation_did_not_change(tmp_path):
    """M1's validation energy 0.401 -> 0.4008 eV/atom (0.05 %) is flagged, M4's 2.76 -> 2.72
    (1.5 %) is not; a reference model without a history gets only its relaxation flag."""
    histories, paths = [], []
    for method, energies, forces in (("1_scratch", (0.401, 0.4008), (0.100, 0.0999)),
                                     ("4_refit_atomref", (2.7578, 2.7175), (0.114, 0.097))):
        folder = tmp_path / "training" / method
        folder.mkdir(parents=True)
        pd.DataFrame({"epoch": [0, 1, 1], "split": ["val", "train", "val"],
                      "energy_mae": [energies[0], 1.0, energies[1]],
                      "force_mae": [forces[0], 1.0, forces[1]]}).to_csv(folder / "history.csv")
        histories.append(folder / "history.csv")
    for label, idle in (("1_scratch", 0), ("4_refit_atomref", 0), ("pretrained_gga", 2)):
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps({"model": label, "energy_mae_mev": 20.0, "n_relaxed": 9,
                                    "n_relaxations_without_step": idle}))
        paths.append(path)
    SURROGATE_DEFAULT.write(tmp_path / "data")
    table = table1(metrics=paths, provenance=tmp_path / "data/provenance.json", training=TRAINING,
                   out_csv=tmp_path / "t.csv", out_markdown=tmp_path / "t.md", histories=histories)
    flags = table.set_index("model")["flags"]
    assert flags["1_scratch"] == (
        "not trained at this budget: validation energy MAE changed 0.05 % (0.401 → 0.4008 "
        "eV/atom); not trained at this budget: validation force MAE changed 0.10 % (0.1 → "
        "0.0999 eV/Å)"
    )
    assert flags["4_refit_atomref"] == ""
    assert flags["pretrained_gga"].startswith("2 of 9 test relaxations took no step")
    assert pd.read_csv(tmp_path / "t.csv", keep_default_na=False)["flags"].tolist() == list(flags)
    markdown = (tmp_path / "t.md").read_text()
    assert "| Flags |" in markdown and "not trained at this budget" in markdown


def _retention_report(model, *, lost, stable, force=30.0):
    return {
        "model": model, "source_model": "0.3.0",
        "source_labels": {"energy_mae_mev": 9000.0, "relative_energy_mae_mev": 4.0,
                          "force_mae_mev": force, "n_frames": 100, "n_materials": 30},
        "source_frames": None,
        "dimers": {"n_elements": 12, "n_lost": lost, "lost": {}, "walls": []},
        "nvt": {"n_runs": 2, "n_stable": stable},
        "reference": {"source_functional": "gga", "label_change": {
            "relative_energy_mae_mev": 8.7, "force_mae_mev": 141.4}},
        "settings": {"dimers": {"r_min": 0.6, "r_max": 3.0, "min_wall_ev": 1.0,
                                "min_wall_ratio": 0.5},
                     "nvt": {"structures": 2, "steps": 150, "timestep_fs": 1.0,
                             "temperature": 1000}},
    }  # fmt: skip


def test_table1_gains_the_retention_columns_of_models_with_a_report(tmp_path):
    """Issue 18: a model's retention report fills its row's columns (a report of a model without
    a row adds no row); the markdown shows walls lost n/N, NVT stable n/N and the reference."""
    paths, reports = [], []
    for label in ("1_scratch", "4_refit_atomref"):
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps({"model": label, "energy_mae_mev": 20.0}))
        paths.append(path)
    for model, lost, stable in (("1_scratch", 5, 0), ("4_refit_atomref", 0, 2), ("other", 1, 1)):
        path = tmp_path / f"{model}_retention.json"
        path.write_text(json.dumps(_retention_report(model, lost=lost, stable=stable)))
        reports.append(path)
    SURROGATE_DEFAULT.write(tmp_path / "data")
    table = table1(metrics=paths, provenance=tmp_path / "data/provenance.json", training=TRAINING,
                   out_csv=tmp_path / "t.csv", out_markdown=tmp_path / "t.md", retention=reports)
    assert list(table["model"]) == ["1_scratch", "4_refit_atomref"]
    rows = pd.read_csv(tmp_path / "t.csv").set_index("model")
    assert rows.loc["1_scratch", "dimer_walls_lost"] == 5 and rows.loc["1_scratch", "nvt_stable"] == 0
    assert rows.loc["4_refit_atomref", "source_relative_energy_mae_mev"] == 4.0
    assert rows["source_frames_force_mae_mev"].isna().all()
    markdown = (tmp_path / "t.md").read_text()
    assert "| Dimer walls lost | NVT stable | Flags |" in markdown
    assert "| 4.00 | 30.00 | 5/12 | 0/2 |" in markdown and "| 0/12 | 2/2 |" in markdown
    assert "differ from the source model's by 8.7 meV/atom (relative) and 141.4 meV/Å" in markdown
    # Without reports the table keeps its columns but the markdown shows none of them.
    table1(metrics=paths, provenance=tmp_path / "data/provenance.json", training=TRAINING,
           out_csv=tmp_path / "u.csv", out_markdown=tmp_path / "u.md")
    assert "Dimer walls" not in (tmp_path / "u.md").read_text()
