"""Scaling laws of validation error with training-set size (paper Fig. 6).

Each (method, size, seed) job gives one validation MAE. Above a size threshold the errors are
fitted with a line in log10-log10 space, ``log10(MAE) = intercept + slope * log10(N)``, once on
the points of every seed together (the slope and R² reported) and once per seed (the spread of
slopes across seeds gives the confidence interval; the paper reports single runs).

From two fitted lines (Scratch and Transfer):

* the **crossover** is the size where the lines meet; beyond it Scratch would win;
* the **data-efficiency factor** at size N is how many points Scratch needs to reach the error
  Transfer has with N points, divided by N (read off Scratch's fitted line).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import ConfigError, DataError

# The paper's fits (Fig. 6; x > 1,000 points; MP-r2SCAN, single runs).
PAPER_SCALING = {
    "energy": {
        "1_scratch": {"slope": -0.615, "r2": 0.994},
        "4_refit_atomref": {"slope": -0.301, "r2": 0.964},
        "crossover": 719_996,
    },
    "force": {
        "1_scratch": {"slope": -0.394, "r2": 0.978},
        "4_refit_atomref": {"slope": -0.134, "r2": 0.997},
        "crossover": 317_475,
    },
    "threshold": 1000,
    "note": "transfer with 1K points beats scratch with > 10K",
}
TARGETS = {"energy": "energy_mae_mev_per_atom", "force": "force_mae_mev_per_a"}
RESULT_COLUMNS = ("method", "size", "seed", "epochs", "steps", *TARGETS.values())


@dataclass(frozen=True, kw_only=True)
class PowerLawFit:
    """A line in log10-log10 space fitted to (size, MAE) points."""

    slope: float
    intercept: float
    r2: float
    n_points: int
    n_seeds: int
    slope_ci_low: float = math.nan
    slope_ci_high: float = math.nan

    def __post_init__(self) -> None:
        # scaling_fits.json is standard JSON, so an undefined value (one seed: no interval) is
        # stored as null; a fit read back from it gets NaN again.
        for name in ("r2", "slope_ci_low", "slope_ci_high"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, math.nan)

    def predict(self, size: float | np.ndarray) -> float | np.ndarray:
        """Fitted MAE at ``size`` training points."""
        return 10 ** (self.intercept + self.slope * np.log10(size))

    def size_for(self, mae: float) -> float:
        """Training points at which the fitted line reaches ``mae`` (inf if it never does)."""
        if self.slope == 0 or not mae > 0:
            return math.inf
        return float(10 ** ((math.log10(mae) - self.intercept) / self.slope))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def epochs_for_size(size: int, *, epochs: int, min_steps: int, batch_size: int) -> int:
    """Epochs of one job: at least ``epochs``, more for small sets so every job takes at least
    ``min_steps`` optimiser steps (a fixed epoch count would give a 10-point job one step)."""
    if size < 1:
        return 0
    batches = math.ceil(size / batch_size)
    return max(epochs, math.ceil(min_steps / batches))


def schedule_for_size(size: int, *, scaling: Mapping[str, Any], batch_size: int) -> tuple[int, int]:
    """Epochs and optimiser steps of one job.

    With ``scaling.steps`` set (compute-matched), every job takes exactly that many steps
    whatever its size: a large set is seen less than once, a small one many times. Without
    it, :func:`epochs_for_size` (at least ``epochs``, at least ``min_steps``) and every
    batch of those epochs.
    """
    batches = math.ceil(size / batch_size) if size > 0 else 0
    if size < 1:
        return 0, 0
    matched = scaling.get("steps")
    if matched:
        return math.ceil(matched / batches), int(matched)
    epochs = epochs_for_size(size, epochs=scaling["epochs"], min_steps=scaling["min_steps"],
                             batch_size=batch_size)
    return epochs, epochs * batches


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats  # here, not at the top: scaling_point jobs and plots never fit

    fit = stats.linregress(x, y)
    return float(fit.slope), float(fit.intercept), float(fit.rvalue**2)


def fit_power_law(
    results: pd.DataFrame, *, method: str, target: str, threshold: int
) -> PowerLawFit | None:
    """Fit ``target`` MAE of one method against size, for sizes ``>= threshold``.

    Args:
        results: One row per job with the columns of :data:`RESULT_COLUMNS`.
        method: Method label.
        target: ``"energy"`` or ``"force"``.
        threshold: Smallest size in the fit (the paper: 1,000).

    Returns:
        The fit, or ``None`` when fewer than two distinct sizes lie above the threshold. The
        slope's 95 % interval comes from the per-seed slopes (Student t over seeds); it is NaN
        with one seed.
    """
    if target not in TARGETS:
        raise ConfigError(f"unknown scaling target {target!r}; expected one of {sorted(TARGETS)}")
    column = TARGETS[target]
    rows = results[(results["method"] == method) & (results["size"] >= threshold)]
    rows = rows[np.isfinite(rows[column]) & (rows[column] > 0)]
    if rows["size"].nunique() < 2:
        return None
    x, y = np.log10(rows["size"].to_numpy(float)), np.log10(rows[column].to_numpy(float))
    slope, intercept, r2 = _line(x, y)
    seed_slopes = []
    for _, group in rows.groupby("seed"):
        if group["size"].nunique() >= 2:
            seed_slopes.append(
                _line(np.log10(group["size"].to_numpy(float)), np.log10(group[column].to_numpy(float)))[0]
            )
    low = high = math.nan
    if len(seed_slopes) >= 2:
        from scipy import stats

        mean, sem = float(np.mean(seed_slopes)), float(stats.sem(seed_slopes))
        half = float(stats.t.ppf(0.975, len(seed_slopes) - 1)) * sem
        low, high = mean - half, mean + half
    return PowerLawFit(
        slope=slope,
        intercept=intercept,
        r2=r2,
        n_points=len(rows),
        n_seeds=int(rows["seed"].nunique()),
        slope_ci_low=low,
        slope_ci_high=high,
    )


def crossover_size(a: PowerLawFit | None, b: PowerLawFit | None) -> float | None:
    """Size at which two fitted lines meet; ``None`` if either is missing or they are parallel."""
    if a is None or b is None or math.isclose(a.slope, b.slope):
        return None
    return float(10 ** ((b.intercept - a.intercept) / (a.slope - b.slope)))


def scratch_catches_up(scratch: PowerLawFit, transfer: PowerLawFit) -> bool:
    """Whether Scratch's line is the steeper one, so that it reaches Transfer at larger N."""
    return scratch.slope < transfer.slope


