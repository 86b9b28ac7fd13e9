"""Energy-scale figures: the paper's Figs. 1a-d and 2a-b, and the MatPES check of the AtomRef shift.

Every function takes the tables the energy-scale scripts write (``<output>/energy_scale/``),
returns a Figure and stamps the data source on it. Axes follow the paper: r2SCAN on x and
GGA/GGA+U on y in the energy scatter plots (Figs. 1b, 2b).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec
from pymatgen.core import Element

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import display_name
from mlip_transfer.energy_scale.atomref import N_ELEMENTS
from mlip_transfer.energy_scale.correlation import PAPER_RHO, pearson
from mlip_transfer.plots.periodic_table import compact_number, ptable_heatmap
from mlip_transfer.plots.style import functional_color, stamp_source

# Okabe-Ito colours (colour-blind safe) for series that are not a functional.
REFIT_COLOR = "#0072B2"
SHIPPED_COLOR = "#E69F00"
DIFF_COLOR = "#009E73"
POINT_COLOR = "#3b3b6d"
GGA, R2SCAN = "gga", "r2scan"
PAPER_HIGH_IMPORTANCE = {
    True: ("V", "Cr", "Mn", "Fe", "Co", "Ni", "Mo", "W", "O", "F", "S", "Cl", "Se", "Br", "Te"),
    False: ("V", "Cr", "Mn", "Fe", "Co", "Ni", "Mo", "W", "O", "F"),
}


def structure_element_counts(frames: pd.DataFrame, functional: str | None = R2SCAN) -> Counter:
    """How many structures (frames) contain each element, from a frame table.

    Args:
        frames: :func:`mlip_transfer.data.summary.frame_table` output (``functional``, ``elements``).
        functional: Count only this functional's frames (None: all frames).
    """
    if functional is not None:
        frames = frames[frames["functional"] == functional]
    counts: Counter = Counter()
    for elements in frames["elements"]:
        counts.update(set(elements))
    return counts


def _joint_axes(fig: Figure, spec: SubplotSpec) -> tuple[Axes, Axes, Axes]:
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


def _energy_scatter(
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
    joint, top, right = _joint_axes(fig, spec)
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


def _finite(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce")
    return values[np.isfinite(values).all(axis=1)]


def _info_box(ax: Axes, text: str, *, loc: str = "upper left", fontsize: float = 9) -> None:
    x, ha = (0.03, "left") if "left" in loc else (0.97, "right")
    y, va = (0.97, "top") if "upper" in loc else (0.03, "bottom")
    ax.text(
        x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=fontsize,
        bbox={"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.92},
    )  # fmt: skip


def plot_element_occurrence(
    counts: Mapping[str, int],
    *,
    cutoff: float,
    source: DataSource,
    functional: str = R2SCAN,
    n_structures: int | None = None,
) -> Figure:
    """Fig. 1a: periodic table of how many structures contain each element (log colour scale).

    Args:
        counts: Element -> number of structures of ``functional`` containing it.
        cutoff: Elements in at most this many structures share one grey (paper: 1000).
        source: Data provenance, stamped on the figure.
        functional: The functional counted, for the title.
        n_structures: Total number of structures counted, for the title.
    """
    fig, ax = plt.subplots(figsize=(12, 7))
    ptable_heatmap(
        {el: float(n) for el, n in counts.items() if n > 0},
        ax=ax,
        log=True,
        cutoff=cutoff,
        cmap="viridis",
        label=f"{display_name(functional)} structures containing the element",
    )
    total = f"{n_structures:,} {display_name(functional)} structures, " if n_structures else ""
    ax.set_title(
        f"a  Element occurrence: {total}{sum(1 for n in counts.values() if n > 0)} elements",
        fontsize=14,
        loc="left",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    stamp_source(fig, source)
    return fig


def plot_relaxed_energies(referenced: pd.DataFrame, *, source: DataSource) -> Figure:
    """Fig. 1b: relaxed energy per atom, r2SCAN (x) vs GGA/GGA+U (y), one point per material.

    Args:
        referenced: ``referenced_energies.csv`` (``raw_gga``, ``raw_r2scan`` used).
        source: Data provenance, stamped on the figure.
    """
    data = _finite(referenced, "raw_r2scan", "raw_gga")
    x, y = data["raw_r2scan"].to_numpy(), data["raw_gga"].to_numpy()
    fig = plt.figure(figsize=(7.2, 7.2))
    spec = fig.add_gridspec(1, 1)[0]
    ax = _energy_scatter(
        fig,
        spec,
        x,
        y,
        xlabel=f"{display_name(R2SCAN)} relaxed energy (eV/atom)",
        ylabel=f"{display_name(GGA)} relaxed energy (eV/atom)",
    )
    shift = x - y
    rho = pearson(x, y) if len(x) > 2 else float("nan")
    _info_box(
        ax,
        f"Pearson ρ = {rho:.3f}  (paper {PAPER_RHO['raw']:.4f})\n"
        f"n = {len(x):,} materials\n"
        f"r2SCAN − GGA: median {np.median(shift):+.1f} eV/atom\n"
        f"  range {shift.min():+.1f} to {shift.max():+.1f} eV/atom",
        loc="lower right",
    )
    ax.legend(loc="upper left", frameon=False, fontsize=9)
    fig.suptitle("b  Relaxed energies per material, raw", x=0.02, ha="left", fontsize=13)
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.1, top=0.93)
    stamp_source(fig, source)
    return fig


def plot_atomrefs(atomrefs: pd.DataFrame, *, source: DataSource) -> Figure:
    """Fig. 2a: AtomRef energies per element (top) and the r2SCAN − GGA difference (bottom).

    Args:
        atomrefs: ``atomrefs.csv``: ``functional`` (gga/r2scan), ``kind`` (refit/shipped),
            ``element``, ``Z``, ``energy``. Elements without a row are gaps.
        source: Data provenance, stamped on the figure.
    """
    z_axis = np.arange(1, N_ELEMENTS + 1)

    def series(functional: str, kind: str) -> np.ndarray:
        rows = atomrefs[(atomrefs["functional"] == functional) & (atomrefs["kind"] == kind)]
        values = pd.Series(
            pd.to_numeric(rows["energy"], errors="coerce").to_numpy(), index=rows["Z"].astype(int)
        )
        return values.groupby(level=0).first().reindex(z_axis).to_numpy(float)

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(16, 7.5), sharex=True, gridspec_kw={"height_ratios": (3, 2), "hspace": 0.08}
    )
    counts = {}
    for functional, marker in ((GGA, "o"), (R2SCAN, "s")):
        color = functional_color(functional)
        shipped = series(functional, "shipped")
        refit = series(functional, "refit")
        counts[functional] = int(np.isfinite(refit).sum())
        shipped_name = "MPtrj" if functional == GGA else "MP-r2SCAN"
        top.plot(
            z_axis, shipped, linestyle="none", marker=marker, markersize=6, markerfacecolor="none",
            markeredgecolor=color, alpha=0.45, label=f"{display_name(functional)}, CHGNet shipped ({shipped_name})",
        )  # fmt: skip
        top.plot(
            z_axis, refit, color=color, marker=marker, markersize=4, linewidth=1.2,
            label=f"{display_name(functional)}, refit on this data ({counts[functional]} elements)",
        )  # fmt: skip
    top.set_ylabel("AtomRef energy (eV/atom)")
    top.grid(alpha=0.25)

    refit_diff = series(R2SCAN, "refit") - series(GGA, "refit")
    shipped_diff = series(R2SCAN, "shipped") - series(GGA, "shipped")
    bottom.bar(z_axis, refit_diff, width=0.75, color=DIFF_COLOR, label="refit on this data")
    bottom.plot(
        z_axis, shipped_diff, linestyle="none", marker="D", markersize=4, markerfacecolor="none",
        markeredgecolor="black", alpha=0.6, label="CHGNet shipped (MP-r2SCAN − MPtrj)",
    )  # fmt: skip
    bottom.axhline(0, color="0.3", linewidth=0.8)
    bottom.set_ylabel("r2SCAN − GGA/GGA+U\n(eV/atom)")
    bottom.grid(alpha=0.25, axis="y")
    bottom.set_xlim(0.3, N_ELEMENTS + 0.7)
    bottom.set_xticks(z_axis, [Element.from_Z(int(z)).symbol for z in z_axis], fontsize=7)
    # Alternate the tick-label height so neighbouring symbols never touch.
    for index, label in enumerate(bottom.get_xticklabels()):
        label.set_y(-0.025 if index % 2 else 0.0)
    bottom.set_xlabel("element (ordered by atomic number; gaps: no AtomRef)")
    finite = refit_diff[np.isfinite(refit_diff)]
    span = (
        f"refit shift {finite.min():+.1f} to {finite.max():+.1f} eV/atom" if finite.size else "no refit shift"
    )
    fig.suptitle(
        f"a  Atomic reference energies (AtomRef, Eq. 2) per element; {span}",
        x=0.01, ha="left", fontsize=13,
    )  # fmt: skip
    # One legend above the panels, where it can hide no data.
    handles = [h for ax in (top, bottom) for h in ax.get_legend_handles_labels()[0]]
    labels = [lab for ax in (top, bottom) for lab in ax.get_legend_handles_labels()[1]]
    labels[-2:] = [f"r2SCAN − GGA/GGA+U, {lab}" for lab in labels[-2:]]
    top.legend(
        handles, labels, loc="lower left", bbox_to_anchor=(0, 1.01), ncols=3, fontsize=9, frameon=False
    )
    fig.subplots_adjust(left=0.07, right=0.99, top=0.86, bottom=0.11)
    stamp_source(fig, source)
    return fig


def _rho_text(stats: Mapping | None) -> str:
    if not stats or not np.isfinite(stats.get("rho", np.nan)):
        return "n/a"
    return f"{stats['rho']:.3f}"


def plot_referenced_energies(referenced: pd.DataFrame, correlation: Mapping, *, source: DataSource) -> Figure:
    """Fig. 2b: raw and AtomRef-scaled energies, r2SCAN (x) vs GGA/GGA+U (y), with Pearson ρ.

    Args:
        referenced: ``referenced_energies.csv`` (``raw_*`` and ``scaled_*`` columns).
        correlation: ``correlation.json`` (``refit``, optional ``shipped``, ``paper``).
        source: Data provenance, stamped on the figure.
    """
    fig = plt.figure(figsize=(13.5, 7.2))
    grid = fig.add_gridspec(1, 2, wspace=0.22)
    refit = correlation.get("refit", {})
    titles = {
        "raw": "raw relaxed energies",
        "scaled": "scaled: each functional's refit AtomRef subtracted",
    }
    for spec, kind in zip(grid, ("raw", "scaled")):
        data = _finite(referenced, f"{kind}_r2scan", f"{kind}_gga")
        x, y = data[f"{kind}_r2scan"].to_numpy(), data[f"{kind}_gga"].to_numpy()
        ax = _energy_scatter(
            fig,
            spec,
            x,
            y,
            xlabel=f"{display_name(R2SCAN)} {kind} energy (eV/atom)",
            ylabel=f"{display_name(GGA)} {kind} energy (eV/atom)",
            title=titles[kind],
        )
        stats = refit.get(kind, {})
        ci = (
            f"\n95% CI [{stats['low']:.3f}, {stats['high']:.3f}]"
            if np.isfinite(stats.get("low", np.nan))
            else ""
        )
        _info_box(ax, f"ρ = {_rho_text(stats)}{ci}\nn = {len(x):,}", loc="upper left", fontsize=10)
        if kind == "scaled":
            paper = correlation.get("paper", PAPER_RHO)
            lines = [
                "Pearson ρ, raw → scaled",
                f"paper (MP):     {paper['raw']:.4f} → {paper['scaled']:.4f}",
                f"this data:      {_rho_text(refit.get('raw'))} → {_rho_text(refit.get('scaled'))}",
            ]
            shipped = correlation.get("shipped")
            if shipped:
                lines.append(
                    f"shipped refs:   {_rho_text(shipped.get('raw'))} → {_rho_text(shipped.get('scaled'))}"
                )
            ax.text(
                0.97, 0.03, "\n".join(lines), transform=ax.transAxes, ha="right", va="bottom",
                fontsize=9, family="monospace", multialignment="left",
                bbox={"boxstyle": "round,pad=0.5", "facecolor": "#fff7e0", "edgecolor": SHIPPED_COLOR},
            )  # fmt: skip
    fig.suptitle(
        "b  Correlation of GGA/GGA+U and r2SCAN energies before and after AtomRef scaling",
        x=0.01, ha="left", fontsize=13,
    )  # fmt: skip
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.1, top=0.9)
    stamp_source(fig, source)
    return fig


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _importance_label(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.2f}" if abs(value) >= 0.005 else "<0.01"


def plot_element_importance(importance: pd.DataFrame, *, source: DataSource) -> Figure:
    """Figs. 1c/1d: normalised decision-tree importance per element, with and without MP2020 corrections.

    Args:
        importance: ``element_importance.csv``: ``corrections``, ``element``, ``normalised``.
        source: Data provenance, stamped on the figure.
    """
    corrections = importance["corrections"].map(_as_bool)
    fig, axes = plt.subplots(1, 2, figsize=(20, 6.8))
    panels = (
        (True, "c  with MP2020 anion/GGA+U corrections (× 9,000)"),
        (False, "d  without corrections (× 500)"),
    )
    for ax, (corrected, title) in zip(axes, panels):
        rows = importance[corrections == corrected]
        values = dict(zip(rows["element"], pd.to_numeric(rows["normalised"], errors="coerce")))
        ptable_heatmap(
            values,
            ax=ax,
            cmap="YlOrRd",
            vmin=0.0,
            label="normalised feature importance",
            fmt=_importance_label,
        )
        ax.set_title(title, fontsize=13, loc="left")
    fig.suptitle(
        "Which elements drive the GGA/GGA+U − r2SCAN formation-energy difference (decision tree)",
        fontsize=14,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    stamp_source(fig, source)
    return fig


def plot_matpes_shift(
    shift: pd.DataFrame, stats: Mapping, *, source: DataSource, n_labels: int = 6
) -> Figure:
    """The AtomRef shift r2SCAN − GGA per element against MatPES's DFT r2SCAN − PBE elemental shift.

    Left: the two shifts with y = x. Right: their difference against the MatPES shift, where
    the elements furthest from MatPES are named.

    Args:
        shift: ``matpes_shift.csv``: ``element``, ``matpes_shift``, ``refit_shift``,
            ``shipped_shift`` (eV/atom).
        stats: ``matpes_shift.json``: ``{"refit": {pearson, mad, n}, "shipped": {...}}``.
        source: Data provenance, stamped on the figure.
        n_labels: How many elements furthest from MatPES to name per series.
    """
    fig, (ax, dev) = plt.subplots(
        1, 2, figsize=(14, 6.6), gridspec_kw={"width_ratios": (1, 1.15), "wspace": 0.25}
    )
    everything = []
    series = (
        ("refit_shift", "refit", "AtomRef refit on this data", REFIT_COLOR, "o"),
        ("shipped_shift", "shipped", "CHGNet shipped AtomRefs", SHIPPED_COLOR, "s"),
    )
    for column, key, name, color, marker in series:
        if column not in shift.columns:
            continue
        data = shift[["element", "matpes_shift", column]].copy()
        data[["matpes_shift", column]] = data[["matpes_shift", column]].apply(pd.to_numeric, errors="coerce")
        data = data[np.isfinite(data["matpes_shift"]) & np.isfinite(data[column])]
        if data.empty:
            continue
        everything += [data["matpes_shift"].to_numpy(), data[column].to_numpy()]
        info = stats.get(key, {})
        label = (
            f"{name}\nr = {info.get('pearson', np.nan):.3f}, "
            f"MAD = {info.get('mad', np.nan):.2f} eV/atom, n = {info.get('n', len(data))}"
        )
        filled = key == "refit"
        style = {
            "marker": marker, "facecolors": color if filled else "none", "edgecolors": color,
            "linewidths": 1.2, "alpha": 0.85, "zorder": 3 if filled else 2, "s": 36 if filled else 30,
        }  # fmt: skip
        ax.scatter(data["matpes_shift"], data[column], label=label, **style)
        offset = data[column] - data["matpes_shift"]
        dev.scatter(data["matpes_shift"], offset, **style)
        for rank, index in enumerate(offset.abs().nlargest(n_labels).index):
            dev.annotate(
                data.at[index, "element"], (data.at[index, "matpes_shift"], offset[index]),
                xytext=(6, 6 if rank % 2 else -12), textcoords="offset points",
                fontsize=9, color=color, fontweight="bold",
            )  # fmt: skip
    if everything:
        values = np.concatenate(everything)
        low, high = float(values.min()), float(values.max())
        pad = 0.06 * (high - low or 1.0)
        limits = (low - pad, high + pad)
        ax.plot(limits, limits, color="0.45", linestyle="--", linewidth=1, label="y = x", zorder=1)
        ax.set(xlim=limits, ylim=limits)
        ax.set_aspect("equal", adjustable="box")
        dev.set_xlim(limits)
    ax.set_xlabel("MatPES DFT elements: r2SCAN − PBE (eV/atom)")
    ax.set_ylabel("AtomRef shift: r2SCAN − GGA/GGA+U (eV/atom)")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8.5, frameon=True, framealpha=0.92)
    ax.set_title("AtomRef shift vs MatPES DFT shift", fontsize=12, loc="left")
    dev.axhline(0, color="0.45", linestyle="--", linewidth=1)
    dev.set_xlabel("MatPES DFT elements: r2SCAN − PBE (eV/atom)")
    dev.set_ylabel("AtomRef shift − MatPES shift (eV/atom)")
    dev.grid(alpha=0.25)
    dev.set_title(f"Deviation from MatPES; the {n_labels} largest per series named", fontsize=12, loc="left")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92)
    stamp_source(fig, source)
    return fig


__all__ = [
    "PAPER_HIGH_IMPORTANCE",
    "compact_number",
    "plot_atomrefs",
    "plot_element_importance",
    "plot_element_occurrence",
    "plot_matpes_shift",
    "plot_referenced_energies",
    "plot_relaxed_energies",
    "structure_element_counts",
]
