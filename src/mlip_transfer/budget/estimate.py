"""Learning-curve extrapolation: the validation error to expect at the full training size.

A few small fine-tunes on nested subsamples of the training split give, per method, validation
MAEs at sizes below the full size N_full. As in the empirical scaling-law literature (Hestness
et al. 2017, "Deep learning scaling is predictable, empirically", arXiv:1712.00409; for MLIPs the
paper's own Fig. 6, a line in log10(MAE) against log10(N)), the points are fitted with a power law
``MAE = 10**intercept * N**slope`` (:func:`mlip_transfer.scaling.laws.fit_power_law`, every seed's
point together) and the line is read at N_full.

The interval is the ordinary least-squares **prediction interval** of the line in log space at
``x0 = log10(N_full)``: ``t(n - 2) * s * sqrt(1 + 1/n + (x0 - mean x)^2 / Sxx)``, with ``s`` the
residual standard deviation of the n points. It is the range for *one new training* at N_full
(one seed), which is what the measured full-size error is, not the narrower interval of the
mean line. It assumes the power law holds up to N_full and independent, equal-variance residuals
in log space; with three points it has one degree of freedom and is wide, as it should be. It
does not cover a change of regime beyond the sampled sizes (a curve that flattens, or a recipe
that stops converging): **every estimate is an extrapolation**.

Transfer or scratch: at N_full the transfer method (4 or 4r) is the better use of the data when
its whole interval lies below Scratch's (Method 1), Scratch when the reverse holds, and
"undetermined" when the intervals overlap or one has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.scaling.laws import TARGETS, PowerLawFit, fit_power_law

UNITS = {"energy": "meV/atom", "force": "meV/Å"}
TRANSFER, SCRATCH_WINS, UNDETERMINED = "transfer", "scratch", "undetermined"
EXTRAPOLATION_NOTE = (
    "This is an extrapolation: a power law fitted to a few small fine-tunes below the full size "
    "and read at the full size. It assumes the learning curve keeps its slope up to there; it "
    "cannot see a curve that flattens or a training recipe that stops converging."
)


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """One method's extrapolated validation MAE at the full size, for one target.

    Attributes:
        method, target: The method and ``"energy"`` or ``"force"``.
        n_full: Full training size the line is read at.
        predicted, low, high: The fitted MAE at ``n_full`` and its prediction interval (NaN
            without one: fewer than three points).
        confidence: Level of the interval.
        slope, intercept, r2: The log10-log10 line.
        n_points, sizes: Points and distinct sizes fitted.
        extrapolation_factor: ``n_full`` over the largest fitted size.
        measured: Validation MAE of the full-size training, when there is one; else NaN.
        slope_low, slope_high: The slope's confidence interval at ``confidence`` (NaN without
            one); a range that holds 0 is a flat curve: at this recipe the data hardly move
            the error, so the estimate says what the recipe, not more data, gives.
    """

    method: str
    target: str
    n_full: int
    predicted: float
    low: float
    high: float
    confidence: float
    slope: float
    intercept: float
    r2: float
    n_points: int
    sizes: tuple[int, ...]
    extrapolation_factor: float
    measured: float = math.nan
    slope_low: float = math.nan
    slope_high: float = math.nan

    @property
    def flat(self) -> bool:
        """The slope's interval holds 0: no learning curve to speak of at this recipe."""
        return bool(self.slope_low <= 0 <= self.slope_high)

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def measured_inside(self) -> bool | None:
        """Whether the measured full-size MAE lies in the interval (None: nothing to check)."""
        if not (math.isfinite(self.measured) and self.has_interval):
            return None
        return bool(self.low <= self.measured <= self.high)

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["sizes"] = list(self.sizes)
        record["measured_inside"] = self.measured_inside
        record["flat"] = self.flat
        record["relative_error"] = (
            (self.predicted - self.measured) / self.measured
            if math.isfinite(self.measured) and self.measured
            else math.nan
        )
        return record


def _residual_spread(
    sizes: Sequence[float], maes: Sequence[float], fit: PowerLawFit, confidence: float
) -> tuple[np.ndarray, float, float, float] | None:
    """log10 sizes, Sxx, the residual standard deviation and the two-sided t quantile (n - 2
    degrees of freedom) of ``fit``'s points; None with fewer than three points or one size."""
    from scipy import stats

    x, y = np.log10(np.asarray(sizes, float)), np.log10(np.asarray(maes, float))
    sxx = float(((x - x.mean()) ** 2).sum())
    if len(x) < 3 or sxx == 0:
        return None
    s = math.sqrt(float(((y - (fit.intercept + fit.slope * x)) ** 2).sum()) / (len(x) - 2))
    return x, sxx, s, float(stats.t.ppf(0.5 + confidence / 2, len(x) - 2))


def prediction_interval(
    sizes: Sequence[float], maes: Sequence[float], *, fit: PowerLawFit, at: float, confidence: float
) -> tuple[float, float]:
    """The OLS prediction interval (MAE, not log) of ``fit`` at ``at`` training points.

    Args:
        sizes, maes: The points the line was fitted to.
        fit: Their log10-log10 line.
        at: Where to read it (N_full).
        confidence: Level, e.g. 0.9.

    Returns:
        ``(low, high)``; NaN, NaN with fewer than three points or a single size.
    """
    spread = _residual_spread(sizes, maes, fit, confidence)
    if spread is None:
        return math.nan, math.nan
    x, sxx, s, t = spread
    x0 = math.log10(at)
    half = t * s * math.sqrt(1 + 1 / len(x) + (x0 - x.mean()) ** 2 / sxx)
    centre = fit.intercept + fit.slope * x0
    return float(10 ** (centre - half)), float(10 ** (centre + half))


