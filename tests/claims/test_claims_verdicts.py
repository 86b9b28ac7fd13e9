"""The verdict logic's building blocks: the row type's rules, comparisons with and without a
spread, and the intervals and tests the claims use."""

import math

import pytest
from scipy import stats

from mlip_transfer.claims.verdicts import (
    HIGHER,
    INTERVAL,
    LOWER,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    WITHIN,
    Claim,
    Sample,
    bootstrap_mean,
    compare,
    overlap_p_value,
    runs_to_separate,
    verdict_of,
    wilson_interval,
)

ROW = {"id": "x", "study": "s", "claim": "c", "paper": "p", "this_run": "t"}


@pytest.mark.parametrize("verdict", [REPRODUCED, NOT_REPRODUCED])
def test_a_flagged_row_can_only_be_not_testable(verdict):
    with pytest.raises(ValueError, match="flagged inputs .*not trained"):
        Claim(**ROW, verdict=verdict, flags=("M1: not trained at this budget",))
    assert Claim(**ROW, verdict=NOT_TESTABLE, needs="more steps", flags=("f",)).flags == ("f",)


def test_a_not_testable_row_says_what_it_needs_and_verdicts_are_closed():
    with pytest.raises(ValueError, match="must say what it needs"):
        Claim(**ROW, verdict=NOT_TESTABLE)
    with pytest.raises(ValueError, match="unknown verdict"):
        Claim(**ROW, verdict="partly reproduced")


def test_seeds_are_ordered_only_beyond_their_spread():
    a, b = Sample.of([10.0, 12.0]), Sample.of([14.0, 15.0])  # gap 3.5 > range 2
    assert compare(a, b, tolerance=0.01).order == LOWER
    assert compare(b, a, tolerance=0.01).order == HIGHER
    assert compare(a, Sample.of([13.0, 16.0]), tolerance=0.01).order == LOWER  # gap 3.5 > range 3
    wide = Sample.of([11.0, 18.0])  # gap 3.5 within range 7
    assert compare(a, wide, tolerance=0.01).order == WITHIN


def test_intervals_are_ordered_only_when_they_do_not_overlap():
    low = Sample(value=0.1, low=0.0, high=0.2, kind=INTERVAL)
    assert compare(low, Sample(value=0.9, low=0.8, high=0.95, kind=INTERVAL), tolerance=0).order == LOWER
    assert compare(low, Sample(value=0.3, low=0.19, high=0.4, kind=INTERVAL), tolerance=0).order == WITHIN
    # A point against an interval: inside it is within, outside it is ordered.
    assert compare(low, Sample(value=0.15), tolerance=0).order == WITHIN
    assert compare(low, Sample(value=1.0), tolerance=0).order == LOWER


def test_points_without_spread_use_the_tolerance_and_missing_values_are_never_ordered():
    assert compare(Sample(value=100.0), Sample(value=100.5), tolerance=0.01).order == WITHIN
    assert compare(Sample(value=100.0), Sample(value=102.0), tolerance=0.01).order == LOWER
    assert "one seed" in compare(Sample(value=1.0), Sample(value=2.0), tolerance=0.01).basis
    assert compare(Sample(value=math.nan), Sample(value=2.0), tolerance=0.01).order == WITHIN
    assert Sample.of([3.0]).kind == "point" and Sample.of([]).text() == "n/a"


@pytest.mark.parametrize(
    ("orders", "verdict"),
    [([LOWER, LOWER], REPRODUCED), ([LOWER, WITHIN], NOT_TESTABLE),
     ([HIGHER, WITHIN], NOT_REPRODUCED), ([LOWER, HIGHER], NOT_REPRODUCED)],
)
def test_verdict_of_comparisons(orders, verdict):
    assert verdict_of(orders, want=[LOWER, LOWER]) == verdict


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(3, 10)
    assert low == pytest.approx(0.1078, abs=1e-4) and high == pytest.approx(0.6032, abs=1e-4)
    assert wilson_interval(0, 4) == (0.0, pytest.approx(0.4899, abs=1e-4))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def test_runs_to_separate_the_studys_failure_rates():
    n = runs_to_separate(0.65, 0.0)
    assert n == 9
    for runs in range(n, n + 40):  # from there on, always separated
        assert wilson_interval(round(0.65 * runs), runs)[0] > wilson_interval(0, runs)[1]
    assert wilson_interval(round(0.65 * 8), 8)[0] < wilson_interval(0, 8)[1]
    assert runs_to_separate(0.5, 0.5, limit=50) is None


@pytest.mark.parametrize(("population", "successes", "draws", "observed"),
                         [(60, 12, 15, 6), (45, 15, 15, 15), (30, 10, 10, 0), (20, 3, 5, 2)])
def test_overlap_p_value_is_the_hypergeometric_tail(population, successes, draws, observed):
    expected = stats.hypergeom.sf(observed - 1, population, successes, draws)
    assert overlap_p_value(population=population, successes=successes, draws=draws,
                           observed=observed) == pytest.approx(expected)


def test_bootstrap_mean_is_seeded_and_brackets_the_mean():
    values = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95]
    a, b = bootstrap_mean(values, seed=3), bootstrap_mean(values, seed=3)
    assert a == b and a.low < a.value < a.high and a.kind == INTERVAL
    assert bootstrap_mean([2.0]).kind == "point"
