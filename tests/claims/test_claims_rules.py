"""Each claim's verdict on inputs built to give it: reproduced, not reproduced, and not testable
(a flagged input, a difference inside the spread, a budget below the paper's)."""

import pytest
from claims_results import (
    M1,
    M2,
    M3,
    M4,
    METHODS,
    OTHERS,
    PAPER_15,
    TRAINED_FLAG,
    density_frames,
    efficiency_frame,
    importance_frame,
    scaling_files,
    stability_record,
    table1_frame,
    temperature_frame,
)

from mlip_transfer.claims import benchmarks, elements, energy_scale, readers
from mlip_transfer.claims import table1 as t1
from mlip_transfer.claims.verdicts import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED

ORIGIN = readers.Origin(data="Data: test", teacher="a teacher")


def table_inputs(frame, **options):
    return t1.Table1Inputs(rows=readers.table1_rows(frame, METHODS),
                           step0=readers.step0_rows(frame, METHODS), origin=ORIGIN, **options)


# ---------------------------------------------------------------- energy scale


def correlation(raw, scaled):
    entry = {"raw": dict(zip(("rho", "low", "high"), raw)), "scaled": dict(zip(("rho", "low", "high"), scaled))}
    return {"shipped": {**entry, "n": 100}, "refit": entry}


@pytest.mark.parametrize(("raw", "scaled", "verdict"), [
    ((0.09, 0.0, 0.2), (0.93, 0.90, 0.95), REPRODUCED),
    ((0.09, 0.0, 0.2), (0.60, 0.50, 0.70), NOT_REPRODUCED),  # rises, but far below 0.925
    ((0.85, 0.80, 0.92), (0.93, 0.90, 0.95), NOT_REPRODUCED),  # inside the raw interval
])
def test_rho_claim(raw, scaled, verdict):
    claim = energy_scale.rho_claim(correlation=correlation(raw, scaled), origin=ORIGIN, source="c.json",
                                   tolerance=0.1)
    assert claim.verdict == verdict and "0.0917" in claim.paper and "refit" in claim.this_run
    missing = energy_scale.rho_claim(correlation=None, origin=ORIGIN, source="c.json", tolerance=0.1)
    assert missing.verdict == NOT_TESTABLE


def test_importance_overlap_beyond_chance_decides():
    good = energy_scale.importance_claims(importance=importance_frame(PAPER_15[:12]), origin=ORIGIN,
                                          source="i.csv", confidence=0.95)
    assert [c.verdict for c in good] == [REPRODUCED, REPRODUCED]
    bad = energy_scale.importance_claims(importance=importance_frame(OTHERS[:20]), origin=ORIGIN,
                                         source="i.csv", confidence=0.95)
    assert [c.verdict for c in bad] == [NOT_REPRODUCED, NOT_REPRODUCED]
    assert "p = " in bad[0].this_run
    # Data without any of the paper's elements cannot test it.
    only_others = importance_frame(OTHERS)
    only_others = only_others[~only_others["element"].isin(PAPER_15)]
    none = energy_scale.importance_claims(importance=only_others, origin=ORIGIN, source="i.csv",
                                          confidence=0.95)
    assert {c.verdict for c in none} == {NOT_TESTABLE}


# ---------------------------------------------------------------- Table 1 and Fig. 3a


def test_table1_claims_read_trained_rows_only():
    inputs = table_inputs(table1_frame())
    assert set(inputs.rows) == set(METHODS) and set(inputs.step0) == set(METHODS)
    for claim in (t1.m4_beats_m1(inputs), t1.m2_m3_negative_transfer(inputs, similar=0.1),
                  t1.m4_best_on(inputs, "decomposition_energy_mae_mev"),
                  t1.m4_best_on(inputs, "formation_energy_mae_mev")):
        assert claim.verdict == REPRODUCED, claim
    # Without the stage column and the extra rows (today's Table 1) it reads the same rows.
    plain = table1_frame().query("stage == 'trained'").drop(columns="stage")
    assert t1.m4_beats_m1(table_inputs(plain)).verdict == REPRODUCED


