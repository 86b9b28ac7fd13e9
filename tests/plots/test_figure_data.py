"""figure_summary: what a figure draws, read back from the figure object."""

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from mlip_transfer.plots.figure_data import figure_summary
from mlip_transfer.plots.style import save_figure


def test_summary_records_labels_limits_and_each_kind_of_data(tmp_path):
    fig, (left, right) = plt.subplots(1, 2)
    left.plot([1, 2, 3], [4.0, float("nan"), 6.0], label="line")
    left.scatter([0.5, 1.5], [1.0, 2.0], label="points")
    left.set(xlabel="x (Å)", ylabel="y (eV)", xlim=(0, 4), ylim=(-1, 7))
    left.set_title("a  left", loc="left")
    right.bar(["Si", "Ge"], [3, 5], label="bars")
    right.barh([0, 1], [2.5, 1.5])
    right.imshow([[1.0, 2.0], [3.0, float("nan")]])
    right.text(0, 0, "note")
    fig.suptitle("both")
    save_figure(fig, tmp_path / "fig", ["png"], dpi=40)
    saved = json.loads((tmp_path / "fig.json").read_text())
    a, b = saved["axes"]
    assert (a["title"], a["xlabel"], a["ylabel"]) == ("a  left", "x (Å)", "y (eV)")
    assert a["xlim"] == [0.0, 4.0] and a["ylim"] == [-1.0, 7.0]
    assert a["lines"] == [{"label": "line", "x": [1.0, 2.0, 3.0], "y": [4.0, None, 6.0]}]
    assert a["scatter"] == [{"label": "points", "n_points": 2, "offsets": [[0.5, 1.0], [1.5, 2.0]]}]
    vertical, horizontal = b["bars"]
    assert vertical["label"] == "bars" and vertical["heights"] == [3.0, 5.0]
    assert vertical["positions"] == [0.0, 1.0] and b["xticklabels"][:2] == ["Si", "Ge"]
    assert horizontal["orientation"] == "horizontal" and horizontal["heights"] == [2.5, 1.5]
    assert b["images"] == [{"shape": [2, 2], "min": 1.0, "max": 3.0}]
    assert b["texts"] == ["note"] and saved["suptitle"] == "both"


def test_summary_of_an_unsaved_figure_keeps_nan():
    fig, ax = plt.subplots()
    ax.plot([0.0], [float("nan")])
    (line,) = figure_summary(fig)["axes"][0]["lines"]
    assert math.isnan(line["y"][0])  # save_figure writes it as null
    plt.close(fig)
