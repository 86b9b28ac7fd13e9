"""Figures of the transfer methods: Fig. 3a (first-epoch gradients), Fig. 3b/c (energy MAE per
epoch) and a graphical Table 1."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.style import stamp_source
from mlip_transfer.transfer.step0 import STEP0_SUFFIX

METHOD_LABELS = {
    "1_scratch": "M1 scratch",
    "2_trainable_gga_atomref": "M2 TL, trainable GGA AtomRef",
    "3_frozen_gga_atomref": "M3 TL, frozen GGA AtomRef",
    "4_refit_atomref": "M4 TL, refit AtomRef",
    "4r_residual_atomref": "M4r TL, residual-shift AtomRef",
    "pretrained_gga": "CHGNet v0.3.0 (GGA, no training)",
    "r2scan_reference": "CHGNet r2scan (the paper's M4 weights)",
    "source_model": "source model (no training)",
    "zero_shot_r2scan_atomref": "v0.3.0 + MP-r2SCAN AtomRef (zero-shot)",
}
# Okabe-Ito, colourblind safe.
METHOD_COLORS = {
    "1_scratch": "#000000",
    "2_trainable_gga_atomref": "#E69F00",
    "3_frozen_gga_atomref": "#D55E00",
    "4_refit_atomref": "#0072B2",
    "4r_residual_atomref": "#009E73",
    "pretrained_gga": "#999999",
    "r2scan_reference": "#CC79A7",
}


def load_histories(training_dir: str | Path) -> pd.DataFrame:
    """Every method's ``history.csv`` under ``training_dir``, with a ``method`` column."""
    paths = sorted(Path(training_dir).glob("*/history.csv"))
    return pd.concat([pd.read_csv(path).assign(method=path.parent.name) for path in paths], ignore_index=True)


def load_gradients(training_dir: str | Path) -> pd.DataFrame:
    """Every method's ``gradients.csv`` (Fig. 3a's window) under ``training_dir``, stacked."""
    paths = sorted(Path(training_dir).glob("*/gradients.csv"))
    return pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)


def label(method: str) -> str:
    """Short label of a model (``M4``; ``M4 @ step 0`` for its before-training row)."""
    if method.endswith(STEP0_SUFFIX):
        return f"{label(method.removesuffix(STEP0_SUFFIX))} @ step 0"
    return METHOD_LABELS.get(method, method)


def _color(model: str) -> str:
    return METHOD_COLORS.get(model.removesuffix(STEP0_SUFFIX), "#777777")


def gradient_ratio(gradients: pd.DataFrame, numerator: str, denominator: str) -> pd.Series:
    """Median over the recorded steps of grad-norm(numerator) / grad-norm(denominator), per layer."""
    wide = gradients.pivot_table(index=["layer", "step"], columns="method", values="grad_norm")
    ratio = (wide[numerator] / wide[denominator]).groupby(level="layer").median()
    return ratio.sort_values(ascending=False)


def _epoch_boundaries(rows: pd.DataFrame) -> list[float]:
    """Optimiser steps after which an epoch ended, within the recorded window."""
    if "epoch" not in rows or rows.empty:
        return []
    last = rows.groupby("epoch")["step"].max().sort_index()
    return [float(step) + 0.5 for step in last.iloc[:-1]]


