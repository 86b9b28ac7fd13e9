"""Energy-scale figures of the paper's Fig. 1: element occurrence (1a), relaxed energies of the
two functionals (1b) and the elements driving their formation-energy difference (1c/1d).

Every function takes the tables the energy-scale scripts write (``<output>/energy_scale/``),
returns a Figure and stamps the data source on it. Fig. 2 and the MatPES check are in
:mod:`mlip_transfer.plots.atomrefs`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import display_name
from mlip_transfer.energy_scale.correlation import PAPER_RHO, pearson
from mlip_transfer.plots.energy_axes import GGA, R2SCAN, energy_scatter, finite_rows, info_box
from mlip_transfer.plots.periodic_table import ptable_heatmap
from mlip_transfer.plots.style import stamp_source

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
    data = finite_rows(referenced, "raw_r2scan", "raw_gga")
    x, y = data["raw_r2scan"].to_numpy(), data["raw_gga"].to_numpy()
    fig = plt.figure(figsize=(7.2, 7.2))
    spec = fig.add_gridspec(1, 1)[0]
    ax = energy_scatter(
        fig,
        spec,
        x,
        y,
        xlabel=f"{display_name(R2SCAN)} relaxed energy (eV/atom)",
        ylabel=f"{display_name(GGA)} relaxed energy (eV/atom)",
    )
    shift = x - y
    rho = pearson(x, y) if len(x) > 2 else float("nan")
    info_box(
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
