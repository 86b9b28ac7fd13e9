"""Per element: how well the user's data determine each reference-energy shift.

:func:`~mlip_transfer.energy_scale.diagnose.diagnose` says whether to refit the AtomRef; this
module says, element by element, whether the data can. For each element it gives the number of
frames and atoms holding it, the Eq.-2 shift (AtomRef refit on the target labels minus the source
model's AtomRef) and the residual-fit shift (per-element least squares on target label minus
source prediction) with bootstrap intervals, a collinearity flag with the partner elements, and
the deviation of the residual shift from the one expected from elemental ground states of the two
functionals (MatPES PBE and r2SCAN), flagged as a likely settings mismatch when it is an outlier.

Prior art: the residual-fit shift is the same idea as MACE's ``--E0s estimated`` and DeePMD's
``dp change-bias``. Peers that fit reference energies (chgnet ``AtomRef.fit``, matgl
``fit_element_refs``, fairchem ``compute_lin_ref``) use plain least squares and report nothing
about how well each reference is determined; the intervals and flags here are what they leave out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.energy_scale.atomref import IDENTIFIABLE_TOL, solve_identifiable
from mlip_transfer.energy_scale.compositions import atomic_number
from mlip_transfer.energy_scale.elemental_shift import load_matpes_elemental_energies

ENOUGH = "enough data"
ADD_DATA = "add structures with this element"
CHECK_DFT = "check your DFT settings"
RESAMPLE_UNITS = ("materials", "frames")
_MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation
# A partner explains at least this share of an element's column norm in the collinearity fit.
_PARTNER_SHARE = 0.05


@dataclass(frozen=True, kw_only=True)
class ElementCriteria:
    """Bootstrap settings and the thresholds of the per-element flags.

    Attributes:
        n_resamples: Bootstrap resamples (0 = no intervals).
        resample: Unit of resampling: ``materials`` (frames of one material are correlated, so
            this is the honest default) or ``frames``.
        confidence: Coverage of the percentile intervals.
        seed: Seed of the resampling.
        min_frames: Fewer frames holding an element than this: "add structures".
        max_interval: Full width (eV/atom) of the residual shift's interval above which the
            element is "add structures".
        min_determined: Share of resamples in which the element must be determined.
        collinear_tol: An element whose column keeps less than this share of its squared norm
            after regression on the other columns is collinear (not separately determined).
        mismatch_z: Robust z (deviation minus the median, over 1.4826 MAD) above which a
            deviation from the expected shift is a likely settings mismatch.
        mismatch_floor: Deviations from the median below this (eV/atom) are never flagged, so a
            tight MAD does not turn small scatter into "check your DFT settings".
    """

    n_resamples: int = 200
    resample: str = "materials"
    confidence: float = 0.95
    seed: int = 0
    min_frames: int = 5
    max_interval: float = 0.2
    min_determined: float = 0.9
    collinear_tol: float = 1e-3
    mismatch_z: float = 5.0
    mismatch_floor: float = 0.3

    def __post_init__(self) -> None:
        if self.resample not in RESAMPLE_UNITS:
            raise ConfigError(f"resample must be one of {list(RESAMPLE_UNITS)}, got {self.resample!r}")
        if self.n_resamples < 0 or not 0 < self.confidence < 1:
            raise ConfigError("n_resamples must be >= 0 and confidence in (0, 1)")


@dataclass(frozen=True, kw_only=True)
class ElementRow:
    """One element's line of the report (shifts in eV/atom; None where undefined)."""

    element: str
    Z: int
    n_frames: int
    n_atoms: int
    n_materials: int
    eq2_shift: float | None
    eq2_low: float | None
    eq2_high: float | None
    residual_shift: float | None
    residual_low: float | None
    residual_high: float | None
    determined_share: float | None
    independence: float
    collinear: bool
    partners: list[str]
    expected_shift: float | None
    deviation: float | None
    robust_z: float | None
    mismatch: bool | None
    recommendation: str
    reasons: list[str]


