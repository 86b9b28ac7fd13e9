"""Table 1, Fig. 3b/c, Figs. 5 and 6 and the Ge stability figure, read back from the figure objects."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
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


def test_scaling_figure_draws_each_fit_over_its_fitted_sizes():
    """Fig. 6's fitted lines are the power laws of summarize(), drawn over the fitted sizes only
    (from the threshold up), with the untrained level as a labelled horizontal line."""
    from mlip_transfer.plots.benchmarks import plot_scaling_law
    from mlip_transfer.scaling.laws import PowerLawFit, summarize

    rows = []
    for method, prefactor, slope in (("1_scratch", 900.0, -0.6), ("4_refit_atomref", 300.0, -0.3)):
        for size in (10, 100, 1000):
            for seed, noise in enumerate((0.98, 1.02)):
                mae = prefactor * size**slope * noise
                rows.append({"method": method, "size": size, "seed": seed,
                             "energy_mae_mev_per_atom": mae, "force_mae_mev_per_a": 2 * mae})
    rows.append({"method": "4_refit_atomref", "size": 0, "seed": 0,
                 "energy_mae_mev_per_atom": 400.0, "force_mae_mev_per_a": 800.0})
    results = pd.DataFrame(rows)
    fits = summarize(results, scratch_method="1_scratch", transfer_methods=["4_refit_atomref"],
                     threshold=100)
    fits["flags"] = [{"target": "energy", "size": 10, "code": "indistinguishable", "message": ""}]
    drawn = _drawn(plot_scaling_law(results, fits, source=SURROGATE_DEFAULT))
    assert "[flagged] indistinguishable within the seeds' spread at: energy n=10" in drawn["texts"]
    panels = drawn["axes"]
    for ax, target in zip(panels, ("energy", "force"), strict=True):
        for method in ("1_scratch", "4_refit_atomref"):
            fit = PowerLawFit(**fits["targets"][target]["fits"][method])
            (line,) = [ln for ln in ax["lines"] if ln["label"].startswith(f"{label(method)}: slope")]
            assert min(line["x"]) == pytest.approx(100) and max(line["x"]) == pytest.approx(1000)
            assert line["y"] == pytest.approx(list(fit.predict(np.asarray(line["x"]))), rel=1e-6)
        assert any("untrained (400)" in ln["label"] or "untrained (800)" in ln["label"]
                   for ln in ax["lines"])


def test_table1_figure_marks_flagged_rows_and_lists_their_flags():
    table = pd.DataFrame({
        "model": METHODS, "energy_mae_mev": [401.0, 311.8], "force_mae_mev": [89.4, 86.9],
        "decomposition_energy_mae_mev": [67.9, 70.0], "formation_energy_mae_mev": [98.8, 99.0],
        "flags": ["not trained at this budget: validation energy MAE changed 0.05 %", ""],
    })
    summary = _drawn(plot_table1(table, source=SURROGATE_DEFAULT))
    assert summary["axes"][0]["yticklabels"] == [f"{label(METHODS[0])} [flagged]", label(METHODS[1])]
    (note,) = [t for t in summary["texts"] if t.startswith("[flagged]")]
    assert note == (f"[flagged] {label(METHODS[0])}: not trained at this budget: validation "
                    "energy MAE changed 0.05 %")


def test_density_figure_marks_flagged_models_and_lists_their_flags():
    from mlip_transfer.plots.benchmarks import plot_density

    rows = [{"model": m, "system": "Cu", "density_exp": 9.0, "density_pred": 9.0 / r, "ratio": r,
             "failed": False} for m, r in zip(METHODS, (0.729, 1.01), strict=True)]
    summary = pd.DataFrame({"model": METHODS, "density_mae": [3.3, 0.1], "n_failed": [0, 0],
                            "flags": ["1 of 1 density relaxations took no step", ""]})
    drawn = _drawn(plot_density(pd.DataFrame(rows), summary, source=SURROGATE_DEFAULT,
                                reference="sol58"))
    assert drawn["axes"][0]["yticklabels"] == [label(METHODS[1]), f"{label(METHODS[0])} [flagged]"]
    assert [t for t in drawn["texts"] if t.startswith("[flagged]")] == [
        f"[flagged] {label(METHODS[0])}: 1 of 1 density relaxations took no step"]


@pytest.mark.parametrize(("structures", "words"), [("sol58", "experimental"),
                                                   ("mp_api", "MP-DFT")])
def test_density_figure_never_calls_mp_structures_experiment(structures, words):
    from mlip_transfer.plots.benchmarks import plot_density

    rows = [{"model": METHODS[0], "system": "Cu", "density_exp": 9.0, "density_pred": 9.1,
             "ratio": 9.0 / 9.1, "failed": False}]
    summary = pd.DataFrame({"model": METHODS[:1], "density_mae": [0.1], "n_failed": [0],
                            "flags": [""]})
    axes = _drawn(plot_density(pd.DataFrame(rows), summary, source=SURROGATE_DEFAULT,
                               reference=structures))["axes"]
    labels = [ax["xlabel"] for ax in axes[:2]]
    assert all(label.startswith(words) for label in labels)
    assert ("experimental" in " ".join(labels)) == (structures == "sol58")
