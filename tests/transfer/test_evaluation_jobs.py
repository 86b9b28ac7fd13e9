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