def slope_interval(
    sizes: Sequence[float], maes: Sequence[float], *, fit: PowerLawFit, confidence: float
) -> tuple[float, float]:
    """The OLS confidence interval of ``fit``'s slope (NaN, NaN with fewer than three points)."""
    spread = _residual_spread(sizes, maes, fit, confidence)
    if spread is None:
        return math.nan, math.nan
    _, sxx, s, t = spread
    half = t * s / math.sqrt(sxx)
    return fit.slope - half, fit.slope + half


def estimate(
    points: pd.DataFrame,
    *,
    method: str,
    target: str,
    n_full: int,
    confidence: float,
    measured: float | None = None,
) -> Estimate | None:
    """Extrapolate one method's learning curve to ``n_full`` (None: fewer than two sizes).

    Args:
        points: One row per point job: ``method``, ``size``, ``seed`` and the MAE columns of
            :data:`mlip_transfer.scaling.laws.TARGETS` (meV).
        method, target: Which curve.
        n_full: The full training size.
        confidence: Level of the prediction interval.
        measured: The full-size training's validation MAE (meV), if one was made.
    """
    fit = fit_power_law(points, method=method, target=target, threshold=1)
    if fit is None:
        return None
    column = TARGETS[target]
    rows = points[(points["method"] == method) & np.isfinite(points[column]) & (points[column] > 0)]
    low, high = prediction_interval(rows["size"], rows[column], fit=fit, at=n_full,
                                    confidence=confidence)
    sizes = tuple(sorted(int(s) for s in rows["size"].unique()))
    slope_low, slope_high = slope_interval(rows["size"], rows[column], fit=fit,
                                           confidence=confidence)
    return Estimate(
        method=method, target=target, n_full=int(n_full), predicted=float(fit.predict(n_full)),
        low=low, high=high, confidence=confidence, slope=fit.slope, intercept=fit.intercept,
        r2=fit.r2, n_points=fit.n_points, sizes=sizes, extrapolation_factor=n_full / max(sizes),
        measured=math.nan if measured is None else float(measured),
        slope_low=slope_low, slope_high=slope_high,
    )


def verdict(transfer: Estimate | None, scratch: Estimate | None) -> tuple[str, str]:
    """Transfer or scratch at N_full, and why: ``transfer``, ``scratch`` or ``undetermined``."""
    if transfer is None or scratch is None:
        return UNDETERMINED, "a learning curve is missing (fewer than two sizes)"
    unit = UNITS[transfer.target]
    if not (transfer.has_interval and scratch.has_interval):
        return UNDETERMINED, "no interval (fewer than three points per curve)"
    spans = (f"{transfer.method} [{transfer.low:.4g}, {transfer.high:.4g}] vs {scratch.method} "
             f"[{scratch.low:.4g}, {scratch.high:.4g}] {unit}")
    if transfer.high < scratch.low:
        return TRANSFER, f"{spans}: the transfer interval lies below Scratch's"
    if scratch.high < transfer.low:
        return SCRATCH_WINS, f"{spans}: Scratch's interval lies below the transfer one"
    return UNDETERMINED, f"{spans}: the intervals overlap"


def summarize(
    points: pd.DataFrame,
    *,
    n_full: int,
    methods: Sequence[str],
    confidence: float,
    measured: Mapping[str, Mapping[str, float]] | None = None,
    scratch: str = "1_scratch",
) -> dict[str, Any]:
    """Every method's estimate per target and each transfer method's verdict (JSON-ready).

    Args:
        points: The point jobs' results (see :func:`estimate`).
        n_full: Full training size.
        methods: Methods with a curve; those other than ``scratch`` get a verdict.
        confidence: Level of the prediction intervals.
        measured: Method -> target -> measured full-size validation MAE (meV); optional.
        scratch: The baseline.

    Raises:
        DataError: No points, or a point at or above ``n_full``.
    """
    if points.empty:
        raise DataError("data-budget points: none to fit", field="points")
    above = points[points["size"] >= n_full]
    if not above.empty:
        raise DataError(f"data-budget points at sizes {sorted(above['size'].unique())} are not "
                        f"below the full size {n_full}: nothing to extrapolate", field="size")
    measured = measured or {}
    summary: dict[str, Any] = {"n_full": int(n_full), "confidence": confidence,
                               "scratch_method": scratch, "interval": "OLS prediction interval "
                               "in log10-log10 space (one new training at N_full)",
                               "note": EXTRAPOLATION_NOTE, "targets": {}}
    for target in TARGETS:
        estimates = {
            m: estimate(points, method=m, target=target, n_full=n_full, confidence=confidence,
                        measured=measured.get(m, {}).get(target))
            for m in methods
        }
        entry: dict[str, Any] = {
            "estimates": {m: (e.as_dict() if e else None) for m, e in estimates.items()},
            "verdicts": {},
        }
        for method in methods:
            if method == scratch or scratch not in estimates:
                continue
            answer, why = verdict(estimates[method], estimates[scratch])
            entry["verdicts"][method] = {"better": answer, "why": why}
        summary["targets"][target] = entry
    return summary
