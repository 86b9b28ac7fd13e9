"""The data-budget fit on synthetic power laws: exponent and prediction recovered, the interval
covers, the verdict (transfer, scratch, undetermined) and the report's extrapolation statement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlip_transfer.budget import estimate as budget
from mlip_transfer.budget.report import markdown
from mlip_transfer.core.errors import DataError


def curve(method, slope, scale, sizes, seeds=(0,), noise=0.0, rng=None):
    """Points of MAE = scale * N**slope (energy; force at half), log-normal noise of ``noise``."""
    rows = []
    for seed in seeds:
        for size in sizes:
            factor = 10 ** (noise * rng.standard_normal()) if noise else 1.0
            energy = scale * size**slope * factor
            rows.append({"method": method, "size": size, "seed": seed,
                         "energy_mae_mev_per_atom": energy, "force_mae_mev_per_a": energy / 2})
    return rows


def test_exact_power_law_recovers_exponent_and_prediction():
    points = pd.DataFrame(curve("4_refit_atomref", -0.3, 500.0, [44, 88, 175]))
    found = budget.estimate(points, method="4_refit_atomref", target="energy", n_full=350,
                            confidence=0.9, measured=500.0 * 350**-0.3)
    assert found.slope == pytest.approx(-0.3)
    assert found.predicted == pytest.approx(500.0 * 350**-0.3)
    # No scatter: the prediction interval closes on the line, and holds the measured value.
    assert found.low == pytest.approx(found.predicted) and found.measured_inside
    assert found.extrapolation_factor == pytest.approx(2.0)
    assert found.sizes == (44, 88, 175)


def test_prediction_interval_covers_at_its_level():
    rng = np.random.default_rng(0)
    truth, covered, trials = 800.0 * 1000**-0.4, 0, 300
    for _ in range(trials):
        points = pd.DataFrame(curve("1_scratch", -0.4, 800.0, [60, 120, 250], seeds=(0, 1),
                                    noise=0.03, rng=rng))
        # The new training at N_full scatters as the points do.
        measured = truth * 10 ** (0.03 * rng.standard_normal())
        found = budget.estimate(points, method="1_scratch", target="energy", n_full=1000,
                                confidence=0.9, measured=measured)
        covered += found.measured_inside
    assert 0.84 <= covered / trials <= 0.96
    assert found.n_points == 6 and found.has_interval and found.low < found.predicted < found.high


def test_two_points_give_an_estimate_without_interval_and_no_verdict():
    points = pd.DataFrame(curve("1_scratch", -0.5, 900.0, [40, 80])
                          + curve("4_refit_atomref", -0.2, 90.0, [40, 80]))
    summary = budget.summarize(points, n_full=160, methods=["1_scratch", "4_refit_atomref"],
                               confidence=0.9)
    row = summary["targets"]["energy"]["estimates"]["4_refit_atomref"]
    assert row["predicted"] == pytest.approx(90.0 * 160**-0.2) and math.isnan(row["low"])
    answer = summary["targets"]["energy"]["verdicts"]["4_refit_atomref"]
    assert answer["better"] == budget.UNDETERMINED and "no interval" in answer["why"]


@pytest.mark.parametrize(
    ("scratch_scale", "expected"),
    [(5000.0, budget.TRANSFER), (100.0, budget.SCRATCH_WINS), (700.0, budget.UNDETERMINED)],
    ids=["transfer", "scratch", "overlap"],
)
def test_verdict_at_the_full_size(scratch_scale, expected):
    rng = np.random.default_rng(3)
    points = pd.DataFrame(
        curve("1_scratch", -0.3, scratch_scale, [44, 88, 175], seeds=(0, 1), noise=0.02, rng=rng)
        + curve("4r_residual_atomref", -0.3, 700.0, [44, 88, 175], seeds=(0, 1), noise=0.02, rng=rng)
    )
    summary = budget.summarize(points, n_full=350, methods=["1_scratch", "4r_residual_atomref"],
                               confidence=0.9, measured={"4r_residual_atomref": {"energy": 120.0}})
    for target in ("energy", "force"):
        assert summary["targets"][target]["verdicts"]["4r_residual_atomref"]["better"] == expected
    text = markdown(summary, banner="Data: test")
    assert "This is an extrapolation" in text and f"**{expected}**" in text
    # The measured full-size error stands beside the estimate; Scratch was not trained.
    assert "120" in text and "not trained" in text


def test_points_at_the_full_size_are_refused():
    points = pd.DataFrame(curve("1_scratch", -0.3, 100.0, [100, 350]))
    with pytest.raises(DataError, match="not below the full size 350"):
        budget.summarize(points, n_full=350, methods=["1_scratch"], confidence=0.9)


def test_a_flat_curve_is_flagged_and_a_falling_one_is_not():
    rng = np.random.default_rng(1)
    flat = pd.DataFrame(curve("4_refit_atomref", 0.0, 100.0, [22, 44, 88], noise=0.01, rng=rng))
    falling = pd.DataFrame(curve("1_scratch", -0.4, 900.0, [22, 44, 88], noise=0.01, rng=rng))
    points = pd.concat([flat, falling])
    found = {m: budget.estimate(points, method=m, target="energy", n_full=350, confidence=0.9)
             for m in ("4_refit_atomref", "1_scratch")}
    assert found["4_refit_atomref"].flat and found["4_refit_atomref"].slope_low < 0
    assert not found["1_scratch"].flat and found["1_scratch"].slope_high < 0
    summary = budget.summarize(points, n_full=350, methods=["1_scratch", "4_refit_atomref"],
                               confidence=0.9)
    summary["full_size_flags"] = {"4_refit_atomref": {"energy": "not trained at this budget: x"}}
    rows = {line.split("|")[2].strip(): line for line in markdown(summary).splitlines()
            if line.startswith("| energy")}
    assert "flat curve" in rows["4_refit_atomref"] and "not trained" in rows["4_refit_atomref"]
    assert "flat curve" not in rows["1_scratch"]
