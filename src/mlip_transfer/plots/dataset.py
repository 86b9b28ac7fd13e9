"""Dataset summary figures: which elements, how many frames per material, which energies."""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import display_name
from mlip_transfer.plots.periodic_table import ptable_heatmap
from mlip_transfer.plots.style import functional_color, stamp_source


def element_counts(frames: pd.DataFrame) -> Counter:
    """Number of distinct materials containing each element (from a frame table)."""
    counts: Counter = Counter()
    for elements in frames.drop_duplicates("material_id")["elements"]:
        counts.update(elements)
    return counts


def plot_element_table(counts: Counter, source: DataSource) -> Figure:
    """Periodic table coloured by how many materials contain each element."""
    ax = ptable_heatmap(
        {el: float(n) for el, n in counts.items()},
        label="materials containing the element",
        fmt="{:.0f}",
        title=f"Element occurrence: {len(counts)} elements",
    )
    fig = ax.figure
    stamp_source(fig, source)
    return fig


def plot_dataset_summary(frames: pd.DataFrame, materials: pd.DataFrame, source: DataSource) -> Figure:
    """Three panels: frames per material, frame energies and relaxed formation energies per functional.

    Args:
        frames: One row per frame with ``material_id``, ``functional``, ``energy_per_atom``,
            ``n_atoms`` and ``split``.
        materials: The canonical per-material table.
        source: Data provenance, stamped on the figure.
    """
    functionals = sorted(frames["functional"].unique())
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))

    ax = axes[0]
    per_material = frames.groupby(["functional", "material_id"]).size()
    top = int(per_material.max())
    bins = np.arange(0.5, top + 1.5)
    for functional in functionals:
        ax.hist(
            per_material.loc[functional],
            bins=bins,
            alpha=0.6,
            color=functional_color(functional),
            label=f"{display_name(functional)} ({per_material.loc[functional].sum()} frames)",
        )
    ax.set(xlabel="frames per material", ylabel="materials", title="a  Frames per material")
    ax.legend(frameon=False)

    ax = axes[1]
    for functional in functionals:
        energies = frames.loc[frames["functional"] == functional, "energy_per_atom"]
        ax.hist(
            energies,
            bins=60,
            alpha=0.6,
            color=functional_color(functional),
            label=f"{display_name(functional)}: mean {energies.mean():.2f} eV/atom",
        )
    ax.set(xlabel="energy per atom (eV/atom)", ylabel="frames", title="b  Total energies of all frames")
    ax.legend(frameon=False, fontsize=8)

    ax = axes[2]
    compounds = materials[~materials["is_elemental_reference"]]
    for functional in functionals:
        values = compounds.loc[compounds["functional"] == functional, "formation_energy_per_atom"]
        ax.hist(values, bins=40, alpha=0.6, color=functional_color(functional), label=display_name(functional))
    ax.set(
        xlabel="formation energy (eV/atom)",
        ylabel="materials",
        title="c  Relaxed formation energies",
    )
    ax.legend(frameon=False)
    counts = frames.groupby("split")["material_id"].nunique().reindex(["train", "val", "test"]).fillna(0)
    fig.suptitle(
        f"{frames['material_id'].nunique()} materials, {len(frames)} frames; split by material: "
        + ", ".join(f"{name} {int(n)}" for name, n in counts.items()),
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    stamp_source(fig, source)
    return fig
