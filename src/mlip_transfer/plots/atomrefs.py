"""Figures of the atomic reference energies: the paper's Fig. 2a (AtomRefs per element),
Fig. 2b (energies before and after referencing) and the check of the refit shift against MatPES.

Every function takes the tables the energy-scale scripts write (``<output>/energy_scale/``),
returns a Figure and stamps the data source on it.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pymatgen.core import Element

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import display_name
from mlip_transfer.energy_scale.atomref import N_ELEMENTS
from mlip_transfer.energy_scale.correlation import PAPER_RHO
from mlip_transfer.plots.energy_axes import (
    DIFF_COLOR,
    GGA,
    R2SCAN,
    REFIT_COLOR,
    SHIPPED_COLOR,
    energy_scatter,
    finite_rows,
    info_box,
)
from mlip_transfer.plots.style import functional_color, stamp_source


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
        "scaled": "scaled: each functional's refit AtomRef subtracted (in-sample)",
    }
    for spec, kind in zip(grid, ("raw", "scaled")):
        data = finite_rows(referenced, f"{kind}_r2scan", f"{kind}_gga")
        x, y = data[f"{kind}_r2scan"].to_numpy(), data[f"{kind}_gga"].to_numpy()
        ax = energy_scatter(
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
        info_box(ax, f"ρ = {_rho_text(stats)}{ci}\nn = {len(x):,}", loc="upper left", fontsize=10)
        if kind == "scaled":
            paper = correlation.get("paper", PAPER_RHO)
            lines = [
                "Pearson ρ, raw → scaled",
                f"paper (MP):        {paper['raw']:.4f} → {paper['scaled']:.4f}",
            ]
            shipped = correlation.get("shipped")
            if shipped:  # the headline: fixed AtomRefs, as the paper's, not fitted to this data
                lines.append(
                    f"shipped AtomRefs:  {_rho_text(shipped.get('raw'))} → "
                    f"{_rho_text(shipped.get('scaled'))}  (headline)"
                )
            lines.append(
                f"refit (in-sample): {_rho_text(refit.get('raw'))} → {_rho_text(refit.get('scaled'))}"
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
