"""Verdicts of the claims table, the row type that enforces them, and the statistics they use.

A claim gets one of three verdicts. ``reproduced`` and ``not reproduced`` need a comparison the
run can make: every input unflagged (:mod:`mlip_transfer.core.flags`: a result that training or
relaxation did not change is not a method's result) and an order outside the spread. Anything
else is ``not testable at this budget``, and the row then says what budget would test it.
:class:`Claim` refuses a flagged row with any other verdict, so no builder can get this wrong.

Spreads: seeds (the range over seeds, as :func:`mlip_transfer.core.flags.indistinguishable`),
bootstrap or binomial intervals (overlap), or none (one seed: values within a relative
tolerance count as equal, and the row says there was no spread).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable at this budget"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_TESTABLE)

LOWER, HIGHER, WITHIN = "lower", "higher", "within spread"
# Kinds of spread a Sample carries.
POINT, SEEDS, INTERVAL = "point", "seeds", "interval"


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One row of the claims table.

    Attributes:
        id: Short key (``rho``, ``m4_beats_m1``).
        study: ``cross-functional`` (Huang et al.) or ``cross-element`` (Röcken & Zavadlav).
        claim: The paper's claim in short words.
        paper: The paper's number(s), with units.
        this_run: What this run shows: the numbers behind the verdict, with units.
        verdict: One of :data:`VERDICTS`.
        needs: For ``not testable``: the budget or input that would make it testable.
        flags: Flags of the inputs (:mod:`mlip_transfer.core.flags`); any forces
            ``not testable``.
        sources: The result files the row was computed from.
        data: The data banner of the inputs (which data, and that surrogate labels are not DFT).
        teacher: What made the labels.
    """

    id: str
    study: str
    claim: str
    paper: str
    this_run: str
    verdict: str
    needs: str = ""
    flags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    data: str = ""
    teacher: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.id!r}: unknown verdict {self.verdict!r}")
        if self.flags and self.verdict != NOT_TESTABLE:
            raise ValueError(f"claim {self.id!r}: flagged inputs ({'; '.join(self.flags)}) can "
                             f"only be {NOT_TESTABLE!r}, not {self.verdict!r}")
        if self.verdict == NOT_TESTABLE and not self.needs:
            raise ValueError(f"claim {self.id!r}: a not-testable row must say what it needs")


@dataclass(frozen=True, kw_only=True)
class Sample:
    """A measured value and its spread.

    Attributes:
        value: The value (a mean over seeds, or a point estimate).
        low, high: The spread: the seeds' min and max (``kind`` seeds) or an interval.
        n: Seeds (or resamples) behind it.
        kind: :data:`POINT` (no spread), :data:`SEEDS` or :data:`INTERVAL`.
    """

    value: float
    low: float = math.nan
    high: float = math.nan
    n: int = 1
    kind: str = POINT

    @classmethod
    def of(cls, values: Sequence[float]) -> Sample:
        """The mean of seeds' values, with their range as spread (one value: a point)."""
        finite = [float(v) for v in values if math.isfinite(float(v))]
        if not finite:
            return cls(value=math.nan)
        if len(finite) == 1:
            return cls(value=finite[0])
        return cls(value=sum(finite) / len(finite), low=min(finite), high=max(finite),
                   n=len(finite), kind=SEEDS)

    @property
    def has_spread(self) -> bool:
        return self.kind != POINT and math.isfinite(self.low) and math.isfinite(self.high)

    def text(self, digits: int = 3) -> str:
        """``value`` with its spread, e.g. ``12.3 [11.9, 12.8]``."""
        if not math.isfinite(self.value):
            return "n/a"
        head = f"{self.value:.{digits}g}"
        if not self.has_spread:
            return head
        return f"{head} [{self.low:.{digits}g}, {self.high:.{digits}g}]"


@dataclass(frozen=True)
class Comparison:
    """How ``a`` compares with ``b``: :data:`LOWER`, :data:`HIGHER` or :data:`WITHIN`."""

    order: str
    basis: str = field(default="")


