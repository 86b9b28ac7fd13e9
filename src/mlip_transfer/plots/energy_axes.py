"""Pieces the energy-scale figures share: series colours and the energy scatter with marginals.

Axes follow the paper: r2SCAN on x and GGA/GGA+U on y in the energy scatter plots (Figs. 1b, 2b).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec

from mlip_transfer.plots.style import functional_color

# Okabe-Ito colours (colour-blind safe) for series that are not a functional.
REFIT_COLOR = "#0072B2"
SHIPPED_COLOR = "#E69F00"
DIFF_COLOR = "#009E73"
POINT_COLOR = "#3b3b6d"
GGA, R2SCAN = "gga", "r2scan"


def joint_axes(fig: Figure, spec: SubplotSpec) -> tuple[Axes, Axes, Axes]:
    """Scatter axes with a histogram above (x) and to the right (y)."""
    grid = spec.subgridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4), wspace=0.05, hspace=0.05)
    joint = fig.add_subplot(grid[1, 0])
    top = fig.add_subplot(grid[0, 0], sharex=joint)
    right = fig.add_subplot(grid[1, 1], sharey=joint)
    top.tick_params(labelbottom=False)
    right.tick_params(labelleft=False)
    for ax in (top, right):
        ax.spines[["top", "right"]].set_visible(False)
    return joint, top, right


def energy_scatter(
    fig: Figure,
    spec: SubplotSpec,
    x: np.ndarray,
    y: np.ndarray,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
) -> Axes:
    """Scatter of y against x on common limits (so y = x is the diagonal) with marginals."""
    joint, top, right = joint_axes(fig, spec)
    low = float(min(x.min(), y.min()))
    high = float(max(x.max(), y.max()))
    pad = 0.04 * (high - low or 1.0)
    limits = (low - pad, high + pad)
    size = 10 if len(x) < 2000 else 3
    joint.scatter(x, y, s=size, alpha=0.5, color=POINT_COLOR, linewidths=0, rasterized=True)
    joint.plot(limits, limits, color="0.45", linestyle="--", linewidth=1, label="y = x")
    joint.set(xlim=limits, ylim=limits, xlabel=xlabel, ylabel=ylabel)
    joint.set_aspect("equal", adjustable="box")
    joint.grid(alpha=0.25)
    # Bins over each variable's own range: on the common range a narrow one falls into a few bins.
    top.hist(x, bins=40, color=functional_color(R2SCAN), alpha=0.75)
    right.hist(y, bins=40, color=functional_color(GGA), alpha=0.75, orientation="horizontal")
    top.set_ylabel("count", fontsize=8)
    if title:
        top.set_title(title, fontsize=11, loc="left")
    right.set_xlabel("count", fontsize=8)
    for ax in (top, right):
        ax.tick_params(labelsize=7)
    return joint


def finite_rows(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The rows of ``columns`` (as numbers) where every one is finite."""
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce")
    return values[np.isfinite(values).all(axis=1)]


def info_box(ax: Axes, text: str, *, loc: str = "upper left", fontsize: float = 9) -> None:
    """A boxed note in a corner of ``ax`` (``loc``: upper/lower left/right)."""
    x, ha = (0.03, "left") if "left" in loc else (0.97, "right")
    y, va = (0.97, "top") if "upper" in loc else (0.03, "bottom")
    ax.text(
        x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=fontsize,
        bbox={"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.92},
    )  # fmt: skip
