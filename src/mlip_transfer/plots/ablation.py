"""Figure of the gradient ablation: which setting gives the paper's ≥ 10x ratio (Fig. 3a)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.style import stamp_source
from mlip_transfer.transfer.ablation_summary import (
    LOSS_WORDS,
    PAPER_RATIO,
    STAT_WORDS,
    dynamic_ratio_per_step,
)

STAT_MARKERS = {"grad_norm": "o", "grad_abs_mean": "s", "grad_abs_signed_mean": "^"}
LOSS_COLORS = {"huber_0.1": "#D55E00", "huber_1": "#E69F00", "mse": "#0072B2"}
ATOMREF_WORDS = {"gga": "GGA (M3)", "residual": "residual fit (M4r)",
                 "shipped_r2scan": "shipped MP-r2SCAN"}


def load_ablation(ablation_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ablation's ``ablation.json`` and its per-variant ``gradients.csv``."""
    folder = Path(ablation_dir)
    return json.loads((folder / "ablation.json").read_text()), pd.read_csv(folder / "gradients.csv")


def _static_panel(ax: plt.Axes, ratios: pd.DataFrame) -> None:
    gga = ratios[(ratios["part"] == "static") & (ratios["atomref"] == "gga")]
    settings = gga[["loss", "terms", "batch_size"]].drop_duplicates().sort_values(
        ["loss", "terms", "batch_size"]).to_records(index=False).tolist()
    x = {s: i for i, s in enumerate(settings)}
    for stat, marker in STAT_MARKERS.items():
        rows = gga[gga["statistic"] == stat]
        xs = [x[(r.loss, r.terms, r.batch_size)] + (list(STAT_MARKERS).index(stat) - 1) * 0.18
              for r in rows.itertuples()]
        colors = [LOSS_COLORS.get(loss, "0.4") for loss in rows["loss"]]
        ax.scatter(xs, rows["median_ratio"], marker=marker, c=colors, s=34, zorder=3,
                   label=STAT_WORDS[stat])
        ax.vlines(xs, rows["min_ratio"], rows["median_ratio"], colors=colors, lw=1, alpha=0.6)
    ax.axhline(PAPER_RATIO, color="k", ls="--", lw=1)
    ax.text(len(settings) - 0.5, PAPER_RATIO * 1.15, "paper: ≥ 10x", ha="right", fontsize=8)
    ax.axhline(1, color="0.6", lw=0.8)
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels([f"{LOSS_WORDS.get(l, l)}\n{t}, b{b}" for l, t, b in settings],
                       rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("M3 / M4 gradient (median over layers;\nline down to the smallest layer)")
    ax.set_title("a  at the source GNN, GGA vs Eq. 2 AtomRef", fontsize=10, loc="left")
    ax.legend(fontsize=7, title="statistic", title_fontsize=7, loc="upper left")


def _atomref_panel(ax: plt.Axes, ratios: pd.DataFrame) -> None:
    rows = ratios[(ratios["part"] == "static") & (ratios["terms"] == "full")
                  & (ratios["statistic"] == "grad_norm")]
    rows = rows[rows["batch_size"] == rows["batch_size"].min()]
    atomrefs = [a for a in ATOMREF_WORDS if a in set(rows["atomref"])]
    losses = [loss for loss in LOSS_COLORS if loss in set(rows["loss"])]
    width = 0.8 / max(1, len(losses))
    for j, loss in enumerate(losses):
        part = rows[rows["loss"] == loss].set_index("atomref").reindex(atomrefs)
        ax.bar(np.arange(len(atomrefs)) + (j - (len(losses) - 1) / 2) * width, part["median_ratio"],
               width, color=LOSS_COLORS[loss], label=LOSS_WORDS[loss])
    ax.axhline(PAPER_RATIO, color="k", ls="--", lw=1)
    ax.axhline(1, color="0.6", lw=0.8)
    ax.set_xticks(range(len(atomrefs)))
    ax.set_xticklabels([ATOMREF_WORDS[a] for a in atomrefs], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("gradient norm / Eq. 2 AtomRef's")
    ax.set_title("b  each AtomRef over Eq. 2 (full loss, norm)", fontsize=10, loc="left")
    ax.legend(fontsize=7)


def _dynamic_panel(ax: plt.Axes, table: pd.DataFrame) -> None:
    per_step = dynamic_ratio_per_step(table)
    for loss, part in per_step.groupby("loss"):
        ax.plot(part["step"], part["ratio"], "o-", ms=3, color=LOSS_COLORS.get(loss, "0.4"),
                label=LOSS_WORDS.get(loss, loss))
    ax.axhline(PAPER_RATIO, color="k", ls="--", lw=1)
    ax.axhline(1, color="0.6", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("Adam step (batch 16, full loss)")
    ax.set_ylabel("M3 / M4 gradient norm")
    ax.set_title("c  while training", fontsize=10, loc="left")
    if len(per_step):
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no dynamic part (dynamic_steps: 0)", ha="center", transform=ax.transAxes)


def plot_gradient_ablation(summary: dict[str, Any], table: pd.DataFrame, *, source: DataSource) -> Figure:
    """Three panels: the static ratio of every setting, each AtomRef, and the ratio over Adam
    steps; the title is the ablation's computed sentence."""
    ratios = pd.DataFrame(summary.get("ratios", []))
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    if len(ratios):
        _static_panel(axes[0], ratios)
        _atomref_panel(axes[1], ratios)
    _dynamic_panel(axes[2], table)
    fig.suptitle("\n".join(textwrap.wrap(summary["sentence"], 150)), fontsize=9.5, y=1.02)
    fig.tight_layout()
    stamp_source(fig, source)
    return fig
