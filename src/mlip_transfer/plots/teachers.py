"""The teacher comparison: each r2SCAN teacher against MatPES r2SCAN DFT per element, and the
teachers' differences from each other per element on the test frames."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from pymatgen.core import Element

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.style import stamp_source

TEACHER_COLORS = {"chgnet-r2scan": "#d62728", "diep": "#2ca02c", "chgnet-0.3.0": "#1f77b4"}
PAIR_COLORS = ("#9467bd", "#8c564b", "#17becf")
# Log axes cannot show zero: errors below this are drawn at it (the tables keep the values).
FLOOR = {"energy_ev": 1e-4, "energy_mev": 0.1, "force": 1.0}


def _by_z(elements) -> list[str]:
    return sorted(set(elements), key=lambda symbol: Element(symbol).Z)


def _grouped_bars(ax: Axes, order: list[str], series: Mapping[str, tuple[pd.Series, str]],
                  floor: float) -> None:
    """One bar per element and series, side by side, on a log axis; missing values stay gaps."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(order))
    drawn: list[float] = []
    for k, (label, (values, color)) in enumerate(series.items()):
        heights = np.maximum(values.reindex(order).to_numpy(dtype=float), floor)
        ax.bar(x + (k - (len(series) - 1) / 2) * width, heights, width, color=color, label=label)
        drawn += list(heights[np.isfinite(heights)])
    ax.set_yscale("log")
    low, high = min(drawn, default=floor), max(drawn, default=floor)
    ax.set_ylim(low / 1.5, high * 6)  # head room for the legend
    # Plain numbers (200, 0.01), not 2 x 10^2; 1-2-5 steps only when the bars span < 3 decades.
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5) if high / low < 1e3 else (1,)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x, order, rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.grid(axis="y", which="major", alpha=0.3)


def _matpes_panel(ax: Axes, matpes: pd.DataFrame, stats: Mapping) -> None:
    counted = matpes[matpes["skipped"].fillna("") == ""]
    series, notes = {}, []
    for teacher, rows in counted.groupby("teacher", sort=True):
        info = stats.get(teacher, {})
        label = (f"{teacher}: MAE {info.get('mae', np.nan):.3f}, median "
                 f"{info.get('median_ae', np.nan):.3f} eV/atom (n = {info.get('n', len(rows))})")
        series[label] = (rows.set_index("element")["abs_error"],
                         TEACHER_COLORS.get(teacher, "#7f7f7f"))  # fmt: skip
        if info.get("skipped"):
            notes.append(f"{teacher} skipped: {', '.join(sorted(info['skipped']))}")
    _grouped_bars(ax, _by_z(matpes["element"]), series, FLOOR["energy_ev"])
    ax.set_ylabel("|teacher − MatPES r2SCAN DFT|\n(eV/atom)")
    ax.set_title("(i) r2SCAN teachers against r2SCAN DFT: elemental ground states (MatPES)")
    ax.legend(loc="upper left", fontsize=8)
    if notes:
        ax.text(0.99, 0.97, "\n".join(notes), transform=ax.transAxes, ha="right", va="top",
                fontsize=8)  # fmt: skip


def _pair_panel(ax: Axes, pairs: pd.DataFrame, column: str, *, ylabel: str, title: str,
                floor: float, summaries: list[Mapping]) -> None:
    series = {}
    overall = {(row["a"], row["b"]): row for row in summaries}
    for k, ((a, b), rows) in enumerate(pairs.groupby(["a", "b"], sort=True)):
        total = overall.get((a, b), {}).get(column, np.nan)
        label = f"{a} − {b}: all frames {total:.3g} (n = {overall.get((a, b), {}).get('n_frames')})"
        series[label] = (rows.set_index("element")[column], PAIR_COLORS[k % len(PAIR_COLORS)])
    _grouped_bars(ax, _by_z(pairs["element"]) if len(pairs) else [], series, floor)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if series:
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "fewer than two r2SCAN teachers: no differences", ha="center",
                transform=ax.transAxes)  # fmt: skip


def plot_teacher_comparison(
    matpes: pd.DataFrame, pair_elements: pd.DataFrame, summary: Mapping, *, source: DataSource
) -> Figure:
    """Three panels: (i) each r2SCAN teacher's absolute error per element against MatPES
    r2SCAN DFT; (ii) energy and (iii) force differences between the teachers per element, over
    the test frames that contain the element (the frames' own labels left out).

    Args:
        matpes: ``r2scan_vs_matpes.csv`` (``element``, ``teacher``, ``abs_error``, ``skipped``).
        pair_elements: ``teacher_pair_elements.csv`` (``a``, ``b``, ``element``,
            ``energy_mae`` in meV/atom, ``force_mae`` in meV/Å).
        summary: ``teacher_accuracy.json``.
        source: Data provenance of the frames, stamped on the figure.
    """
    between = pair_elements[(pair_elements["a"] != "labels") & (pair_elements["b"] != "labels")]
    summaries = [row for row in summary["teacher_pairs"]["pairs"]
                 if "labels" not in (row["a"], row["b"])]  # fmt: skip
    n_frames = summary["teacher_pairs"]["n_used"]
    fig, axes = plt.subplots(3, 1, figsize=(16, 12), gridspec_kw={"hspace": 0.55})
    _matpes_panel(axes[0], matpes, summary["r2scan_vs_matpes"]["teachers"])
    _pair_panel(axes[1], between, "energy_mae", ylabel="energy MAE\n(meV/atom)",
                title=f"(ii) r2SCAN teachers against each other on {n_frames} test frames: "
                "energy per atom, per element of the frames", floor=FLOOR["energy_mev"],
                summaries=summaries)  # fmt: skip
    _pair_panel(axes[2], between, "force_mae", ylabel="force MAE\n(meV/Å)",
                title="(iii) the same: forces (mean over Cartesian components)",
                floor=FLOOR["force"], summaries=summaries)  # fmt: skip
    stamp_source(fig, source)
    return fig
