"""Checks of a workflow run's figures against the tables they were drawn from.

Each figure ``<stem>.png`` has ``<stem>.json`` beside it, what the figure drew
(``mlip_transfer.plots.figure_data.figure_summary``): the checks compare its plotted numbers,
labels and counts with the run's CSV/JSON outputs, so a figure that drew the wrong column, lost
points or mislabelled a panel fails.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Element

SYMBOLS = {Element.from_Z(z).symbol for z in range(1, 119)}


def figure_data(out: Path, stem: str) -> dict:
    """The summary of figure ``stem`` of the run in ``out``; the image must be there too."""
    assert (out / "figures" / f"{stem}.png").is_file(), stem
    return json.loads((out / "figures" / f"{stem}.json").read_text())


def cell_labels(axes: dict) -> dict[str, str]:
    """Element symbol -> value label of a periodic-table heatmap's axes summary."""
    texts = axes["texts"]
    return {
        text: label
        for text, label in itertools.pairwise(texts)
        if text in SYMBOLS and re.fullmatch(r"(<|[-−])?[\d.]+[kM]?", label)
    }


def offsets(axes: dict, index: int = 0) -> np.ndarray:
    """The (x, y) points of the ``index``-th scatter collection of an axes summary."""
    return np.array(axes["scatter"][index]["offsets"], dtype=float).reshape(-1, 2)


def lines_by_label(axes: dict) -> dict[str, dict]:
    return {line["label"]: line for line in axes["lines"]}


def check_data_figures(out: Path) -> None:
    """dataset_summary and dataset_elements against dataset_statistics.json."""
    stats = json.loads((out / "data" / "dataset_statistics.json").read_text())
    split = stats["materials_per_split"]
    summary = figure_data(out, "dataset_summary")
    assert summary["suptitle"] == (
        f"{stats['materials']} materials, {stats['frames']} frames; split by material: "
        f"train {split['train']}, val {split['val']}, test {split['test']}"
    )
    per_material, energies, _ = summary["axes"]
    assert per_material["xlabel"] == "frames per material"
    # One histogram per functional: each counts every material once, every frame once.
    for bars in per_material["bars"]:
        assert sum(bars["heights"]) == stats["materials"]
    assert sum(sum(bars["heights"]) for bars in energies["bars"]) == stats["frames"]
    elements = figure_data(out, "dataset_elements")
    (table,) = elements["axes"]
    assert table["title"] == f"Element occurrence: {stats['elements']} elements"
    assert set(cell_labels(table)) == set(stats["element_symbols"])


def check_energy_scale_figures(out: Path) -> None:
    """Figs. 1a-d, 2a-b and the MatPES check against the energy-scale tables."""
    from mlip_transfer.data.summary import frame_table
    from mlip_transfer.plots.energy_scale import structure_element_counts
    from mlip_transfer.plots.periodic_table import compact_number

    energy = out / "energy_scale"
    counts = structure_element_counts(frame_table(out / "data" / "frames.jsonl.gz"), "r2scan")
    (occurrence,) = figure_data(out, "fig1a_element_occurrence")["axes"]
    assert f"{len(counts)} elements" in occurrence["title"]
    assert cell_labels(occurrence) == {el: compact_number(n) for el, n in counts.items()}

    referenced = pd.read_csv(energy / "referenced_energies.csv")
    correlation = json.loads((energy / "correlation.json").read_text())["refit"]
    raw = figure_data(out, "fig1b_relaxed_energies")["axes"][0]
    np.testing.assert_allclose(offsets(raw), referenced[["raw_r2scan", "raw_gga"]].to_numpy())
    assert f"Pearson ρ = {correlation['raw']['rho']:.3f}" in raw["texts"][0]
    fig2b = figure_data(out, "fig2b_referenced_energies")["axes"]
    for ax, kind in ((fig2b[0], "raw"), (fig2b[3], "scaled")):
        columns = [f"{kind}_r2scan", f"{kind}_gga"]
        np.testing.assert_allclose(offsets(ax), referenced[columns].to_numpy())
        assert ax["texts"][0].startswith(f"ρ = {correlation[kind]['rho']:.3f}")

    atomrefs = pd.read_csv(energy / "atomrefs.csv")
    lines = lines_by_label(figure_data(out, "fig2a_atomrefs")["axes"][0])
    for functional, name in (("gga", "GGA/GGA+U"), ("r2scan", "r2SCAN")):
        refit = atomrefs.query(f"functional == '{functional}' and kind == 'refit'")
        (line,) = [v for k, v in lines.items() if k.startswith(f"{name}, refit")]
        y = pd.Series(line["y"], index=np.array(line["x"]).astype(int), dtype=float)
        np.testing.assert_allclose(y[refit["Z"]], refit["energy"])
        assert y.drop(refit["Z"]).isna().all()

    importance = pd.read_csv(energy / "element_importance.csv")
    panels = figure_data(out, "fig1cd_element_importance")["axes"]
    for ax, corrected in zip(panels[:2], (True, False), strict=True):
        rows = importance[importance["corrections"].astype(str) == str(corrected)]
        assert set(cell_labels(ax)) == set(rows["element"]), corrected

    matpes = pd.read_csv(energy / "matpes_shift.csv")
    agreement = json.loads((energy / "matpes_shift.json").read_text())
    shift = figure_data(out, "matpes_shift_check")["axes"][0]
    for index, kind in enumerate(("refit", "shipped")):
        both = matpes[["matpes_shift", f"{kind}_shift"]].dropna()
        assert shift["scatter"][index]["n_points"] == agreement[kind]["n"] == len(both)
        np.testing.assert_allclose(offsets(shift, index), both.to_numpy())