def crossover_meaning(
    scratch: PowerLawFit | None, transfer: PowerLawFit | None, *, fitted_sizes: Sequence[float]
) -> str:
    """One sentence on what the crossover of the two fitted lines means for this run.

    The paper's crossover is where Scratch, whose line is steeper, catches up with Transfer.
    Lines also meet when Scratch's is the flatter one; then Scratch never catches up at larger
    N, and the meeting point only says where Scratch would have been better, usually far below
    the sizes trained on. Both cases say whether the point lies inside the fitted sizes.
    """
    size = crossover_size(scratch, transfer)
    if size is None:
        return ("no crossover: a fit is missing (fewer than two sizes above the threshold) "
                "or the lines are parallel")
    lo, hi = (min(fitted_sizes), max(fitted_sizes)) if len(fitted_sizes) else (math.nan, math.nan)
    if lo <= size <= hi:
        where = "inside the fitted sizes"
    else:
        where = f"outside the fitted sizes {lo:g}-{hi:g}, an extrapolation"
    if scratch_catches_up(scratch, transfer):
        return f"Scratch's steeper line catches up with Transfer at N = {size:.3g} ({where})"
    return (
        f"the lines meet at N = {size:.3g} ({where}), but Scratch's line "
        f"(slope {scratch.slope:.3f}) is not steeper than Transfer's ({transfer.slope:.3f}): "
        "Scratch never catches up at larger N"
    )


def data_efficiency(
    results: pd.DataFrame,
    *,
    scratch_fit: PowerLawFit | None,
    transfer_method: str,
    target: str,
) -> pd.DataFrame:
    """For each size of the transfer method: the points Scratch needs for the same error.

    Transfer's error at N is its mean measured MAE over seeds; Scratch's size is read off its
    fitted line (an extrapolation where it lies outside the sizes Scratch was trained on, which
    the ``extrapolated`` column says). A Scratch line that does not fall with N gives no size:
    ``scratch_size_needed`` and ``factor`` are then NaN and ``defined`` is False, since reading
    a flat or rising line backwards would claim Scratch needs *fewer* frames. The same holds
    when the seeds' 95 % slope interval reaches zero: any size, however large, is then as
    consistent with the data as the point estimate.
    """
    column = TARGETS[target]
    rows = results[(results["method"] == transfer_method) & (results["size"] > 0)]
    table = rows.groupby("size")[column].mean().reset_index(name="transfer_mae")
    # `not ci_high >= 0` also admits a NaN interval (one seed): then the slope alone decides.
    falls = scratch_fit is not None and scratch_fit.slope < 0 and not scratch_fit.slope_ci_high >= 0
    if table.empty or not falls:
        return table.assign(scratch_size_needed=np.nan, factor=np.nan, extrapolated=True, defined=False)
    sizes = results.loc[results["method"] != transfer_method, "size"]
    lo, hi = (sizes.min(), sizes.max()) if len(sizes) else (np.nan, np.nan)
    needed = np.array([scratch_fit.size_for(m) for m in table["transfer_mae"]])
    return table.assign(
        scratch_size_needed=needed,
        factor=needed / table["size"].to_numpy(float),
        extrapolated=(needed < lo) | (needed > hi),
        defined=True,
    )


