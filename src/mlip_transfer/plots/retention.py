"""Figures and tables of the retention report (:mod:`mlip_transfer.transfer.retention`): each
element's dimer curve per model beside the source model's, and one row of numbers per model."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.style import stamp_source
from mlip_transfer.plots.transfer import METHOD_COLORS, label


def load_reports(evaluation_dir: str | Path, models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Model -> its ``retention.json``, in the order of ``models``."""
    folder = Path(evaluation_dir)
    return {m: json.loads((folder / m / "retention.json").read_text()) for m in models}


def load_curves(evaluation_dir: str | Path, models: Sequence[str]) -> pd.DataFrame:
    """Every model's ``dimers.csv`` stacked, with a ``model`` column."""
    folder = Path(evaluation_dir)
    return pd.concat([pd.read_csv(folder / m / "dimers.csv").assign(model=m) for m in models],
                     ignore_index=True)


def retention_table(
    reports: dict[str, dict[str, Any]], flags: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per model: errors against the source model's labels (relative energy, raw energy,
    force) and against the source-functional frames, dimer walls lost (with the elements), NVT
    runs stable (with the first failure), and Table 1's flags of the model (``flags``: model
    -> text; a flagged model is one that training barely moved, not a method's result)."""
    flags = flags or {}
    rows = []
    for model, report in reports.items():
        labels, frames = report.get("source_labels") or {}, report.get("source_frames") or {}
        dimers, nvt = report["dimers"], report["nvt"]
        rows.append({
            "model": label(model),
            "ΔE rel. vs source (meV/atom)": labels.get("relative_energy_mae_mev"),
            "E vs source (meV/atom)": labels.get("energy_mae_mev"),
            "F vs source (meV/Å)": labels.get("force_mae_mev"),
            "ΔE rel. vs source-fn. frames": frames.get("relative_energy_mae_mev"),
            "F vs source-fn. frames": frames.get("force_mae_mev"),
            "walls lost": f"{dimers['n_lost']}/{dimers['n_elements']}",
            "lost (reason)": ", ".join(f"{el} ({why})" for el, why in dimers["lost"].items()),
            "NVT stable": f"{nvt['n_stable']}/{nvt['n_runs']}",
            "first failure (ps)": nvt.get("first_failure_ps"),
            "Table 1 flags": flags.get(model, ""),
        })  # fmt: skip
    return pd.DataFrame(rows)


def plot_dimers(
    curves: pd.DataFrame,
    reports: dict[str, dict[str, Any]],
    *,
    source: DataSource,
    ylim: tuple[float, float] = (-10.0, 40.0),
) -> Figure:
    """One panel per element: each model's dimer energy relative to its value at the longest
    distance, the source model's dashed in black (its own report, ``is_source_model``, is not
    drawn again); a panel's title names the models that lost the wall there."""
    elements = list(dict.fromkeys(curves["element"]))
    n_cols = min(4, max(1, len(elements)))
    n_rows = math.ceil(len(elements) / n_cols) or 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols, 2.7 * n_rows + 0.6),
                             squeeze=False, sharex=True)
    first = curves[curves["model"] == curves["model"].iloc[0]]
    for ax, element in zip(axes.flat, elements):
        reference = first[first["element"] == element]
        far = reference["source_energy"].iloc[-1]
        source_name = next(iter(reports.values()))["source_model"]
        ax.plot(reference["distance"], reference["source_energy"] - far, "k--", lw=1.5,
                label=f"source model ({source_name})")
        for model, rows in curves[curves["element"] == element].groupby("model", sort=False):
            if reports[model].get("is_source_model"):
                continue  # the dashed curve
            ax.plot(rows["distance"], rows["relative_energy"], lw=1.2, label=label(model),
                    color=METHOD_COLORS.get(model, None))
        lost = [label(m) for m, r in reports.items() if element in r["dimers"]["lost"]]
        ax.set_title(element + (f" — lost: {', '.join(lost)}" if lost else ""), fontsize=8,
                     color="#8b0000" if lost else "black")
        ax.set_ylim(*ylim)
        ax.axhline(0, color="#999999", lw=0.5)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(elements):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("X–X distance (Å)")
    for ax in axes[:, 0]:
        ax.set_ylabel("E − E(r_max) (eV)")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=min(4, len(names)), fontsize=8,
               bbox_to_anchor=(0.5, 1.0))
    fig.suptitle("Homonuclear dimers: does each model keep the source model's repulsive wall?",
                 fontsize=11, y=1.0 + 0.04 * np.ceil(len(names) / 4))
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    stamp_source(fig, source)
    return fig