TABLE1_PANELS = (
    "energy_mae_mev", "force_mae_mev", "decomposition_energy_mae_mev", "formation_energy_mae_mev"
)


def check_transfer_figures(out: Path) -> None:
    """Table 1 and Figs. 3a-c against table1.csv and each method's training tables."""
    from mlip_transfer.plots.transfer import label

    table = pd.read_csv(out / "evaluation" / "table1.csv", keep_default_na=False)
    panels = figure_data(out, "table1")["axes"]
    assert panels[0]["yticklabels"] == [
        label(m) + (" [flagged]" if f else "") for m, f in zip(table["model"], table["flags"])
    ]
    notes = [t for t in figure_data(out, "table1")["texts"] if t.startswith("[flagged]")]
    assert notes == [f"[flagged] {label(m)}: {f}" for m, f in zip(table["model"], table["flags"]) if f]
    for ax, column in zip(panels, TABLE1_PANELS, strict=True):
        heights = pd.to_numeric(table[column], errors="coerce")
        np.testing.assert_allclose(ax["bars"][0]["heights"], heights, err_msg=column)

    gradients = pd.concat(pd.read_csv(p) for p in sorted((out / "training").glob("*/gradients.csv")))
    layers = figure_data(out, "fig3a_gradients")["axes"]
    assert [ax["title"] for ax in layers] == list(dict.fromkeys(gradients["layer"]))
    for ax in layers:
        lines = lines_by_label(ax)
        for method, rows in gradients[gradients["layer"] == ax["title"]].groupby("method"):
            line = lines[label(method)]
            rows = rows.sort_values("step")
            np.testing.assert_allclose(line["x"], rows["step"])
            np.testing.assert_allclose(line["y"], rows["grad_norm"])

    every = figure_data(out, "fig3bc_energy_mae")["axes"][1]
    # Trained rows have a history; step-0, reference and zero-shot rows have none.
    for method in table.loc[table["stage"] == "trained", "model"]:
        history = pd.read_csv(out / "training" / method / "history.csv").query("split == 'val'")
        (line,) = [v for k, v in lines_by_label(every).items() if k.startswith(label(method))]
        np.testing.assert_allclose(line["x"], history["epoch"])
        np.testing.assert_allclose(line["y"], 1000 * history["energy_mae"])


def check_scaling_figure(out: Path) -> None:
    """Fig. 6: every trained (size, MAE) point of scaling_results.csv and the untrained level."""
    results = pd.read_csv(out / "scaling" / "scaling_results.csv")
    panels = figure_data(out, "fig6_scaling_law")["axes"]
    targets = (("energy_mae_mev_per_atom", "energy"), ("force_mae_mev_per_a", "force"))
    for ax, (column, name) in zip(panels, targets, strict=True):
        assert name in ax["title"] and ax["xlabel"].startswith("training frames")
        steps = sorted(results.loc[results["size"] > 0, "steps"].unique())
        if len(steps) == 1:  # every job the same steps: the label says so
            assert f"compute-matched: {steps[0]} optimiser step" in ax["xlabel"], ax["xlabel"]
        drawn = np.concatenate([offsets(ax, i) for i in range(len(ax["scatter"]))])
        trained = results[results["size"] > 0]
        expected = trained[["size", column]].to_numpy()
        np.testing.assert_allclose(drawn[np.lexsort(drawn.T)], expected[np.lexsort(expected.T)])
        (zero,) = results.loc[results["size"] == 0, column]
        (level,) = [v for k, v in lines_by_label(ax).items() if "untrained" in k]
        np.testing.assert_allclose(level["y"], zero)