def compare(a: Sample, b: Sample, *, tolerance: float) -> Comparison:
    """Order two samples, using the spread they carry.

    Intervals (either sample): ordered when the intervals (a point as ``[v, v]``) do not
    overlap. Seeds: ordered when the means differ by more than the larger range over seeds.
    No spread on either side: ordered when the relative difference exceeds ``tolerance``.
    A non-finite value is never ordered.
    """
    if not (math.isfinite(a.value) and math.isfinite(b.value)):
        return Comparison(WITHIN, "a value is missing")
    if INTERVAL in (a.kind, b.kind) and (a.has_spread or b.has_spread):
        a_lo, a_hi = (a.low, a.high) if a.has_spread else (a.value, a.value)
        b_lo, b_hi = (b.low, b.high) if b.has_spread else (b.value, b.value)
        order = LOWER if a_hi < b_lo else HIGHER if a_lo > b_hi else WITHIN
        return Comparison(order, "intervals")
    if a.has_spread or b.has_spread:
        spread = max(a.high - a.low if a.has_spread else 0.0, b.high - b.low if b.has_spread else 0.0)
        gap = a.value - b.value
        order = WITHIN if abs(gap) <= spread else LOWER if gap < 0 else HIGHER
        return Comparison(order, f"seed spread {spread:.3g}")
    scale = max(abs(a.value), abs(b.value))
    gap = a.value - b.value
    if scale == 0 or abs(gap) <= tolerance * scale:
        return Comparison(WITHIN, f"one seed: equal within {100 * tolerance:g} %")
    return Comparison(LOWER if gap < 0 else HIGHER, "one seed, no spread")


def verdict_of(orders: Sequence[str], *, want: Sequence[str]) -> str:
    """The verdict of a claim made of comparisons: each ``orders[i]`` should be ``want[i]``.

    Any comparison against what is wanted (outside the spread) makes it ``not reproduced``;
    otherwise any inside the spread makes it ``not testable``; else ``reproduced``.
    """
    if any(o not in (w, WITHIN) for o, w in zip(orders, want, strict=True)):
        return NOT_REPRODUCED
    if WITHIN in orders:
        return NOT_TESTABLE
    return REPRODUCED


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate ``k / n`` (``(nan, nan)`` for ``n = 0``)."""
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    z = _z(confidence)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_sample(k: int, n: int, *, confidence: float = 0.95) -> Sample:
    """A rate ``k / n`` with its Wilson interval."""
    low, high = wilson_interval(k, n, confidence=confidence)
    return Sample(value=k / n if n else math.nan, low=low, high=high, n=n, kind=INTERVAL)


def runs_to_separate(
    rate_a: float, rate_b: float, *, confidence: float = 0.95, limit: int = 1000
) -> int | None:
    """Fewest runs per group from which rates ``rate_a`` and ``rate_b`` (expected counts,
    rounded) always give non-overlapping Wilson intervals, up to ``limit``; None beyond it."""
    def separated(n: int) -> bool:
        a = wilson_interval(round(rate_a * n), n, confidence=confidence)
        b = wilson_interval(round(rate_b * n), n, confidence=confidence)
        return a[1] < b[0] or b[1] < a[0]

    if not separated(limit):
        return None
    n = limit
    while n > 1 and separated(n - 1):
        n -= 1
    return n


def overlap_p_value(*, population: int, successes: int, draws: int, observed: int) -> float:
    """P(at least ``observed`` of ``draws`` items drawn without replacement from
    ``population`` are among its ``successes``): the hypergeometric upper tail."""
    if not 0 <= successes <= population or not 0 <= draws <= population:
        raise ValueError("need 0 <= successes, draws <= population")
    total = math.comb(population, draws)
    tail = sum(
        math.comb(successes, k) * math.comb(population - successes, draws - k)
        for k in range(max(observed, 0), min(successes, draws) + 1)
    )
    return tail / total


def bootstrap_mean(
    values: Sequence[float], *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Sample:
    """The mean of ``values`` with a percentile bootstrap interval (seeded)."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if x.size == 0:
        return Sample(value=math.nan)
    if x.size == 1:
        return Sample(value=float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Sample(value=float(x.mean()), low=float(low), high=float(high), n=int(x.size),
                  kind=INTERVAL)