def plot_gradients(gradients: pd.DataFrame, *, source: DataSource, methods=("3_frozen_gga_atomref", "4_refit_atomref")) -> Figure:
    """Fig. 3a: per-layer gradient norms over the recorded optimiser steps, one panel per layer;
    dotted lines mark epoch boundaries."""
    layers = list(dict.fromkeys(gradients["layer"]))
    ncols = 4
    nrows = int(np.ceil(len(layers) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False, sharex=True)
    for ax, layer in zip(axes.flat, layers, strict=False):
        rows = gradients[gradients["layer"] == layer]
        for method in methods:
            part = rows[rows["method"] == method].sort_values("step")
            ax.plot(part["step"], part["grad_norm"], "o-", ms=2, lw=1, color=METHOD_COLORS.get(method), label=label(method))
        for boundary in _epoch_boundaries(rows):
            ax.axvline(boundary, color="0.6", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(layer, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("optimiser step")
    for ax in axes[:, 0]:
        ax.set_ylabel("gradient norm")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    ratio = gradient_ratio(gradients, *methods) if set(methods) <= set(gradients["method"]) else pd.Series(dtype=float)
    summary = f"median ratio {label(methods[0]).split()[0]}/{label(methods[1]).split()[0]} over layers: {ratio.median():.1f}x (paper: at least 10x)" if len(ratio) else ""
    fig.legend(handles, labels, loc="upper center", ncol=len(methods), frameon=False, bbox_to_anchor=(0.5, 1.0))
    steps = int(gradients["step"].max()) if len(gradients) else 0
    fig.suptitle(f"a  Gradients over the first {steps} optimiser steps of transfer learning (paper: "
                 f"its first epoch, ~3,000 steps). {summary}", y=1.06, fontsize=12)
    fig.tight_layout()
    stamp_source(fig, source)
    return fig


def plot_energy_mae(histories: pd.DataFrame, *, source: DataSource) -> Figure:
    """Fig. 3b/c: validation energy MAE per epoch; b the paper's M3 vs M4, c every method."""
    val = histories[histories["split"] == "val"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    panels = (("b  M3 vs M4 (the paper's comparison)", ["3_frozen_gga_atomref", "4_refit_atomref"]),
              ("c  every method", list(dict.fromkeys(val["method"]))))
    for ax, (title, methods) in zip(axes, panels, strict=True):
        for method in methods:
            part = val[val["method"] == method].sort_values("epoch")
            if part.empty:
                continue
            best = part["energy_mae"].min() * 1000
            ax.plot(part["epoch"], part["energy_mae"] * 1000, "o-", ms=4, color=METHOD_COLORS.get(method),
                    label=f"{label(method)} (best {best:.1f})")
        ax.set_yscale("log")
        ax.set(xlabel="epoch (0 = before training)", ylabel="validation energy MAE (meV/atom)", title=title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False, fontsize=8)
    axes[0].text(0.02, 0.02, "paper, best of 50 epochs: M3 18.37, M4 11.82 meV/atom", transform=axes[0].transAxes, fontsize=8, color="#444444")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    stamp_source(fig, source)
    return fig


def plot_table1(table: pd.DataFrame, *, source: DataSource) -> Figure:
    """Table 1 as bars: energy, force, decomposition- and formation-energy MAE per model (log scale).

    Rows with flags (``table["flags"]``: training or relaxation did not change them) are hatched,
    marked "[flagged]" and their flags are listed under the panels. Before-training rows
    (``stage`` "step 0") are pale bars in their method's colour, right under the trained one.
    """
    metrics = [("energy_mae_mev", "energy MAE (meV/atom)"), ("force_mae_mev", "force MAE (meV/Å)"),
               ("decomposition_energy_mae_mev", "decomposition-energy MAE (meV/atom)"),
               ("formation_energy_mae_mev", "formation-energy MAE (meV/atom)")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.8), sharey=True)
    models = list(table["model"])
    flagged = [isinstance(f, str) and bool(f) for f in table.get("flags", [""] * len(models))]
    y = np.arange(len(models))
    for ax, (column, title) in zip(axes, metrics, strict=True):
        values = table[column].to_numpy(float)
        bars = ax.barh(y, values, color=[_color(m) for m in models])
        for bar, is_flagged, model in zip(bars, flagged, models, strict=True):
            if model.endswith(STEP0_SUFFIX):
                bar.set_alpha(0.3)
            if is_flagged:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
        for yi, value in zip(y, values, strict=True):
            if np.isfinite(value):
                ax.text(value, yi, f" {value:.3g}", va="center", fontsize=8)
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="x", which="both")
    axes[0].set_yticks(y, [label(m) + (" [flagged]" if f else "") for m, f in
                           zip(models, flagged, strict=True)], fontsize=9)
    axes[0].invert_yaxis()
    fig.suptitle("Table 1: test-split errors per model (lower is better)", fontsize=12)
    notes = [f"[flagged] {label(m)}: {f}" for m, f, is_flagged in
             zip(models, table.get("flags", [""] * len(models)), flagged, strict=True) if is_flagged]
    if notes:
        fig.text(0.01, 0.075, "\n".join(notes), fontsize=7.5, color="#8b0000", va="top", wrap=True)
    fig.tight_layout(rect=(0, 0.04 + 0.025 * len(notes), 1, 1))
    stamp_source(fig, source)
    return fig