def check_density_figure(out: Path) -> None:
    """Fig. 5b: each model's (experimental, predicted) density of every solid."""
    from mlip_transfer.plots.transfer import label

    density = pd.read_csv(out / "density" / "density_all.csv")
    scatter = figure_data(out, "fig5_density")["axes"][1]
    assert scatter["xlabel"].startswith("experimental density")
    by_label = {c["label"]: i for i, c in enumerate(scatter["scatter"])}
    assert set(by_label) == {label(m) for m in density["model"]}
    for model, rows in density.groupby("model"):
        points = offsets(scatter, by_label[label(model)])
        np.testing.assert_allclose(points, rows[["density_exp", "density_pred"]].to_numpy())


def _line_values(ax: dict) -> set[tuple[float, ...]]:
    """The y arrays of an axes' lines, rounded, as a set (error bars repeat their line's data)."""
    return {tuple(np.round(line["y"], 6)) for line in ax["lines"] if not line["label"].startswith("_child")}


def check_elements_figures(out: Path) -> None:
    """The four Si -> Ge figures against the tables of elements/results."""
    results = out / "elements" / "results"
    efficiency = pd.read_csv(results / "data_efficiency.csv")
    temperature = pd.read_csv(results / "temperature.csv")
    columns = ("force_mae_mev_per_a_mean", "energy_mae_mev_per_atom_mean")
    panels = figure_data(out, "elements_data_efficiency")["axes"]
    for ax, column in zip(panels, columns, strict=True):
        assert ax["xlabel"] == "Ge training frames"
        expected = {tuple(np.round(rows.sort_values("size")[column], 6)) for _, rows in efficiency.groupby("method")}
        assert _line_values(ax) == expected, column
    panels = figure_data(out, "elements_temperature")["axes"]
    for ax, column in zip(panels, columns, strict=True):
        assert ax["xlabel"] == "test temperature (K)"
        expected = {
            tuple(np.round(rows.sort_values("temperature")[column], 6))
            for _, rows in temperature.groupby(["method", "size"])
        }
        assert _line_values(ax) == expected, column

    summary = json.loads((results / "stability_structure.json").read_text())
    stability = pd.DataFrame(summary["stability"]).set_index("method")
    (ax,) = figure_data(out, "elements_stability")["axes"]
    bars = {b["label"]: b["heights"] for b in ax["bars"]}
    assert bars["stable"] == list(stability["stable"].astype(float))
    for reason in ("nan", "overlap", "runaway"):
        assert bars[f"unstable: {reason}"] == list(stability[reason].astype(float))
    assert ax["texts"] == [f"{row.stable}/{row.runs} stable" for row in stability.itertuples()]

    curves = pd.read_csv(results / "structure_curves.csv")
    rdf, adf = figure_data(out, "elements_structure")["axes"]
    for ax, kind in ((rdf, "rdf"), (adf, "adf")):
        drawn = [line for line in ax["lines"] if "frames" in line["label"]]
        assert len(drawn) == curves["method"].nunique()
        for line, (_, rows) in zip(drawn, curves[curves["kind"] == kind].groupby("method", sort=False), strict=True):
            np.testing.assert_allclose(line["x"], rows["x"])
            np.testing.assert_allclose(line["y"], rows["y"])
    # The legend gives each model's frame count and its difference from the reference curve.
    for method, info in summary["structure"].items():
        for ax, kind in ((rdf, "rdf"), (adf, "adf")):
            tail = "" if method == "stillinger-weber" else f", ∫|Δ| = {info[f'{kind}_difference']:.3g}"
            assert any(f"({info['frames']} frames{tail})" in line["label"] for line in ax["lines"]), method


