"""The scaling_fit job: points collected into the table, fits written with the data source."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from test_scaling import power_law_rows

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.scaling.jobs import scaling_fit


def test_scaling_fit_job_writes_table_and_fits(tmp_path):
    rng = np.random.default_rng(0)
    rows = power_law_rows("1_scratch", -0.6, 2000.0, [100, 1000], [0], 0.0, rng) + power_law_rows(
        "4_refit_atomref", -0.3, 200.0, [100, 1000], [0], 0.0, rng
    )
    paths = []
    for index, row in enumerate(rows):
        paths.append(tmp_path / f"result{index}.json")
        paths[-1].write_text(json.dumps(row))
    provenance = SURROGATE_DEFAULT.write(tmp_path / "data")
    summary = scaling_fit(
        results=paths, provenance=provenance, table=tmp_path / "table.csv",
        fits=tmp_path / "fits.json",
        scaling={"methods": ["1_scratch", "4_refit_atomref"], "fit_threshold": 100},
    )
    assert len(pd.read_csv(tmp_path / "table.csv")) == len(rows)
    assert json.loads((tmp_path / "fits.json").read_text())["data_source"] == "surrogate-default"
    assert summary["data_source"] == "surrogate-default" and set(summary["targets"])


def test_seed_spread_flags_name_the_sizes_where_methods_overlap():
    from mlip_transfer.scaling.jobs import seed_spread_flags

    rows = []
    for method, by_size in (("1_scratch", {10: (100.0, 120.0), 100: (50.0, 52.0)}),
                            ("4_refit_atomref", {10: (110.0, 115.0), 100: (20.0, 21.0)})):
        for size, values in by_size.items():
            for seed, value in enumerate(values):
                rows.append({"method": method, "size": size, "seed": seed,
                             "energy_mae_mev_per_atom": value, "force_mae_mev_per_a": value})
    rows.append({"method": "4_refit_atomref", "size": 0, "seed": 0,
                 "energy_mae_mev_per_atom": 400.0, "force_mae_mev_per_a": 400.0})
    raised = seed_spread_flags(pd.DataFrame(rows), scratch="1_scratch",
                               transfer=["4_refit_atomref"])
    assert [(f["size"], f["target"]) for f in raised] == [(10, "energy"), (10, "force")]
    assert all(f["code"] == "indistinguishable" for f in raised)
    assert "within the seeds' spread 20" in raised[0]["message"]


def test_learning_curve_summary_reads_the_steps_table(tmp_path):
    from mlip_transfer.scaling.jobs import _learning_curve

    path = tmp_path / "steps.csv"
    pd.DataFrame({"step": range(1, 9), "loss": [8, 7, 6, 5, 4, 3, 2, 1.0]}).to_csv(path, index=False)
    assert _learning_curve(path) == {"steps_taken": 8, "train_loss_start": 7.0, "train_loss_end": 2.0}
    # The zero point trains nothing.
    assert _learning_curve(None) == {"steps_taken": 0, "train_loss_start": None, "train_loss_end": None}
