"""The four experiments' tables: data efficiency, temperature transferability, MD stability,
structure; the study's reported numbers; and what the configuration scaled down.

Inputs are the per-model ``metrics.csv`` files (one row per test temperature) written by the
training jobs and the per-model stability records written by the MD jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError

METRIC_COLUMNS = (
    "method",
    "size",
    "seed",
    "temperature",
    "n_frames",
    "force_mae_mev_per_a",
    "force_rmse_mev_per_a",
    "energy_mae_mev_per_atom",
)
# What the study reports (Röcken & Zavadlav 2025; PAPER.md "Study 2").
PAPER = {
    "sizes": [1, 10, 40, 100, 195],
    "stability": {"runs": 100, "duration_ps": 100, "temperature": 1200, "train_size": 10,
                  "stable": {"transfer": 100, "scratch": 35}},
    "data_efficiency": "transfer with 10 samples beats scratch with 50; gains largest with little data",
    "structure": "transfer shows a negative effect on RDF/ADF despite lower force error",
    "temperatures": "300-3300 K",
}


def read_metrics(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate per-model ``metrics.csv`` files, checking their columns."""
    tables = []
    for path in paths:
        table = pd.read_csv(path)
        missing = [c for c in METRIC_COLUMNS if c not in table.columns]
        if missing:
            raise DataError(f"columns {missing} are missing", file=str(path), field=missing[0])
        tables.append(table)
    if not tables:
        raise DataError("no metrics files")
    return pd.concat(tables, ignore_index=True)


