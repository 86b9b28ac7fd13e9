"""Figure of the data-budget estimate: learning curves, the fitted power law with its
prediction band, the extrapolated point at N_full with its interval and the measured one."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from mlip_transfer.budget.estimate import prediction_interval
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.benchmarks import TARGET_TITLES, _plain_log_ticks
from mlip_transfer.plots.style import stamp_source
from mlip_transfer.plots.transfer import METHOD_COLORS, label
from mlip_transfer.scaling.laws import TARGETS, PowerLawFit


def plot_data_budget(points: pd.DataFrame, summary: Mapping, *, source: DataSource) -> Figure:
    """Per target: every point job (dots), each method's fitted line from its smallest size to
    N_full with the prediction band, the estimate at N_full (square, interval as error bar)
    and the measured full-size validation MAE (star), beside the words "extrapolation"."""
    n_full = summary["n_full"]
    pct = round(100 * summary["confidence"])
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.6))
    for ax, target in zip(axes, TARGETS, strict=True):
        column = TARGETS[target]
        for k, (method, row) in enumerate(summary["targets"][target]["estimates"].items()):
            color = METHOD_COLORS.get(method, "#777777")
            mine = points[points["method"] == method]
            ax.scatter(mine["size"], mine[column], color=color, s=22, zorder=3)
            if row is None:
                continue
            fit = PowerLawFit(slope=row["slope"], intercept=row["intercept"], r2=row["r2"],
                              n_points=row["n_points"], n_seeds=1)
            xs = np.geomspace(min(row["sizes"]), n_full, 40)
            ax.plot(xs, fit.predict(xs), "-", color=color, lw=1.2,
                    label=f"{label(method)}: slope {row['slope']:.3f}")
            band = [prediction_interval(mine["size"], mine[column], fit=fit, at=x,
                                        confidence=summary["confidence"]) for x in xs]
            low, high = np.array(band, float).T
            if np.isfinite(low).all():
                ax.fill_between(xs, low, high, color=color, alpha=0.12, lw=0)
            interval = np.isfinite(row["low"] or np.nan)
            yerr = ([[row["predicted"] - row["low"]], [row["high"] - row["predicted"]]]
                    if interval else None)
            at = n_full * 1.04**k  # side by side, not on top of each other
            ax.errorbar([at], [row["predicted"]], yerr=yerr, fmt="s", color=color, ms=6,
                        capsize=4, mfc="white",
                        label=f"  estimate at N_full {row['predicted']:.4g}"
                        + (f" [{row['low']:.4g}, {row['high']:.4g}]" if interval else " (no interval)"))
            if row.get("measured") is not None and np.isfinite(row["measured"]):
                ax.plot([at], [row["measured"]], "*", color=color, ms=12, mec="black",
                        mew=0.5, label=f"  measured at N_full {row['measured']:.4g}")
        ax.axvline(n_full, color="#999999", ls="--", lw=0.8)
        ax.text(n_full, 1.01, f"N_full = {n_full}\n(extrapolation)", ha="center", va="bottom",
                transform=ax.get_xaxis_transform(), fontsize=7.5, color="#444444")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis, ax.get_ylim())
        sizes = sorted({*points["size"].astype(int), int(n_full)})
        ax.set_xticks(sizes, [f"{s:g}" for s in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel="training frames (subsamples of the training split)",
               ylabel=f"validation {TARGET_TITLES[target]}",
               title=f"{'ab'[list(TARGETS).index(target)]}  {target}: {pct} % prediction band\n")
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    fig.text(0.01, 0.075, "An extrapolation: power laws fitted to small fine-tunes, read at "
             "the full size.", fontsize=7.5, color="#8b0000", va="top")
    fig.tight_layout(rect=(0, 0.065, 1, 1))
    stamp_source(fig, source)
    return fig
