"""Figures of the Si -> Ge stage: data efficiency, temperature transferability, MD stability,
structure (RDF/ADF against the Stillinger-Weber reference)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.style import stamp_source

# Okabe-Ito, colourblind safe; the reference in black.
METHOD_COLORS = {"scratch": "#D55E00", "transfer": "#0072B2", "stillinger-weber": "#000000"}
METHOD_LABELS = {
    "scratch": "Ge from scratch",
    "transfer": "Ge by transfer from Si",
    "stillinger-weber": "Stillinger-Weber (reference)",
}
ERRORS = {
    "force_mae_mev_per_a": "test force MAE (meV/Å)",
    "energy_mae_mev_per_atom": "test energy MAE (meV/atom)",
}


def _errorbar(ax: Any, x: np.ndarray, rows: pd.DataFrame, column: str, **style: Any) -> None:
    mean = rows[f"{column}_mean"].to_numpy(float)
    low = mean - rows[f"{column}_min"].to_numpy(float)
    high = rows[f"{column}_max"].to_numpy(float) - mean
    ax.errorbar(x, mean, yerr=[low, high], capsize=3, marker="o", ms=4, **style)


def plot_data_efficiency(table: pd.DataFrame, *, source: DataSource, note: str = "") -> Figure:
    """Test force and energy MAE against the number of Ge training frames (log-log), scratch
    vs transfer; points are means over seeds, bars span min to max."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (column, ylabel) in zip(axes, ERRORS.items()):
        for method in ("scratch", "transfer"):
            rows = table[table["method"] == method].sort_values("size")
            if rows.empty:
                continue
            _errorbar(ax, rows["size"].to_numpy(), rows, column, color=METHOD_COLORS[method],
                      label=METHOD_LABELS[method])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Ge training frames")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=9)
    fig.suptitle("Data efficiency: Ge DimeNet++ with and without Si pre-training", fontsize=11)
    if note:
        fig.text(0.5, -0.06, note, ha="center", va="top", fontsize=7, wrap=True)
    stamp_source(fig, source)
    fig.tight_layout()
    return fig


def plot_temperature(
    table: pd.DataFrame, *, source: DataSource, train_temperature: float, note: str = ""
) -> Figure:
    """Test errors against test temperature for models trained at one temperature."""
    sizes = sorted(table["size"].unique())
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (column, ylabel) in zip(axes, ERRORS.items()):
        for method in ("scratch", "transfer"):
            for k, size in enumerate(sizes):
                rows = table[(table["method"] == method) & (table["size"] == size)].sort_values("temperature")
                if rows.empty:
                    continue
                _errorbar(ax, rows["temperature"].to_numpy(), rows, column,
                          color=METHOD_COLORS[method], ls=styles[k % len(styles)],
                          label=f"{method}, {size} frames")
        ax.axvline(train_temperature, color="#999999", lw=1, zorder=0)
        ax.set_yscale("log")
        ax.set_xlabel("test temperature (K)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Temperature transferability: trained at {train_temperature:g} K (grey line)", fontsize=11)
    if note:
        fig.text(0.5, -0.06, note, ha="center", va="top", fontsize=7, wrap=True)
    stamp_source(fig, source)
    fig.tight_layout()
    return fig


def plot_stability(summary: Mapping[str, Any], *, source: DataSource) -> Figure:
    """Stable and unstable NVT runs per method, unstable ones split by reason."""
    table = pd.DataFrame(summary["stability"]).set_index("method")
    settings = summary["stability_settings"]
    fig, ax = plt.subplots(figsize=(8, 4))
    methods = [m for m in ("scratch", "transfer") if m in table.index]
    x = np.arange(len(methods))
    bottom = np.zeros(len(methods))
    parts = [("stable", "#009E73"), ("nan", "#000000"), ("overlap", "#E69F00"), ("runaway", "#CC79A7")]
    for name, color in parts:
        values = table.loc[methods, name].to_numpy(float)
        ax.bar(x, values, bottom=bottom, color=color, label=name if name == "stable" else f"unstable: {name}")
        bottom += values
    for k, method in enumerate(methods):
        ax.text(k, bottom[k], f"{int(table.loc[method, 'stable'])}/{int(table.loc[method, 'runs'])} stable",
                ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [METHOD_LABELS[m] for m in methods])
    ax.set_ylabel("NVT runs")
    ax.set_ylim(0, max(bottom.max() * 1.2, 1))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(
        f"MD stability: {settings['runs']} runs of {settings['duration_ps']:g} ps per method at "
        f"{settings['temperature']:g} K,\nmodels trained on {settings['train_size']} Ge frames "
        f"(the study: transfer 100/100, scratch 35/100 stable)", fontsize=10,
    )
    stamp_source(fig, source)
    fig.tight_layout()
    return fig


def plot_structure(curves: pd.DataFrame, summary: Mapping[str, Any], *, source: DataSource) -> Figure:
    """RDF and ADF of the stable runs of each method against the Stillinger-Weber reference."""
    stats = summary["structure"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind, xlabel, ylabel in (
        (axes[0], "rdf", "r (Å)", "g(r)"),
        (axes[1], "adf", "bond angle (degrees)", "probability density (1/degree)"),
    ):
        for method in ("stillinger-weber", "scratch", "transfer"):
            rows = curves[(curves["method"] == method) & (curves["kind"] == kind)]
            if rows.empty:
                continue
            item = stats.get(method, {})
            extra = ""
            if method != "stillinger-weber" and item.get(f"{kind}_difference") is not None:
                extra = f", ∫|Δ| = {item[f'{kind}_difference']:.3g}"
            ax.plot(rows["x"], rows["y"], color=METHOD_COLORS[method], lw=2 if method == "stillinger-weber" else 1.3,
                    ls="-" if method == "stillinger-weber" else "--",
                    label=f"{METHOD_LABELS[method]} ({item.get('frames', 0)} frames{extra})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("Radial distribution function", fontsize=10)
    axes[1].set_title("Angular distribution (first shell)", fontsize=10)
    fig.suptitle("Structure of Ge at the stability temperature: learned models vs Stillinger-Weber", fontsize=11)
    stamp_source(fig, source)
    fig.tight_layout()
    return fig
