"""Scaling-law fits: slopes, seed intervals, crossover and data efficiency on known lines."""

import math

import numpy as np
import pytest

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.scaling.laws import (
    collect_results,
    crossover_meaning,
    crossover_size,
    data_efficiency,
    epochs_for_size,
    schedule_for_size,
    fit_power_law,
    summarize,
)


def power_law_rows(method, slope, prefactor, sizes, seeds, noise=0.0, rng=None):
    rows = []
    for seed in seeds:
        for size in sizes:
            scale = 1.0 if rng is None else math.exp(rng.normal(0, noise))
            rows.append({
                "method": method, "size": size, "seed": seed, "epochs": 1, "steps": 1,
                "energy_mae_mev_per_atom": prefactor * size**slope * scale,
                "force_mae_mev_per_a": 2 * prefactor * size ** (slope / 2) * scale,
            })
    return rows


def results(noise=0.0):
    rng = np.random.default_rng(0)
    sizes = [100, 300, 1000, 3000, 10000]
    return collect_results(
        power_law_rows("1_scratch", -0.6, 2000.0, sizes, [0, 1, 2], noise, rng)
        + power_law_rows("4_refit_atomref", -0.3, 200.0, sizes, [0, 1, 2], noise, rng)
        + [{"method": "4_refit_atomref", "size": 0, "seed": 0, "epochs": 0, "steps": 0,
            "energy_mae_mev_per_atom": 400.0, "force_mae_mev_per_a": 150.0}]
    )


def test_exact_power_law_is_recovered():
    fit = fit_power_law(results(), method="1_scratch", target="energy", threshold=100)
    assert fit.slope == pytest.approx(-0.6)
    assert 10**fit.intercept == pytest.approx(2000.0)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.n_points == 15 and fit.n_seeds == 3
    assert fit.slope_ci_low == pytest.approx(-0.6) and fit.slope_ci_high == pytest.approx(-0.6)
    assert fit.predict(1000) == pytest.approx(2000.0 * 1000**-0.6)
    assert fit.size_for(fit.predict(4321)) == pytest.approx(4321)


def test_threshold_excludes_small_sizes_and_zero_point():
    table = results()
    # Corrupt the small sizes: above the threshold the fit must not see them.
    table.loc[table["size"] < 1000, "energy_mae_mev_per_atom"] = 1e6
    fit = fit_power_law(table, method="4_refit_atomref", target="energy", threshold=1000)
    assert fit.slope == pytest.approx(-0.3)
    assert fit.n_points == 9
    assert fit_power_law(table, method="4_refit_atomref", target="energy", threshold=10000) is None


def test_seed_interval_covers_noisy_slope():
    fit = fit_power_law(results(noise=0.05), method="1_scratch", target="energy", threshold=100)
    assert fit.slope_ci_low < fit.slope_ci_high
    assert fit.slope_ci_low < -0.6 < fit.slope_ci_high
    assert 0.9 < fit.r2 < 1.0
    one_seed = results(noise=0.05).query("seed == 0")
    single = fit_power_law(one_seed, method="1_scratch", target="energy", threshold=100)
    assert math.isnan(single.slope_ci_low)


def test_crossover_and_data_efficiency():
    table = results()
    scratch = fit_power_law(table, method="1_scratch", target="energy", threshold=100)
    transfer = fit_power_law(table, method="4_refit_atomref", target="energy", threshold=100)
    # 2000 N^-0.6 = 200 N^-0.3  <=>  N = 10^(1/0.3)
    assert crossover_size(scratch, transfer) == pytest.approx(10 ** (1 / 0.3), rel=1e-9)
    assert crossover_size(scratch, scratch) is None
    assert crossover_size(None, transfer) is None
    efficiency = data_efficiency(
        table, scratch_fit=scratch, transfer_method="4_refit_atomref", target="energy"
    ).set_index("size")
    # Scratch reaches 200 * 100^-0.3 at N = (10 * 100^0.3)^(1/0.6).
    assert efficiency.loc[100, "scratch_size_needed"] == pytest.approx((10 * 100**0.3) ** (1 / 0.6))
    assert efficiency.loc[100, "factor"] == pytest.approx((10 * 100**0.3) ** (1 / 0.6) / 100)
    assert 0 not in efficiency.index  # the zero point has no data-efficiency factor
    assert bool(efficiency.loc[10000, "extrapolated"]) is False
    assert bool(efficiency.loc[100, "extrapolated"]) is False
    assert efficiency["defined"].all()


