"""Claims of the benchmarks: density against experiment (paper Fig. 5) and the scaling law
(Fig. 6).

Density comparisons use the per-solid values of ``density_all.csv``: a bootstrap interval of
the GGA model's mean ratio, and paired (same solid) bootstrap intervals of the differences
between models. Scaling comparisons use the seeds' slope intervals and the seeds' spread of
the measured errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlip_transfer.claims.readers import Origin, flag_list
from mlip_transfer.claims.table1 import M1, M2, M3, M4, SHORT
from mlip_transfer.claims.verdicts import (
    HIGHER,
    INTERVAL,
    LOWER,
    NOT_TESTABLE,
    Claim,
    Sample,
    bootstrap_mean,
    compare,
    verdict_of,
)
from mlip_transfer.scaling.laws import PAPER_SCALING, TARGETS

STUDY = "cross-functional"
GGA_MODEL = "pretrained_gga"
LABELS = {**SHORT, GGA_MODEL: "GGA v0.3.0"}


@dataclass(frozen=True, kw_only=True)
class DensityInputs:
    """What the density claims read.

    Attributes:
        summary: ``density_summary.csv`` (one row per model, with ``flags``).
        solids: ``density_all.csv`` (one row per model and solid), or None.
        method_flags: Each trained method's Table 1 flags (an untrained method's density is
            not its result either).
        sources: The files.
        origin: Their data.
        n_boot, seed, confidence: The bootstrap.
    """

    summary: pd.DataFrame | None
    solids: pd.DataFrame | None = None
    method_flags: Mapping[str, Sequence[str]] = field(default_factory=dict)
    sources: Sequence[str] = ()
    origin: Origin
    n_boot: int = 1000
    seed: int = 0
    confidence: float = 0.95


def _per_solid(inputs: DensityInputs, model: str, column: str) -> pd.Series:
    rows = inputs.solids[(inputs.solids["model"] == model) & ~inputs.solids["failed"].astype(bool)]
    values = rows.set_index("system")[column] if column != "abs_error" else \
        (rows["density_pred"] - rows["density_exp"]).abs().set_axis(rows["system"])
    return values[values.notna()]


def _boot(inputs: DensityInputs, values: Sequence[float]) -> Sample:
    return bootstrap_mean(list(values), n_boot=inputs.n_boot, confidence=inputs.confidence,
                          seed=inputs.seed)


def _paired(inputs: DensityInputs, a: str, b: str, column: str) -> Sample:
    """Mean over the solids both relaxed of ``a``'s ``column`` minus ``b``'s, bootstrapped."""
    x, y = _per_solid(inputs, a, column), _per_solid(inputs, b, column)
    common = x.index.intersection(y.index)
    return _boot(inputs, (x[common] - y[common]).tolist())


def _density_flags(inputs: DensityInputs, models: Sequence[str]) -> list[str]:
    by_model = inputs.summary.set_index("model")
    raised = []
    for model in models:
        raised += [f"{LABELS.get(model, model)} density: {t}" for t in flag_list(by_model.at[model, "flags"])]
        raised += [f"{LABELS.get(model, model)}: {t}" for t in inputs.method_flags.get(model, ())]
    return raised


def _density_refusal(inputs: DensityInputs, base: dict, models: Sequence[str]) -> Claim | None:
    present = set() if inputs.summary is None else set(inputs.summary["model"])
    missing = [LABELS[m] for m in models if m not in present]
    if missing:
        return Claim(**base, this_run=f"no density of {', '.join(missing)} in this run",
                     verdict=NOT_TESTABLE, needs=f"{', '.join(missing)} in the density stage "
                     "(training.methods, evaluation.reference_models.pretrained_gga)")
    if inputs.solids is None:
        return Claim(**base, this_run="no per-solid densities (density_all.csv)",
                     verdict=NOT_TESTABLE, needs="the density_summary rule's density_all.csv")
    raised = _density_flags(inputs, models)
    if raised:
        ratios = inputs.summary.set_index("model")["ratio_mean"]
        text = "mean ratio " + ", ".join(f"{LABELS.get(m, m)} {ratios[m]:.3f}" for m in models)
        return Claim(**base, this_run=text + " (flagged: not the models' results)",
                     verdict=NOT_TESTABLE, flags=tuple(raised),
                     needs="relaxations that leave the strained start, and trained methods")
    return None


def _density_base(inputs: DensityInputs, claim_id: str, claim: str, paper: str) -> dict[str, Any]:
    return {"id": claim_id, "study": STUDY, "claim": claim, "paper": paper,
            "sources": tuple(inputs.sources), "data": inputs.origin.data,
            "teacher": inputs.origin.teacher}


def _spread_needs(verdict: str) -> str:
    return ("more solids (density.systems): a difference within the 95 % bootstrap interval"
            if verdict == NOT_TESTABLE else "")


def gga_underestimates_density(inputs: DensityInputs) -> Claim:
    """The GGA model underestimates density (experimental / predicted ratio above 1), more
    than any of Methods 1-4."""
    others = (M1, M2, M3, M4)
    base = _density_base(inputs, "gga_underestimates_density", "The GGA-pretrained model "
                         "underestimates density most", "Fig. 5: GGA model's ratios "
                         "experimental/predicted the furthest above 1")
    if (refused := _density_refusal(inputs, base, (GGA_MODEL, *others))) is not None:
        return refused
    ratio = _boot(inputs, _per_solid(inputs, GGA_MODEL, "ratio").tolist())
    gaps = {m: _paired(inputs, GGA_MODEL, m, "ratio") for m in others}
    orders = [compare(ratio, Sample(value=1.0), tolerance=0).order]
    orders += [compare(gap, Sample(value=0.0), tolerance=0).order for gap in gaps.values()]
    verdict = verdict_of(orders, want=[HIGHER] * len(orders))
    text = (f"GGA mean ratio {ratio.text()} over {ratio.n} solids; GGA minus "
            + ", ".join(f"{SHORT[m]} {g.text()}" for m, g in gaps.items())
            + " (paired by solid, 95 % bootstrap intervals)")
    return Claim(**base, this_run=text, verdict=verdict, needs=_spread_needs(verdict))


def m4_lowest_density_error(inputs: DensityInputs) -> Claim:
    """Method 4 has the lowest density MAE of Methods 1-4 and the GGA model (where run)."""
    present = set() if inputs.summary is None else set(inputs.summary["model"])
    rivals = [m for m in (GGA_MODEL, M1, M2, M3) if m != GGA_MODEL or m in present]
    base = _density_base(inputs, "m4_lowest_density_error", "M4 has the lowest density MAE",
                         "Fig. 5: M4 lowest MAE against experiment")
    if (refused := _density_refusal(inputs, base, (M4, *rivals))) is not None:
        return refused
    gaps = {m: _paired(inputs, M4, m, "abs_error") for m in rivals}
    orders = [compare(gap, Sample(value=0.0), tolerance=0).order for gap in gaps.values()]
    verdict = verdict_of(orders, want=[LOWER] * len(orders))
    mae = inputs.summary.set_index("model")["density_mae"]
    text = ("density MAE " + ", ".join(f"{LABELS[m]} {mae[m]:.3f}" for m in (M4, *rivals))
            + " g/cm³; M4 minus " + ", ".join(f"{LABELS[m]} {g.text()}" for m, g in gaps.items())
            + " g/cm³ (|error| paired by solid, 95 % bootstrap intervals)")
    return Claim(**base, this_run=text, verdict=verdict, needs=_spread_needs(verdict))


@dataclass(frozen=True, kw_only=True)
class ScalingInputs:
    """What the scaling claims read: ``scaling_fits.json`` and ``scaling_results.csv``."""

    fits: Mapping[str, Any] | None
    results: pd.DataFrame | None
    sources: Sequence[str] = ()
    origin: Origin


def _scaling_flags(inputs: ScalingInputs, sizes: Sequence[int], target: str | None) -> list[str]:
    flags = inputs.fits.get("flags") or []
    if isinstance(flags, str):
        return flag_list(flags)
    return [f"n = {f['size']}: {f['message']}" for f in flags
            if f.get("size") in sizes and (target is None or f.get("target") == target)]


def _methods(inputs: ScalingInputs) -> tuple[str, str]:
    scratch = inputs.fits.get("scratch_method", M1)
    others = [m for m in inputs.results["method"].unique() if m != scratch]
    return scratch, M4 if M4 in others else (others[0] if others else M4)


def _sizes(inputs: ScalingInputs, method: str) -> list[int]:
    rows = inputs.results[(inputs.results["method"] == method) & (inputs.results["size"] > 0)]
    return sorted(int(s) for s in rows["size"].unique())


def _slope(fit: Mapping[str, Any]) -> Sample:
    low, high = fit.get("slope_ci_low"), fit.get("slope_ci_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return Sample(value=fit["slope"])
    return Sample(value=fit["slope"], low=low, high=high, n=fit.get("n_seeds", 1), kind=INTERVAL)


def _scaling_base(inputs: ScalingInputs, claim_id: str, claim: str, paper: str) -> dict[str, Any]:
    return {"id": claim_id, "study": STUDY, "claim": claim, "paper": paper,
            "sources": tuple(inputs.sources), "data": inputs.origin.data,
            "teacher": inputs.origin.teacher}


def scaling_slopes(inputs: ScalingInputs, target: str, *, tolerance: float) -> Claim:
    """Scratch's log-log slope of validation ``target`` MAE against size is steeper (more
    negative) than Transfer's, fitted above the paper's threshold of 1,000 frames."""
    paper = PAPER_SCALING[target]
    threshold = PAPER_SCALING["threshold"]
    base = _scaling_base(inputs, f"scaling_slope_{target}",
                         f"Scratch's {target} error falls faster with data than Transfer's",
                         f"Fig. 6: slopes {paper[M1]['slope']} (M1) vs {paper[M4]['slope']} (M4), "
                         f"fits above {threshold:,} frames")
    if inputs.fits is None or inputs.results is None:
        return Claim(**base, this_run="no scaling fits", verdict=NOT_TESTABLE,
                     needs="the scaling_fit rule's outputs")
    scratch, transfer = _methods(inputs)
    fitted = [s for s in _sizes(inputs, scratch) if s >= inputs.fits["threshold"]]
    fits = inputs.fits["targets"][target]["fits"]
    if inputs.fits["threshold"] < threshold or not fits.get(scratch) or not fits.get(transfer):
        return Claim(**base, verdict=NOT_TESTABLE,
                     this_run=f"fits above {inputs.fits['threshold']:,} frames over sizes "
                              f"{', '.join(map(str, fitted)) or 'none'}",
                     needs=f"≥ 2 training sizes above the paper's fit threshold of {threshold:,} "
                           "frames (scaling.sizes, scaling.fit_threshold)")
    a, b = _slope(fits[scratch]), _slope(fits[transfer])
    text = (f"slopes {SHORT.get(scratch, scratch)} {a.text()}, {SHORT.get(transfer, transfer)} "
            f"{b.text()} (R² {fits[scratch]['r2']:.3f}, {fits[transfer]['r2']:.3f}) over sizes "
            f"{', '.join(map(str, fitted))}")
    if raised := _scaling_flags(inputs, fitted, target):
        return Claim(**base, this_run=text, verdict=NOT_TESTABLE, flags=tuple(raised),
                     needs="errors that differ beyond the seed spread at the fitted sizes")
    orders = [compare(a, b, tolerance=tolerance).order, compare(a, Sample(value=0.0), tolerance=0).order]
    verdict = verdict_of(orders, want=[LOWER, LOWER])
    return Claim(**base, this_run=text, verdict=verdict, needs="more seeds: slopes within their "
                 "intervals" if verdict == NOT_TESTABLE else "")


def _mean_errors(inputs: ScalingInputs, method: str, size: int, column: str) -> Sample:
    rows = inputs.results[(inputs.results["method"] == method) & (inputs.results["size"] == size)]
    return Sample.of(rows[column].tolist())


def _measured_bound(inputs: ScalingInputs, transfer: str) -> str:
    """The lower bound read off the points (``scaling_fits.json``, ``measured_efficiency``):
    at the smallest Transfer size, the Scratch sizes it beats, in words ("" without one)."""
    words = []
    for target in TARGETS:
        rows = (inputs.fits or {}).get("targets", {}).get(target, {}).get(
            "measured_efficiency", {}).get(transfer) or []
        rows = [r for r in rows if r.get("beats_scratch_up_to")]
        if not rows:
            continue
        row = min(rows, key=lambda r: r["size"])
        bound = "≥ " if row["at_largest_scratch"] else ""
        floor = " [flagged: Scratch there is at its untrained AtomRef floor]" if row[
            "scratch_at_floor"] else ""
        words.append(f"{target}: Transfer at {row['size']:,} beats Scratch at every measured size "
                     f"up to {row['beats_scratch_up_to']:,} (factor {bound}"
                     f"{row['factor_lower_bound']:.1f}, a lower bound){floor}")
    return ("; " + "; ".join(words)) if words else ""


def transfer_data_efficiency(inputs: ScalingInputs, *, tolerance: float) -> Claim:
    """Transfer with N >= 1,000 frames has lower validation errors (energy and force) than
    Scratch with 10 N or more, measured (not read off the fitted lines)."""
    threshold = PAPER_SCALING["threshold"]
    base = _scaling_base(inputs, "transfer_beats_10x_scratch",
                         "Transfer with N frames beats Scratch with 10 N (> 10-fold data efficiency)",
                         f"Fig. 6: Transfer at {threshold:,} beats Scratch at > {10 * threshold:,}")
    if inputs.fits is None or inputs.results is None:
        return Claim(**base, this_run="no scaling results", verdict=NOT_TESTABLE,
                     needs="the scaling_fit rule's outputs")
    scratch, transfer = _methods(inputs)
    pairs = [(n, m) for n in _sizes(inputs, transfer) if n >= threshold
             for m in _sizes(inputs, scratch) if m >= 10 * n]
    if not pairs:
        sizes = _sizes(inputs, transfer)
        bound = _measured_bound(inputs, transfer)
        return Claim(**base, verdict=NOT_TESTABLE,
                     this_run=f"measured sizes {', '.join(map(str, sizes)) or 'none'}{bound}",
                     needs=f"measured sizes N ≥ {threshold:,} (Transfer) and ≥ 10 N (Scratch) "
                           "in scaling.sizes")
    n, m = pairs[0]
    samples = {t: (_mean_errors(inputs, transfer, n, c), _mean_errors(inputs, scratch, m, c))
               for t, c in TARGETS.items()}
    text = "; ".join(f"{t}: Transfer at {n:,} {a.text()} vs Scratch at {m:,} {b.text()} "
                     f"meV{'/atom' if t == 'energy' else '/Å'}" for t, (a, b) in samples.items())
    if raised := _scaling_flags(inputs, (n, m), None):
        return Claim(**base, this_run=text, verdict=NOT_TESTABLE, flags=tuple(raised),
                     needs="errors that differ beyond the seed spread at these sizes")
    orders = [compare(a, b, tolerance=tolerance).order for a, b in samples.values()]
    verdict = verdict_of(orders, want=[LOWER] * len(orders))
    return Claim(**base, this_run=text, verdict=verdict,
                 needs="more seeds: errors within their spread" if verdict == NOT_TESTABLE else "")