def test_m4_losing_on_one_metric_is_not_reproduced():
    inputs = table_inputs(table1_frame(**{M4: {"stress_mae_gpa": 0.30}}))
    claim = t1.m4_beats_m1(inputs)
    assert claim.verdict == NOT_REPRODUCED and "M4 higher" in claim.this_run


def test_a_flagged_row_makes_the_claim_not_testable_with_the_budget_it_needs():
    inputs = table_inputs(table1_frame(**{M1: {"flags": TRAINED_FLAG}}), steps=66)
    claim = t1.m4_beats_m1(inputs)
    assert claim.verdict == NOT_TESTABLE and "M1: not trained" in claim.flags[0]
    assert "66 optimiser steps" in claim.needs and "148,900" in claim.needs


def test_a_value_training_did_not_change_from_step_0_is_flagged():
    frame = table1_frame(**{f"{M4}_step0": {"decomposition_energy_mae_mev": 23.7}})
    claim = t1.m4_best_on(table_inputs(frame), "decomposition_energy_mae_mev")
    assert claim.verdict == NOT_TESTABLE and "against step 0" in claim.flags[0]


def test_a_difference_within_the_one_seed_tolerance_is_not_testable():
    inputs = table_inputs(table1_frame(**{M4: {"energy_mae_mev": 26.9}}), tolerance=0.01)
    claim = t1.m4_beats_m1(inputs)
    assert claim.verdict == NOT_TESTABLE and "more seeds" in claim.needs


def test_m2_m3_claims():
    apart = table_inputs(table1_frame(**{M3: {"force_mae_mev": 90.0}}))
    assert t1.m2_m3_negative_transfer(apart, similar=0.1).verdict == NOT_REPRODUCED
    better = table_inputs(table1_frame(**{M2: {"force_mae_mev": 40.0}, M3: {"force_mae_mev": 40.5}}))
    assert t1.m2_m3_negative_transfer(better, similar=0.1).verdict == NOT_REPRODUCED
    missing = table_inputs(table1_frame().query(f"model != '{M2}'"))
    claim = t1.m2_m3_negative_transfer(missing, similar=0.1)
    assert claim.verdict == NOT_TESTABLE and "M2" in claim.needs


def test_m4_not_best_on_formation_energy():
    inputs = table_inputs(table1_frame(**{M1: {"formation_energy_mae_mev": 20.0}}))
    assert t1.m4_best_on(inputs, "formation_energy_mae_mev").verdict == NOT_REPRODUCED


@pytest.mark.parametrize(("ratio", "window", "verdict"), [
    (12.0, 3000, REPRODUCED), (2.5, 3000, NOT_REPRODUCED), (12.0, 22, NOT_TESTABLE),
    (2.5, 22, NOT_TESTABLE),
])
def test_gradient_ratio_needs_the_papers_first_epoch(ratio, window, verdict):
    ratios = {"AtomEmb": ratio, "BondEmb": ratio * 2, "AngleEmb": float("nan")}
    claim = t1.gradient_claim(ratios=ratios, window=window, sources=["g.csv"], origin=ORIGIN)
    assert claim.verdict == verdict
    if verdict == NOT_TESTABLE:
        assert "2,978 optimiser steps" in claim.needs and f"this run: {window}" in claim.needs
    assert "ablation" not in claim.this_run
    answered = t1.gradient_claim(ratios=ratios, window=window, sources=["g.csv"], origin=ORIGIN,
                                 ablation="only MSE reaches 10x.")
    assert answered.verdict == verdict
    assert answered.this_run.endswith("Gradient ablation: only MSE reaches 10x.")


# ---------------------------------------------------------------- density