def test_flat_scratch_line_gives_no_data_efficiency_and_a_crossover_that_says_so():
    # The default run's case: Scratch barely learns (slope ~0, here slightly rising), Transfer
    # falls. Reading the rising line backwards would claim Scratch needs < 1e-6 frames.
    sizes = [25, 50, 100, 200]
    table = collect_results(
        power_law_rows("1_scratch", 0.004, 300.0, sizes, [0, 1])
        + power_law_rows("4_refit_atomref", -0.05, 330.0, sizes, [0, 1])
    )
    scratch = fit_power_law(table, method="1_scratch", target="energy", threshold=25)
    transfer = fit_power_law(table, method="4_refit_atomref", target="energy", threshold=25)
    efficiency = data_efficiency(table, scratch_fit=scratch, transfer_method="4_refit_atomref",
                                 target="energy")
    assert not efficiency["defined"].any()
    assert efficiency["factor"].isna().all() and efficiency["scratch_size_needed"].isna().all()
    noisy = collect_results(
        power_law_rows("1_scratch", -0.05, 300.0, sizes, [0]) + power_law_rows("1_scratch", 0.03, 300.0, sizes, [1])
        + power_law_rows("4_refit_atomref", -0.05, 330.0, sizes, [0, 1])
    )
    falling_on_average = fit_power_law(noisy, method="1_scratch", target="energy", threshold=25)
    assert falling_on_average.slope < 0 < falling_on_average.slope_ci_high
    assert not data_efficiency(noisy, scratch_fit=falling_on_average,
                               transfer_method="4_refit_atomref", target="energy")["defined"].any()
    meaning = crossover_meaning(scratch, transfer, fitted_sizes=sizes)
    assert "never catches up" in meaning and "outside the fitted sizes" in meaning
    steep = crossover_meaning(
        fit_power_law(results(), method="1_scratch", target="energy", threshold=100),
        fit_power_law(results(), method="4_refit_atomref", target="energy", threshold=100),
        fitted_sizes=[100, 10000],
    )
    assert steep.startswith("Scratch's steeper line catches up") and "inside the fitted sizes" in steep
    assert crossover_meaning(None, transfer, fitted_sizes=sizes).startswith("no crossover")
    summary = summarize(table, scratch_method="1_scratch", transfer_methods=["4_refit_atomref"],
                        threshold=25)
    assert "never catches up" in summary["targets"]["energy"]["crossover_meaning"]["4_refit_atomref"]


def test_summary_holds_every_target_and_paper_numbers():
    summary = summarize(results(), scratch_method="1_scratch",
                        transfer_methods=["4_refit_atomref"], threshold=100)
    assert set(summary["targets"]) == {"energy", "force"}
    assert summary["targets"]["force"]["fits"]["4_refit_atomref"]["slope"] == pytest.approx(-0.15)
    assert summary["paper"]["energy"]["1_scratch"]["slope"] == -0.615
    # Where the exact lines meet: 2000 N^-0.6 = 200 N^-0.3 and 4000 N^-0.3 = 400 N^-0.15.
    crossover = {target: summary["targets"][target]["crossover"]["4_refit_atomref"] for target in ("energy", "force")}
    assert crossover["energy"] == pytest.approx(10 ** (1 / 0.3), rel=1e-6)
    assert crossover["force"] == pytest.approx(10 ** (1 / 0.15), rel=1e-6)


def test_epochs_grow_for_small_sets():
    assert epochs_for_size(0, epochs=3, min_steps=30, batch_size=16) == 0
    assert epochs_for_size(16, epochs=3, min_steps=30, batch_size=16) == 30
    assert epochs_for_size(100, epochs=3, min_steps=30, batch_size=16) == 5
    assert epochs_for_size(1000, epochs=3, min_steps=30, batch_size=16) == 3


def test_compute_matched_jobs_take_the_same_steps_whatever_their_size():
    matched = {"epochs": 3, "min_steps": 30, "steps": 24}
    for size, epochs in ((30, 12), (100, 4), (300, 2), (1000, 1)):
        assert schedule_for_size(size, scaling=matched, batch_size=16) == (epochs, 24)
    assert schedule_for_size(0, scaling=matched, batch_size=16) == (0, 0)
    # Without steps: epochs_for_size, every batch of them.
    assert schedule_for_size(100, scaling={**matched, "steps": None}, batch_size=16) == (5, 35)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="unknown scaling target"):
        fit_power_law(results(), method="1_scratch", target="stress", threshold=1)
    with pytest.raises(DataError, match="lack columns"):
        collect_results([{"method": "1_scratch", "size": 1}])
    table = results()
    table.loc[0, "energy_mae_mev_per_atom"] = float("nan")  # a diverged job is left out of fits
    fit = fit_power_law(table, method="1_scratch", target="energy", threshold=100)
    assert fit.n_points == 14


def test_the_measured_efficiency_is_a_lower_bound_read_off_the_points():
    import pandas as pd

    from mlip_transfer.scaling.laws import measured_efficiency_bound

    rows = [("1_scratch", 0, 300.0), ("1_scratch", 30, 299.0), ("1_scratch", 100, 200.0),
            ("1_scratch", 300, 120.0), ("1_scratch", 1000, 80.0),
            ("4_refit_atomref", 30, 150.0), ("4_refit_atomref", 100, 70.0)]
    results = pd.DataFrame(rows, columns=["method", "size", "energy_mae_mev_per_atom"])
    bound = measured_efficiency_bound(results, scratch_method="1_scratch",
                                      transfer_method="4_refit_atomref", target="energy")
    at30, at100 = bound.set_index("size").loc[30], bound.set_index("size").loc[100]
    # 150 beats Scratch at 30 (299) and 100 (200), not at 300 (120): a factor >= 100/30.
    assert at30["beats_scratch_up_to"] == 100 and at30["factor_lower_bound"] == pytest.approx(100 / 30)
    assert not at30["at_largest_scratch"]
    # 70 beats every Scratch size: only a lower bound, at the largest size trained.
    assert at100["beats_scratch_up_to"] == 1000 and at100["at_largest_scratch"]
    # Scratch at 30 sits at its untrained floor (299 vs 300): beating only that is flagged.
    floor = results.copy()
    floor.loc[floor["size"] == 100, "energy_mae_mev_per_atom"] = 100.0
    only_floor = measured_efficiency_bound(floor, scratch_method="1_scratch",
                                           transfer_method="4_refit_atomref", target="energy")
    assert only_floor.set_index("size").loc[30, "beats_scratch_up_to"] == 30
    assert only_floor.set_index("size").loc[30, "scratch_at_floor"]
    assert not bound.set_index("size").loc[30, "scratch_at_floor"]
