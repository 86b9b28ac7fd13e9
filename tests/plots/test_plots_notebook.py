"""The one set-up call of the figure notebooks: paths, the data-source banner, saving figures."""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.plots.notebook import FigureNotebook, setup


def test_setup_reads_the_source_and_saves_each_format(tmp_path):
    data = tmp_path / "data"
    SURROGATE_DEFAULT.write(data)
    nb = setup(
        data_dir=str(data), energy_dir="somewhere/energy", figure_dir=str(tmp_path / "figures"),
        formats="png,pdf,", dpi="60", show=False,
    )
    assert nb.source == SURROGATE_DEFAULT
    assert nb.data_dir == data and nb.energy_dir.name == "energy"
    assert nb.formats == ("png", "pdf") and nb.dpi == 60
    fig, ax = plt.subplots()
    ax.plot([0, 1], [2, 3], label="line")
    assert nb.save(fig, "one") is fig  # a cell ending in nb.save(...) still shows it
    figures = tmp_path / "figures"
    assert sorted(p.name for p in figures.iterdir()) == ["one.json", "one.pdf", "one.png"]
    (drawn,) = json.loads((figures / "one.json").read_text())["axes"]
    assert drawn["lines"] == [{"label": "line", "x": [0.0, 1.0], "y": [2.0, 3.0]}]
    with pytest.raises(AttributeError):
        nb.results_dir


def test_banner_names_the_data_its_caveat_and_a_note():
    nb = FigureNotebook(source=SURROGATE_DEFAULT, figure_dir=".", formats=("png",), dpi=60)
    banner = nb.banner("*Scale:* tiny")
    assert banner.startswith(f"**{SURROGATE_DEFAULT.banner}.**")
    assert f"*Caveat:* {SURROGATE_DEFAULT.caveat}" in banner and banner.endswith("*Scale:* tiny")


def test_a_notebook_without_formats_is_refused():
    with pytest.raises(ValueError, match="at least one figure format"):
        FigureNotebook(source=SURROGATE_DEFAULT, figure_dir=".", formats=(), dpi=60)