def density_inputs(ratios=None, flags=None, method_flags=None):
    summary, solids = density_frames(ratios)
    if flags:
        summary["flags"] = summary["model"].map(flags).fillna("")
    return benchmarks.DensityInputs(summary=summary, solids=solids, origin=ORIGIN, n_boot=200,
                                    method_flags=method_flags or {})


def test_density_claims_on_clear_data():
    inputs = density_inputs()
    assert benchmarks.gga_underestimates_density(inputs).verdict == REPRODUCED
    assert benchmarks.m4_lowest_density_error(inputs).verdict == REPRODUCED


def test_gga_overestimating_density_is_not_reproduced_and_noise_is_not_testable():
    over = {m: [0.9] * 6 for m in ("pretrained_gga",)} | {m: [1.0] * 6 for m in (M1, M2, M3, M4)}
    assert benchmarks.gga_underestimates_density(density_inputs(over)).verdict == NOT_REPRODUCED
    noisy = {"pretrained_gga": [1.3, 0.8, 1.2, 0.9, 1.25, 0.85]} | {m: [1.0, 1.1, 0.9, 1.05, 1.0, 0.95]
                                                                   for m in (M1, M2, M3, M4)}
    claim = benchmarks.gga_underestimates_density(density_inputs(noisy))
    assert claim.verdict == NOT_TESTABLE and "bootstrap" in claim.needs


def test_flagged_densities_are_not_testable():
    start = {M1: "density ratio 0.729 is within 1 % of the strained start's 0.729"}
    claim = benchmarks.gga_underestimates_density(density_inputs(flags=start))
    assert claim.verdict == NOT_TESTABLE and "strained start" in claim.flags[0]
    # An untrained method's density is not its result either (its Table 1 flags).
    untrained = benchmarks.m4_lowest_density_error(density_inputs(method_flags={M4: [TRAINED_FLAG]}))
    assert untrained.verdict == NOT_TESTABLE and untrained.flags[0].startswith("M4: not trained")


def test_density_without_the_gga_model_is_not_testable():
    ratios = {m: [1.0] * 6 for m in (M1, M2, M3, M4)}
    claim = benchmarks.gga_underestimates_density(density_inputs(ratios))
    assert claim.verdict == NOT_TESTABLE and "pretrained_gga" in claim.needs


# ---------------------------------------------------------------- scaling law


def scaling_inputs(**options):
    fits, results = scaling_files(**options)
    return benchmarks.ScalingInputs(fits=fits, results=results, origin=ORIGIN)


def test_scaling_claims_at_the_papers_sizes():
    inputs = scaling_inputs()
    for target in ("energy", "force"):
        assert benchmarks.scaling_slopes(inputs, target, tolerance=0.01).verdict == REPRODUCED
    assert benchmarks.transfer_data_efficiency(inputs, tolerance=0.01).verdict == REPRODUCED


def test_scaling_below_the_papers_threshold_is_not_testable():
    inputs = scaling_inputs(sizes=(25, 50, 100, 200), threshold=25)
    slope = benchmarks.scaling_slopes(inputs, "energy", tolerance=0.01)
    assert slope.verdict == NOT_TESTABLE and "1,000" in slope.needs
    efficiency = benchmarks.transfer_data_efficiency(inputs, tolerance=0.01)
    assert efficiency.verdict == NOT_TESTABLE and "≥ 10 N" in efficiency.needs
    assert "beats Scratch at every measured size" not in efficiency.this_run  # no bound given
    inputs.fits["targets"]["energy"]["measured_efficiency"] = {M4: [
        {"size": 25, "beats_scratch_up_to": 200, "factor_lower_bound": 8.0,
         "at_largest_scratch": True, "scratch_at_floor": True},
        {"size": 50, "beats_scratch_up_to": 200, "factor_lower_bound": 4.0,
         "at_largest_scratch": True, "scratch_at_floor": False}]}
    bound = benchmarks.transfer_data_efficiency(inputs, tolerance=0.01)
    assert bound.verdict == NOT_TESTABLE
    assert ("energy: Transfer at 25 beats Scratch at every measured size up to 200 (factor ≥ 8.0, "
            "a lower bound) [flagged: Scratch there is at its untrained AtomRef floor]") in bound.this_run