def measured_efficiency_bound(
    results: pd.DataFrame, *, scratch_method: str, transfer_method: str, target: str,
    floor_tolerance: float = 0.01,
) -> pd.DataFrame:
    """For each Transfer size N: the largest measured Scratch size M such that Transfer at N
    beats Scratch at *every* measured size up to M (mean over seeds), read off the points
    and never off a fitted line.

    ``factor_lower_bound`` = M / N is a lower bound on the data efficiency ("Transfer at N
    beats Scratch at every size up to M"); ``at_largest_scratch`` says M is the largest size
    Scratch was trained on, so the true factor may be much larger. ``scratch_at_floor`` flags
    an M where Scratch's error is within ``floor_tolerance`` of its untrained zero point (the
    AtomRef-only error): Scratch did not learn there, so beating it says little.
    """
    column = TARGETS[target]
    means = results.groupby(["method", "size"])[column].mean()
    if scratch_method not in means.index.get_level_values(0):
        return pd.DataFrame(columns=["size", "transfer_mae", "beats_scratch_up_to",
                                     "factor_lower_bound", "at_largest_scratch", "scratch_at_floor"])
    scratch = means[scratch_method]
    floor = scratch.get(0, np.nan)
    trained = scratch[scratch.index > 0].sort_index()
    rows = []
    for size, mae in means.get(transfer_method, pd.Series(dtype=float)).items():
        if size <= 0:
            continue
        beaten = [m for m in trained.index if trained[m] > mae]
        up_to = None
        for m in trained.index:  # every size up to M beaten, not only some
            if trained[m] <= mae:
                break
            up_to = m
        at_floor = bool(up_to is not None and np.isfinite(floor)
                        and abs(trained[up_to] - floor) <= floor_tolerance * floor)
        rows.append({"size": int(size), "transfer_mae": float(mae),
                     "beats_scratch_up_to": None if up_to is None else int(up_to),
                     "factor_lower_bound": np.nan if up_to is None else up_to / size,
                     "at_largest_scratch": bool(up_to is not None and up_to == trained.index[-1]),
                     "scratch_at_floor": at_floor, "n_beaten": len(beaten)})
    return pd.DataFrame(rows)


def collect_results(rows: Iterable[Mapping]) -> pd.DataFrame:
    """Job results (dicts with the keys of :data:`RESULT_COLUMNS`) as one checked table."""
    table = pd.DataFrame(list(rows))
    missing = [c for c in RESULT_COLUMNS if c not in table.columns]
    if table.empty or missing:
        raise DataError(f"scaling results lack columns {missing or list(RESULT_COLUMNS)}")
    return table.sort_values(["method", "size", "seed"]).reset_index(drop=True)


def summarize(
    results: pd.DataFrame,
    *,
    scratch_method: str,
    transfer_methods: Sequence[str],
    threshold: int,
) -> dict:
    """Fits, crossovers and data-efficiency factors of every target (JSON-serialisable)."""
    summary: dict = {"threshold": threshold, "scratch_method": scratch_method, "targets": {},
                     "paper": PAPER_SCALING}
    fitted = sorted(results.loc[results["size"] >= threshold, "size"].unique())
    for target in TARGETS:
        fits = {
            method: fit_power_law(results, method=method, target=target, threshold=threshold)
            for method in [scratch_method, *transfer_methods]
            if method in set(results["method"])
        }
        entry: dict = {"fits": {m: (f.as_dict() if f else None) for m, f in fits.items()}}
        for method in transfer_methods:
            if method not in fits:
                continue
            efficiency = data_efficiency(
                results, scratch_fit=fits.get(scratch_method), transfer_method=method, target=target
            )
            entry.setdefault("crossover", {})[method] = crossover_size(
                fits.get(scratch_method), fits[method]
            )
            entry.setdefault("crossover_meaning", {})[method] = crossover_meaning(
                fits.get(scratch_method), fits[method], fitted_sizes=fitted
            )
            entry.setdefault("data_efficiency", {})[method] = efficiency.to_dict(orient="records")
            entry.setdefault("measured_efficiency", {})[method] = measured_efficiency_bound(
                results, scratch_method=scratch_method, transfer_method=method, target=target,
            ).to_dict(orient="records")
        summary["targets"][target] = entry
    return summary
