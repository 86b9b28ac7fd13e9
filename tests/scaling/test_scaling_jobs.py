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