def test_overlapping_slopes_and_flagged_sizes_are_not_testable():
    inputs = scaling_inputs()
    fit = inputs.fits["targets"]["energy"]["fits"]
    fit[M4].update(slope=-0.58, slope_ci_low=-0.62, slope_ci_high=-0.5)
    assert benchmarks.scaling_slopes(inputs, "energy", tolerance=0.01).verdict == NOT_TESTABLE
    flag = {"method": M4, "size": 3000, "target": "force", "code": "indistinguishable",
            "message": "1_scratch and 4_refit_atomref are indistinguishable on force MAE"}
    flagged = scaling_inputs(flags=[flag])
    claim = benchmarks.scaling_slopes(flagged, "force", tolerance=0.01)
    assert claim.verdict == NOT_TESTABLE and "indistinguishable" in claim.flags[0]
    assert benchmarks.scaling_slopes(flagged, "energy", tolerance=0.01).verdict == REPRODUCED


def test_transfer_losing_to_ten_times_the_scratch_data_is_not_reproduced():
    inputs = scaling_inputs()
    rows = inputs.results
    rows.loc[(rows["method"] == M4) & (rows["size"] == 1000), "force_mae_mev_per_a"] = 1000.0
    assert benchmarks.transfer_data_efficiency(inputs, tolerance=0.01).verdict == NOT_REPRODUCED


# ---------------------------------------------------------------- Si -> Ge


SETTINGS = {"finetune": {"max_steps": 80}, "stability": {"train_size": 10, "duration_ps": 100,
                                                     "temperature": 1200}}


def ge_inputs(**tables):
    base = {"efficiency": efficiency_frame(), "temperature": temperature_frame(),
            "stability": stability_record()}
    return elements.ElementInputs(**(base | tables), settings=SETTINGS, origin=ORIGIN)


def test_ge_claims_on_clear_data():
    inputs = ge_inputs()
    for claim in (elements.data_efficiency(inputs), elements.stability(inputs),
                  elements.temperature_transfer(inputs), elements.structure(inputs)):
        assert claim.verdict == REPRODUCED, claim


def test_flat_learning_curves_flag_every_ge_claim():
    """Ge models whose errors did not fall with N were shaped by the update count, not the
    data: none of the four claims is the methods' result (the default run's case)."""
    flat = {m: {n: (v, v - 1, v + 1) for n in (1, 10, 40, 100, 195)}
            for m, v in (("scratch", 52.0), ("transfer", 32.0))}
    inputs = ge_inputs(efficiency=efficiency_frame(flat))
    for claim in (elements.data_efficiency(inputs), elements.stability(inputs),
                  elements.temperature_transfer(inputs), elements.structure(inputs)):
        assert claim.verdict == NOT_TESTABLE and "does not fall" in claim.flags[0], claim
        assert "converge" in claim.needs
    one_size = ge_inputs(efficiency=efficiency_frame({"scratch": {2: (900, 890, 910)},
                                                      "transfer": {2: (700, 690, 710)}}))
    claim = elements.temperature_transfer(one_size)
    assert claim.verdict == NOT_TESTABLE and "one Ge training size" in claim.flags[0]


def test_transfer_at_10_losing_to_scratch_below_50_is_not_reproduced():
    values = {"scratch": {1: (150, 149, 151), 10: (60, 59, 61), 40: (30, 29, 31), 100: (20, 19, 21)},
              "transfer": {10: (45, 44, 46)}}
    claim = elements.data_efficiency(ge_inputs(efficiency=efficiency_frame(values)))
    assert claim.verdict == NOT_REPRODUCED and "scratch at 40" in claim.this_run
    # Between scratch at 40 and at 100: only a model at 50 frames would tell.
    values["transfer"] = {10: (25, 24, 26)}
    claim = elements.data_efficiency(ge_inputs(efficiency=efficiency_frame(values)))
    assert claim.verdict == NOT_TESTABLE and "50 frames" in claim.needs


