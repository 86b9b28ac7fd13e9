"""Table 1, Fig. 3b/c and the Ge stability figure, read back from the figure objects."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.plots.elements import plot_stability
from mlip_transfer.plots.figure_data import figure_summary
from mlip_transfer.plots.transfer import label, plot_energy_mae, plot_table1

METHODS = ["3_frozen_gga_atomref", "4_refit_atomref"]


def _drawn(fig):
    summary = figure_summary(fig)
    plt.close(fig)
    return summary


def test_table1_bars_are_the_table_values_per_model():
    table = pd.DataFrame({
        "model": METHODS,
        "energy_mae_mev": [15782.0, 311.8],
        "force_mae_mev": [89.4, 86.9],
        "decomposition_energy_mae_mev": [67.9, float("nan")],
        "formation_energy_mae_mev": [98.8, 134.7],
    })
    panels = _drawn(plot_table1(table, source=SURROGATE_DEFAULT))["axes"]
    assert [ax["title"] for ax in panels] == [
        "energy MAE (meV/atom)", "force MAE (meV/Å)",
        "decomposition-energy MAE (meV/atom)", "formation-energy MAE (meV/atom)",
    ]
    assert panels[0]["yticklabels"] == [label(m) for m in METHODS]
    for ax, column in zip(panels, table.columns[1:], strict=True):
        (bars,) = ax["bars"]
        assert bars["orientation"] == "horizontal" and bars["positions"] == [0.0, 1.0]
        assert bars["heights"] == pytest.approx(list(table[column]), nan_ok=True)
    assert panels[0]["texts"] == [" 1.58e+04", " 312"]
    assert panels[2]["texts"] == [" 67.9"]  # no label on a missing value


def test_energy_mae_lines_are_the_validation_history_in_mev():
    rows = []
    for method, errors in zip(METHODS, ([0.5, 0.3, 0.2], [0.05, 0.02, 0.03]), strict=True):
        for epoch, error in enumerate(errors):
            rows.append({"method": method, "epoch": epoch, "split": "val", "energy_mae": error})
            rows.append({"method": method, "epoch": epoch, "split": "train", "energy_mae": 9.0})
    paper, every = _drawn(plot_energy_mae(pd.DataFrame(rows), source=SURROGATE_DEFAULT))["axes"]
    assert paper["ylabel"] == every["ylabel"] == "validation energy MAE (meV/atom)"
    lines = {line["label"]: line for line in every["lines"]}
    assert lines[f"{label(METHODS[0])} (best 200.0)"]["y"] == pytest.approx([500.0, 300.0, 200.0])
    assert lines[f"{label(METHODS[1])} (best 20.0)"]["y"] == pytest.approx([50.0, 20.0, 30.0])
    assert all(line["x"] == [0.0, 1.0, 2.0] for line in lines.values())
    assert paper["lines"] == every["lines"]


def test_stability_bars_stack_the_runs_by_outcome():
    stability = [
        {"method": "scratch", "runs": 4, "stable": 1, "nan": 2, "overlap": 0, "runaway": 1},
        {"method": "transfer", "runs": 4, "stable": 4, "nan": 0, "overlap": 0, "runaway": 0},
    ]
    settings = {"runs": 4, "duration_ps": 0.5, "temperature": 1200, "train_size": 2}
    fig = plot_stability({"stability": stability, "stability_settings": settings}, source=SURROGATE_DEFAULT)
    (ax,) = _drawn(fig)["axes"]
    bars = {b["label"]: b["heights"] for b in ax["bars"]}
    assert bars == {"stable": [1.0, 4.0], "unstable: nan": [2.0, 0.0],
                    "unstable: overlap": [0.0, 0.0], "unstable: runaway": [1.0, 0.0]}
    assert ax["texts"] == ["1/4 stable", "4/4 stable"] and ax["ylabel"] == "NVT runs"
    assert ax["title"].startswith("MD stability: 4 runs of 0.5 ps per method at 1200 K")
    assert ax["ylim"] == pytest.approx([0.0, 4 * 1.2])