def learning_curves(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The ``curve.csv`` of each Ge training, labelled by its folder ``<method>/n<size>_s<seed>``."""
    tables = []
    for path in paths:
        folder = Path(path).parent
        size, seed = folder.name[1:].split("_s")
        table = pd.read_csv(path)
        table.insert(0, "seed", int(seed))
        table.insert(0, "size", int(size))
        table.insert(0, "method", folder.parent.name)
        tables.append(table)
    columns = ["method", "size", "seed", "step", "train_loss", "val_force_mae_mev_per_a"]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)


def _spread(group: pd.DataFrame, column: str) -> pd.Series:
    values = group[column].to_numpy(dtype=float)
    return pd.Series(
        {
            f"{column}_mean": float(np.mean(values)),
            f"{column}_std": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
            f"{column}_min": float(np.min(values)),
            f"{column}_max": float(np.max(values)),
        }
    )


def summarise(metrics: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, sample standard deviation, min and max over seeds of force and energy MAE."""
    rows = []
    for key, group in metrics.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_seeds"] = group["seed"].nunique()
        if "stopped_early" in group.columns:  # trainings that hit max_steps still improving
            trained = group.drop_duplicates("seed")
            row["not_converged"] = int((~trained["stopped_early"].astype(bool)).sum())
            row["steps_mean"] = float(trained["steps"].mean())
            row["best_step_mean"] = float(trained["best_step"].mean())
        for column in ("force_mae_mev_per_a", "energy_mae_mev_per_atom"):
            row.update(_spread(group, column).to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def data_efficiency(metrics: pd.DataFrame, *, temperature: float) -> pd.DataFrame:
    """Test errors at the training temperature per method and size, spread over seeds."""
    at = metrics[np.isclose(metrics["temperature"], temperature)]
    if at.empty:
        raise DataError(f"no test errors at the training temperature {temperature} K")
    return summarise(at, ["method", "size"])


def temperature_transfer(metrics: pd.DataFrame, *, sizes: Iterable[int]) -> pd.DataFrame:
    """Test errors per method, size and test temperature, spread over seeds."""
    chosen = metrics[metrics["size"].isin(list(sizes))]
    return summarise(chosen, ["method", "size", "temperature"])


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.1f}" if not np.isfinite(std) else f"{mean:.1f} ± {std:.1f}"


def data_efficiency_markdown(table: pd.DataFrame) -> str:
    """Sizes as rows, scratch and transfer force and energy MAE (mean ± std over seeds)."""
    lines = [
        "| Ge training frames | scratch force MAE (meV/Å) | transfer force MAE (meV/Å) "
        "| scratch energy MAE (meV/atom) | transfer energy MAE (meV/atom) | seeds |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, group in table.groupby("size"):
        cells = {}
        for method in ("scratch", "transfer"):
            row = group[group["method"] == method]
            if row.empty:
                cells[method] = ("", "")
                continue
            r = row.iloc[0]
            cells[method] = (
                _fmt(r["force_mae_mev_per_a_mean"], r["force_mae_mev_per_a_std"]),
                _fmt(r["energy_mae_mev_per_atom_mean"], r["energy_mae_mev_per_atom_std"]),
            )
        seeds = int(group["n_seeds"].max())
        lines.append(
            f"| {size} | {cells['scratch'][0]} | {cells['transfer'][0]} | {cells['scratch'][1]} "
            f"| {cells['transfer'][1]} | {seeds} |"
        )
    return "\n".join(lines) + "\n"


def stability_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per method: runs, stable runs, and failures per reason."""
    runs = pd.DataFrame(list(records))
    if runs.empty:
        raise DataError("no stability runs")
    rows = []
    for method, group in runs.groupby("method"):
        reasons = group.loc[~group["stable"], "reason"].value_counts()
        failed_at = group.loc[~group["stable"], "failed_at_ps"]
        rows.append(
            {
                "method": method,
                "runs": len(group),
                "stable": int(group["stable"].sum()),
                "unstable": int((~group["stable"]).sum()),
                "nan": int(reasons.get("nan", 0)),
                "overlap": int(reasons.get("overlap", 0)),
                "runaway": int(reasons.get("runaway", 0)),
                "median_failure_ps": float(failed_at.median()) if len(failed_at) else float("nan"),
                "models": group["seed"].nunique(),
            }
        )
    return pd.DataFrame(rows)


def _finetune_statement(finetune: Mapping[str, Any], validation_size: int) -> str:
    if not finetune["patience"]:
        return f"{finetune['max_steps']} Adam updates of {finetune['batch_size']} frames per Ge training"
    return (
        f"Ge trainings of batch {finetune['batch_size']} until {finetune['patience']} updates bring "
        f"no force-MAE gain of {100 * finetune['min_rel_improvement']:g} % on {validation_size} "
        f"held-out pool frames (validated every "
        f"{finetune['validate_every']}, at most {finetune['max_steps']} updates; best kept)"
    )


def scale_statement(elements: Mapping[str, Any]) -> str:
    """One paragraph saying how this configuration differs from the study's scale."""
    stab = elements["stability"]
    paper = PAPER["stability"]
    parts = []
    if stab["runs"] < paper["runs"] or stab["duration_ps"] < paper["duration_ps"]:
        parts.append(
            f"{stab['runs']} NVT runs of {stab['duration_ps']:g} ps per method instead of "
            f"{paper['runs']} of {paper['duration_ps']} ps"
        )
    seeds = len(elements["data_efficiency"]["seeds"])
    parts.append(f"{seeds} seed{'s' if seeds != 1 else ''} per training size")
    parts.append(
        _finetune_statement(elements["finetune"], elements["validation_size"])
        + f", {elements['pretrain']['max_steps']} for the Si pre-training on "
        f"{elements['pretrain_pool_size']} frames"
    )
    parts.append(
        f"{elements['test_size']} test frames per temperature at "
        + ", ".join(f"{t:g}" for t in sorted(set(elements['test_temperatures']) | {elements['train_temperature']}))
        + " K"
    )
    cell = 8 * elements["sampling"]["cell_repeats"] ** 3
    if cell != 64:
        parts.append(f"{cell}-atom cells instead of 64")
    scaled = stab["runs"] < paper["runs"] or stab["duration_ps"] < paper["duration_ps"] or cell != 64
    head = "Scaled down from the paper: " if scaled else "Paper scale: "
    return head + "; ".join(parts) + "."