def test_transfer_at_10_within_the_spread_of_scratch_at_50_needs_more_seeds():
    """The default run's case: a scratch model at exactly 50 frames, spreads overlapping."""
    values = {"scratch": {1: (24.2, 20.5, 27.9), 10: (17.5, 16.7, 18.4), 50: (16.8, 13.0, 20.6),
                          195: (15.8, 12.6, 18.9)},
              "transfer": {10: (12.6, 10.9, 14.3)}}
    claim = elements.data_efficiency(ge_inputs(efficiency=efficiency_frame(values)))
    assert claim.verdict == NOT_TESTABLE and claim.this_run.count("scratch at 50") == 1
    assert "more seeds" in claim.needs and "50 frames" not in claim.needs


def test_stability_runs_too_few_or_short_are_not_testable():
    short = stability_record(scratch_unstable=0, runs=4, duration_ps=0.5)
    claim = elements.stability(ge_inputs(stability=short))
    assert claim.verdict == NOT_TESTABLE and "≥ 9 runs" in claim.needs and "0/4" in claim.this_run
    # Enough long runs and no difference: the study's claim fails.
    same = stability_record(scratch_unstable=1, transfer_unstable=1, runs=20, duration_ps=100)
    assert elements.stability(ge_inputs(stability=same)).verdict == NOT_REPRODUCED
    worse = stability_record(scratch_unstable=0, transfer_unstable=15, runs=20)
    assert elements.stability(ge_inputs(stability=worse)).verdict == NOT_REPRODUCED


def test_temperature_within_the_seed_spread_is_not_testable():
    claim = elements.temperature_transfer(ge_inputs(temperature=temperature_frame(gap=1.0, spread=2.0)))
    assert claim.verdict == NOT_TESTABLE and "seed spread" in claim.needs
    worse = elements.temperature_transfer(ge_inputs(temperature=temperature_frame(gap=-10.0)))
    assert worse.verdict == NOT_REPRODUCED


def test_structure_claims():
    equal = elements.structure(ge_inputs(stability=stability_record(rdf=(0.229, 0.229), adf=(0.3, 0.3))))
    assert equal.verdict == NOT_TESTABLE and "no spread" in equal.this_run
    better = elements.structure(ge_inputs(stability=stability_record(rdf=(0.1, 0.2), adf=(0.1, 0.3))))
    assert better.verdict == NOT_REPRODUCED
    record = stability_record()
    record["structure"]["transfer"] |= {"rdf_difference_seeds": [0.25, 0.35], "adf_difference_seeds": [0.3, 0.5]}
    record["structure"]["scratch"] |= {"rdf_difference_seeds": [0.15, 0.25], "adf_difference_seeds": [0.2, 0.3]}
    assert elements.structure(ge_inputs(stability=record)).verdict == NOT_TESTABLE  # within spread


def test_ge_trainings_that_hit_max_steps_flag_the_claims_reading_them():
    """A Ge model still improving at max_steps is not what its data make of it: the claims
    that read its size are flagged, the others are not."""
    table = efficiency_frame()
    table["not_converged"] = 0
    table.loc[(table["method"] == "scratch") & (table["size"] == 195), "not_converged"] = 1
    inputs = ge_inputs(efficiency=table)
    claim = elements.data_efficiency(inputs)  # reads the whole curve
    assert claim.verdict == NOT_TESTABLE and "scratch n=195: 1 of" in claim.flags[0]
    assert "max_steps" in claim.needs
    assert elements.stability(inputs).verdict == REPRODUCED  # 10-frame models converged
    table["not_converged"] = 0
    assert elements.data_efficiency(ge_inputs(efficiency=table)).verdict == REPRODUCED