@dataclass(frozen=True, kw_only=True)
class ElementReport:
    """The per-element table with the settings that made it.

    Attributes:
        rows: One per element, by atomic number.
        criteria: Bootstrap settings and thresholds.
        median_deviation, mad_deviation: Centre and scale (1.4826 MAD) of the deviations from
            the expected shift (None without expected shifts).
        expected_label: Where the expected shifts come from (or None).
    """

    rows: list[ElementRow]
    criteria: ElementCriteria
    median_deviation: float | None = None
    mad_deviation: float | None = None
    expected_label: str | None = None
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        tally = {ENOUGH: 0, ADD_DATA: 0, CHECK_DFT: 0, "collinear": 0, "mismatch": 0}
        for row in self.rows:
            tally[row.recommendation] += 1
            tally["collinear"] += row.collinear
            tally["mismatch"] += bool(row.mismatch)
        object.__setattr__(self, "counts", tally)

    def row(self, element: str) -> ElementRow:
        """The row of one element (KeyError if absent)."""
        for row in self.rows:
            if row.element == element:
                return row
        raise KeyError(element)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (None for undefined values, never NaN)."""
        return {
            "criteria": asdict(self.criteria),
            "expected_shift_from": self.expected_label,
            "median_deviation": self.median_deviation,
            "mad_deviation": self.mad_deviation,
            "counts": dict(self.counts),
            "elements": [asdict(row) for row in self.rows],
        }


def matpes_expected_shifts(source_refs: str | Path, target_refs: str | Path) -> dict[str, float]:
    """Expected shift per element: target minus source ground-state energy per atom.

    Ground states, not MatPES's isolated-atom energies: VASP's r2SCAN atom energies are not on
    the PBE atoms' PAW reference (Ag: -0.20 eV PBE, -18.5 eV r2SCAN), so their difference is not
    a functional shift.
    """
    source = load_matpes_elemental_energies(source_refs)
    target = load_matpes_elemental_energies(target_refs)
    return {el: target[el] - source[el] for el in sorted(set(source) & set(target), key=atomic_number)}


def _fit_columns(matrix: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (k x t); NaN for absent or not identifiable columns."""
    out = np.full((matrix.shape[1], targets.shape[1]), np.nan)
    present = np.flatnonzero(matrix.any(axis=0))
    if present.size == 0:
        return out
    solution, _, null_proj = solve_identifiable(matrix[:, present], targets)
    keep = np.diag(null_proj) <= IDENTIFIABLE_TOL
    out[present[keep]] = solution[keep]
    return out


def _bootstrap(
    matrix: np.ndarray, targets: np.ndarray, groups: Sequence[str], criteria: ElementCriteria
) -> np.ndarray:
    """Refits on resampled materials (or frames): an array ``resamples x k x targets``."""
    if criteria.resample == "frames":
        members = [np.array([i]) for i in range(len(matrix))]
    else:
        index: dict[str, list[int]] = {}
        for i, group in enumerate(groups):
            index.setdefault(str(group), []).append(i)
        members = [np.array(rows) for rows in index.values()]
    rng = np.random.default_rng(criteria.seed)
    fits = np.empty((criteria.n_resamples, matrix.shape[1], targets.shape[1]))
    for r in range(criteria.n_resamples):
        # A unit drawn m times is one row block weighted sqrt(m): the same fit, ~2/3 the rows.
        draws = np.bincount(rng.integers(0, len(members), len(members)), minlength=len(members))
        chosen = np.flatnonzero(draws)
        rows = np.concatenate([members[u] for u in chosen])
        weight = np.sqrt(np.repeat(draws[chosen], [len(members[u]) for u in chosen]))[:, None]
        fits[r] = _fit_columns(matrix[rows] * weight, targets[rows] * weight)
    return fits


