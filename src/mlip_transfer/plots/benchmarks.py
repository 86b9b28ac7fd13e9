"""Figures of the benchmarks: Fig. 5 (density against experiment) and Fig. 6 (scaling law)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.density.benchmark import RATIO_RANGE, REFERENCE_WORDS
from mlip_transfer.plots.style import stamp_source
from mlip_transfer.plots.transfer import METHOD_COLORS, label
from mlip_transfer.scaling.laws import TARGETS, PowerLawFit, scratch_catches_up

TARGET_TITLES = {"energy": "energy MAE (meV/atom)", "force": "force MAE (meV/Å)"}


def _plain_log_ticks(axis, limits) -> None:
    """Plain numbers on a log axis (60, 80, 100, not 10^2 alone): every integer multiple within
    a decade when the axis spans less than one, else 1, 2 and 5 per decade."""
    low, high = sorted(limits)
    subs = np.arange(1, 10) if high / max(low, 1e-12) < 10 else (1, 2, 5)
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_scaling_law(results: pd.DataFrame, fits: Mapping, *, source: DataSource) -> Figure:
    """Fig. 6: validation MAE against training-set size in log-log, seeds as points, mean as
    markers with the seed range, and the fitted lines above the threshold.

    The zero point (size 0, the untrained model) cannot sit on a log axis: it is drawn as a
    dashed horizontal line.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.6))
    threshold = fits["threshold"]
    for ax, target in zip(axes, TARGETS, strict=True):
        column = TARGETS[target]
        entry = fits["targets"][target]
        for method, group in results.groupby("method", sort=False):
            color = METHOD_COLORS.get(method, "#777777")
            zero = group[group["size"] == 0]
            trained = group[group["size"] > 0]
            if not zero.empty:
                ax.axhline(zero[column].mean(), color=color, ls=":", lw=1,
                           label=f"{label(method)}, untrained ({zero[column].mean():.0f})")
            stats = trained.groupby("size")[column].agg(["mean", "min", "max"]).reset_index()
            ax.scatter(trained["size"], trained[column], color=color, s=12, alpha=0.4)
            ax.errorbar(stats["size"], stats["mean"],
                        yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                        fmt="o", color=color, ms=5, capsize=3)
            fit = entry["fits"].get(method)
            if fit:
                line = PowerLawFit(**fit)
                xs = np.geomspace(max(threshold, stats["size"].min()), stats["size"].max(), 50)
                ci = ("" if np.isnan(line.slope_ci_low)
                      else f" [{line.slope_ci_low:.2f}, {line.slope_ci_high:.2f}]")
                ax.plot(xs, line.predict(xs), "-", color=color,
                        label=f"{label(method)}: slope {line.slope:.3f}{ci}, R² {line.r2:.3f}")
        paper = fits["paper"][target]
        ax.text(0.01, 1.01,
                f"paper (MP-r2SCAN, x > {fits['paper']['threshold']:,}): slopes scratch "
                f"{paper['1_scratch']['slope']}, transfer {paper['4_refit_atomref']['slope']}; "
                f"cross at {paper['crossover']:,}",
                transform=ax.transAxes, fontsize=7.5, color="#444444")
        scratch_fit = entry["fits"].get(fits.get("scratch_method", "1_scratch"))
        for method, size in entry.get("crossover", {}).items():
            transfer_fit = entry["fits"].get(method)
            if size is None or not scratch_fit or not transfer_fit:
                words = "no crossover"
            else:
                catches = scratch_catches_up(PowerLawFit(**scratch_fit), PowerLawFit(**transfer_fit))
                words = f"lines meet at {size:.3g}; Scratch {'catches' if catches else 'never catches'} up"
            # An empty handle puts the words in the legend, below the axes, clear of the data.
            ax.plot([], [], " ", label=f"crossover with {label(method)}: {words}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis, ax.get_ylim())
        sizes = sorted(results.loc[results["size"] > 0, "size"].unique())
        if len(sizes) <= 8:
            ax.set_xticks(sizes, [f"{size:g}" for size in sizes])
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            _plain_log_ticks(ax.xaxis, ax.get_xlim())
        ax.set(xlabel=f"training frames{_steps_words(results)}",
               ylabel=f"validation {TARGET_TITLES[target]}",
               title=f"{'ab'[list(TARGETS).index(target)]}  {target}\n")
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    # Sizes where the methods' seeds overlap (scaling.jobs.seed_spread_flags): no ranking there.
    flagged = sorted({(f["target"], f["size"]) for f in fits.get("flags", [])})
    if flagged:
        fig.text(0.01, 0.075, "[flagged] indistinguishable within the seeds' spread at: "
                 + ", ".join(f"{target} n={size:g}" for target, size in flagged),
                 fontsize=7.5, color="#8b0000", va="top")
    fig.tight_layout(rect=(0, 0.04 + 0.025 * bool(flagged), 1, 1))
    stamp_source(fig, source)
    return fig


def _steps_words(results: pd.DataFrame) -> str:
    """How much training each job had, for the x label: compute-matched or not."""
    steps = sorted(results.loc[results["size"] > 0, "steps"].dropna().unique()) if "steps" in results else []
    if len(steps) == 1:
        n = int(steps[0])
        return f" (compute-matched: {n} optimiser step{'s' if n != 1 else ''} each)"
    if steps:
        return f" ({int(steps[0])}-{int(steps[-1])} optimiser steps per job)"
    return ""


def plot_density(table: pd.DataFrame, summary: pd.DataFrame, *, source: DataSource,
                 reference: str) -> Figure:
    """Fig. 5: experimental / predicted density per model as a box with every solid as a dot,
    the paper's band 0.8–1.2 shaded, MAE and failed relaxations beside each row; right:
    predicted against experimental density. Models with ``summary["flags"]`` (no relaxation
    step, or a ratio at the strained start) are marked "[flagged]" and their flags listed."""
    models = list(summary["model"])
    flags = dict(zip(models, summary["flags"] if "flags" in summary else [""] * len(models),
                     strict=True))
    flagged = {m for m, f in flags.items() if isinstance(f, str) and f}
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13.5, 0.55 * len(models) + 3), gridspec_kw={"width_ratios": [1.5, 1]}
    )
    left.axvspan(*RATIO_RANGE, color="#eeeeee", zorder=0)
    left.axvline(1.0, color="#444444", lw=0.8, zorder=1)
    rng = np.random.default_rng(0)
    for row_index, model in enumerate(models):
        part = table[(table["model"] == model) & ~table["failed"]]
        stats = summary[summary["model"] == model].iloc[0]
        color = METHOD_COLORS.get(model, "#777777")
        y = len(models) - 1 - row_index
        ratios = part["ratio"].to_numpy(float)
        if len(ratios):
            left.boxplot(ratios, positions=[y], vert=False, widths=0.5, showfliers=False,
                         medianprops={"color": color}, boxprops={"color": color},
                         whiskerprops={"color": color}, capprops={"color": color})
            left.scatter(ratios, y + rng.uniform(-0.18, 0.18, len(ratios)), s=9, color=color,
                         alpha=0.7, zorder=3)
        left.text(1.01, y, f"MAE {stats['density_mae']:.3f} g/cm³\n{int(stats['n_failed'])} failed",
                  transform=left.get_yaxis_transform(), va="center", fontsize=8)
        right.scatter(part["density_exp"], part["density_pred"], s=14, color=color, alpha=0.8,
                      label=label(model))
    left.set_yticks(range(len(models)), [label(m) + (" [flagged]" if m in flagged else "")
                                         for m in reversed(models)], fontsize=8)
    words = REFERENCE_WORDS.get(reference, "reference")
    left.set(xlabel=f"{words} / predicted density (> 1: predicted too light)",
             title=f"a  density ratio per model ({reference}: {words} reference)")
    left.grid(alpha=0.3, axis="x")
    high = float(np.nanmax(table[["density_exp", "density_pred"]].to_numpy(float))) * 1.05
    right.plot([0, high], [0, high], color="#444444", lw=0.8)
    right.set(xlim=(0, high), ylim=(0, high), xlabel=f"{words} density (g/cm³)",
              ylabel="predicted density (g/cm³)", title="b  predicted against experiment")
    right.grid(alpha=0.3)
    right.legend(frameon=False, fontsize=7.5)
    notes = [f"[flagged] {label(m)}: {flags[m]}" for m in models if m in flagged]
    if notes:
        fig.text(0.01, 0.075, "\n".join(notes), fontsize=7.5, color="#8b0000", va="top")
    fig.tight_layout(rect=(0, 0.04 + 0.025 * len(notes), 1, 1))
    stamp_source(fig, source)
    return fig