def check_teacher_figure(out: Path) -> None:
    """The teacher comparison: each teacher's bars are its per-element errors against MatPES
    r2SCAN (floored for the log axis) and the teacher-pair differences per element."""
    from mlip_transfer.plots.teachers import FLOOR

    matpes = pd.read_csv(out / "teachers" / "r2scan_vs_matpes.csv")
    pairs = pd.read_csv(out / "teachers" / "teacher_pair_elements.csv")
    pairs = pairs[(pairs["a"] != "labels") & (pairs["b"] != "labels")]
    summary = json.loads((out / "teachers" / "teacher_accuracy.json").read_text())
    panels = figure_data(out, "teacher_comparison")["axes"]
    order = panels[0]["xticklabels"]
    counted = matpes[matpes["skipped"].isna()]
    assert {bar["label"].split(":")[0] for bar in panels[0]["bars"]} == set(counted["teacher"])
    for bar in panels[0]["bars"]:
        teacher = bar["label"].split(":")[0]
        mae = summary["r2scan_vs_matpes"]["teachers"][teacher]["mae"]
        assert f"MAE {mae:.3f}" in bar["label"]
        errors = counted[counted["teacher"] == teacher].set_index("element")["abs_error"]
        expected = np.maximum(errors.reindex(order).to_numpy(dtype=float), FLOOR["energy_ev"])
        np.testing.assert_allclose(bar["heights"], expected, rtol=1e-6)
    for ax, column, floor in ((panels[1], "energy_mae", "energy_mev"),
                              (panels[2], "force_mae", "force")):
        (bar,) = ax["bars"]  # one pair of r2SCAN teachers
        values = pairs.set_index("element")[column].reindex(ax["xticklabels"])
        np.testing.assert_allclose(bar["heights"], np.maximum(values, FLOOR[floor]), rtol=1e-6)


def check_ablation_outputs(out: Path, *, training: dict, ablation: dict) -> None:
    """The gradient ablation: every static setting at the GGA AtomRef, the settings that reach
    the paper's ratio are exactly those flagged so, the baseline is the trainings' own setting,
    and the figure's title is the computed sentence."""
    summary = json.loads((out / "gradient_ablation" / "ablation.json").read_text())
    ratios = pd.DataFrame(summary["ratios"])
    static = ratios[(ratios["part"] == "static") & (ratios["atomref"] == "gga")]
    # 3 losses x 2 loss terms x batch sizes x 3 statistics, each once.
    assert len(static) == 3 * 2 * len(ablation["batch_sizes"]) * 3
    assert not static.duplicated(["loss", "terms", "batch_size", "statistic"]).any()
    assert set(static["batch_size"]) == set(ablation["batch_sizes"])
    reaching = static[static["paper_ratio_on_every_layer"]]
    assert len(summary["reaching"]) == len(reaching)
    assert all((static["min_ratio"] >= 10) == static["paper_ratio_on_every_layer"])
    baseline = summary["baseline"]
    assert baseline["batch_size"] == training["batch_size"] and baseline["terms"] == "full"
    assert f"{baseline['median_ratio']:.1f}x" in summary["sentence"]
    assert set(summary["dynamic"]) == {"huber_0.1", "huber_1", "mse"}
    drawn = figure_data(out, "fig3a_ablation")
    assert len(drawn["axes"]) == 3
    assert " ".join(drawn["suptitle"].split()) == " ".join(summary["sentence"].split())


def check_data_budget_figure(out: Path) -> None:
    """The data-budget figure: every point job's (size, MAE), each fitted line ending at the
    estimate at N_full, and the measured full-size MAE where the run trained the method."""
    from mlip_transfer.plots.transfer import label

    points = pd.read_csv(out / "data_budget" / "data_budget_points.csv")
    summary = json.loads((out / "data_budget" / "data_budget.json").read_text())
    panels = figure_data(out, "data_budget")["axes"]
    targets = (("energy_mae_mev_per_atom", "energy"), ("force_mae_mev_per_a", "force"))
    for ax, (column, name) in zip(panels, targets, strict=True):
        assert name in ax["title"] and "prediction band" in ax["title"]
        drawn = np.concatenate([offsets(ax, i) for i in range(len(ax["scatter"]))])
        expected = points[["size", column]].to_numpy(float)
        np.testing.assert_allclose(drawn[np.lexsort(drawn.T)], expected[np.lexsort(expected.T)])
        lines = lines_by_label(ax)
        for method, row in summary["targets"][name]["estimates"].items():
            (fit,) = [v for k, v in lines.items() if k.startswith(f"{label(method)}: slope")]
            assert fit["x"][-1] == pytest.approx(summary["n_full"])
            assert fit["y"][-1] == pytest.approx(row["predicted"])
            if row["measured"] is not None:
                (star,) = [v for k, v in lines.items() if k.strip() == f"measured at N_full {row['measured']:.4g}"]
                assert star["y"] == pytest.approx([row["measured"]])