def _interval(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    finite = samples[np.isfinite(samples)]
    if finite.size < 2:
        return None, None
    tail = 50 * (1 - confidence)
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _collinearity(matrix: np.ndarray, elements: Sequence[str]) -> tuple[np.ndarray, list[list[str]]]:
    """Per column: the share of its squared norm no other column explains, and the partners
    that explain the rest (largest share first)."""
    independence = np.ones(matrix.shape[1])
    partners: list[list[str]] = []
    for j in range(matrix.shape[1]):
        others = np.delete(np.arange(matrix.shape[1]), j)
        column = matrix[:, j]
        norm = float(column @ column)
        if norm == 0 or others.size == 0:
            partners.append([])
            continue
        coef, *_ = np.linalg.lstsq(matrix[:, others], column, rcond=None)
        residual = column - matrix[:, others] @ coef
        independence[j] = float(residual @ residual) / norm
        share = np.abs(coef) * np.linalg.norm(matrix[:, others], axis=0) / np.sqrt(norm)
        order = np.argsort(-share)
        partners.append([elements[others[i]] for i in order if share[i] > _PARTNER_SHARE])
    return independence, partners


def _robust_scale(values: np.ndarray) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size < 3:  # no "the others" to be far outside of
        return None, None
    centre = float(np.median(finite))
    return centre, _MAD_TO_SIGMA * float(np.median(np.abs(finite - centre)))


def _mismatch(
    deviation: float | None, low: float | None, high: float | None, *,
    centre: float | None, scale: float | None, criteria: ElementCriteria,
) -> tuple[float | None, bool | None]:
    """Robust z of one deviation, and whether it is a settings mismatch: far outside the
    others' scatter, beyond the floor, and with an interval (if any) that excludes the median."""
    if deviation is None or centre is None or scale is None:
        return None, None
    offset = deviation - centre
    far = abs(offset) > max(criteria.mismatch_z * scale, criteria.mismatch_floor)
    excludes = low is None or high is None or not low <= centre <= high
    return (offset / scale if scale > 0 else None), bool(far and excludes)


def _recommend(row: dict[str, Any], criteria: ElementCriteria) -> tuple[str, list[str]]:
    """The plain recommendation and the reasons behind it."""
    if row["mismatch"]:
        why = (
            f"residual shift {row['deviation']:+.3g} eV/atom off the expected shift, far outside "
            "the other elements: pseudopotential, U value or other settings likely differ"
        )
        return CHECK_DFT, [why]
    reasons = []
    if row["n_frames"] < criteria.min_frames:
        reasons.append(f"only {row['n_frames']} frame(s) (< {criteria.min_frames})")
    if row["collinear"]:
        with_ = ", ".join(row["partners"]) or "other elements"
        reasons.append(f"always occurs with {with_}: its reference is not separately determined")
    share = row["determined_share"]
    if row["residual_shift"] is None:
        reasons.append("shift not determined by these data")
    elif share is not None and share < criteria.min_determined:
        reasons.append(f"determined in only {share:.0%} of resamples")
    low, high = row["residual_low"], row["residual_high"]
    if low is not None and high is not None and high - low > criteria.max_interval:
        reasons.append(f"interval {high - low:.3g} eV/atom wide (> {criteria.max_interval:g})")
    return (ADD_DATA, reasons) if reasons else (ENOUGH, [])


def _float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def element_report(
    *,
    matrix: np.ndarray,
    elements: Sequence[str],
    atoms: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    source: np.ndarray,
    groups: Sequence[str],
    expected: Mapping[str, float] | None = None,
    expected_label: str | None = None,
    criteria: ElementCriteria | None = None,
) -> ElementReport:
    """The per-element report from composition fractions, labels and source predictions.

    Args:
        matrix: ``n x k`` composition fractions (rows sum to 1), columns ``elements``.
        elements: Column elements.
        atoms: ``n x k`` atom counts of each element in each frame.
        labels: Target energy per atom of each frame.
        predictions: Source model's energy per atom of each frame.
        source: Source model's AtomRef of each column (eV/atom).
        groups: Material id of each frame (the resampling unit ``materials``).
        expected: Element -> expected shift (target − source functional); None: no mismatch flag.
        expected_label: Where ``expected`` comes from, for the report.
        criteria: Bootstrap settings and thresholds (default :class:`ElementCriteria`).

    Raises:
        DataError: Shapes disagree or there are no frames.
    """
    criteria = criteria or ElementCriteria()
    n, k = matrix.shape
    if n == 0 or any(len(a) != n for a in (atoms, labels, predictions, groups)) or len(source) != k:
        raise DataError(f"per-element report: inconsistent inputs for {n} frames and {k} elements")
    targets = np.column_stack([labels, labels - predictions])  # Eq. 2 refit, residual fit
    point = _fit_columns(matrix, targets)
    point[:, 0] -= source
    fits = _bootstrap(matrix, targets, groups, criteria) if criteria.n_resamples else None
    if fits is not None:
        fits[:, :, 0] -= source
    independence, partners = _collinearity(matrix, elements)
    expected = expected or {}
    deviation = np.array([point[j, 1] - expected.get(el, np.nan) for j, el in enumerate(elements)])
    centre, scale = _robust_scale(deviation)
    material_sets = [{groups[i] for i in np.flatnonzero(matrix[:, j])} for j in range(k)]
    rows = []
    for j, el in enumerate(elements):
        eq2 = _interval(fits[:, j, 0], criteria.confidence) if fits is not None else (None, None)
        res = _interval(fits[:, j, 1], criteria.confidence) if fits is not None else (None, None)
        dev = _float(deviation[j])
        exp_shift = expected.get(el)
        dev_ci = (None, None) if dev is None or res[0] is None else (res[0] - exp_shift, res[1] - exp_shift)
        z, mismatch = _mismatch(dev, *dev_ci, centre=centre, scale=scale, criteria=criteria)
        record = {
            "element": el, "Z": atomic_number(el),
            "n_frames": int(np.count_nonzero(matrix[:, j])), "n_atoms": round(float(atoms[:, j].sum())),
            "n_materials": len(material_sets[j]),
            "eq2_shift": _float(point[j, 0]), "eq2_low": eq2[0], "eq2_high": eq2[1],
            "residual_shift": _float(point[j, 1]), "residual_low": res[0], "residual_high": res[1],
            "determined_share": None if fits is None else float(np.isfinite(fits[:, j, 1]).mean()),
            "independence": float(independence[j]),
            "collinear": bool(independence[j] < criteria.collinear_tol),
            "partners": partners[j] if independence[j] < criteria.collinear_tol else [],
            "expected_shift": None if exp_shift is None else float(exp_shift),
            "deviation": dev, "robust_z": z, "mismatch": mismatch,
        }  # fmt: skip
        recommendation, reasons = _recommend(record, criteria)
        rows.append(ElementRow(**record, recommendation=recommendation, reasons=reasons))
    rows.sort(key=lambda row: row.Z)
    return ElementReport(
        rows=rows, criteria=criteria, median_deviation=centre, mad_deviation=scale,
        expected_label=expected_label if expected else None,
    )

