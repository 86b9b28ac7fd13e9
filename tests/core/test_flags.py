"""Each automatic flag on a case built to raise it and on one built not to."""

import math

import pytest

from mlip_transfer.core import flags


def test_not_trained_below_one_percent_only():
    flag = flags.not_trained(0.401, 0.4008, metric="validation energy MAE", unit="eV/atom")
    assert flag.code == "not_trained"
    assert flag.message == ("not trained at this budget: validation energy MAE changed 0.05 % "
                            "(0.401 → 0.4008 eV/atom)")
    assert flags.not_trained(2.7578, 2.7175, metric="validation energy MAE") is None  # 1.5 %
    assert flags.not_trained(1.0, 1.0101, metric="x") is None  # worse by > 1 % is a change too
    assert flags.not_trained(math.nan, 1.0, metric="x") is None
    assert flags.not_trained(0.1, 0.1, metric="x", tolerance=0.0) is None


def test_relaxations_without_a_step_are_counted():
    flag = flags.relaxations_without_step([0, 3, 0, 12])
    assert flag.code == "no_relaxation_step"
    assert flag.message.startswith("2 of 4 relaxations took no step")
    assert flags.relaxations_without_step([1, 3]) is None
    assert flags.relaxations_without_step([]) is None


@pytest.mark.parametrize(("ratio", "raised"), [(0.727, True), (0.729, True), (0.72, False),
                                               (1.01, False), (math.nan, False)])
def test_density_at_the_strained_start(ratio, raised):
    flag = flags.at_strained_start(ratio, strain=-0.10)
    assert (flag is not None) == raised
    if raised:
        assert "strained start's 0.729" in flag.message and flag.code == "density_at_strained_start"


def test_methods_within_the_seed_spread_are_indistinguishable():
    names = ("3_frozen_gga_atomref", "2_trainable_gga_atomref")
    flag = flags.indistinguishable([10.0, 12.0], [11.0, 11.5], names=names, metric="force MAE")
    assert flag.code == "indistinguishable" and "within the seeds' spread 2" in flag.message
    assert flags.indistinguishable([10.0, 10.5], [20.0, 21.0], names=names, metric="x") is None
    assert flags.indistinguishable([10.0], [10.0], names=names, metric="x") is None  # one seed


def test_flag_text_joins_the_raised_flags():
    raised = flags.relaxations_without_step([0])
    assert flags.flag_text([None, raised, None]) == raised.message
    assert flags.flag_text([None]) == ""


def test_history_not_trained_compares_epoch_zero_with_the_last_validation(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text(
        "epoch,split,energy_mae,force_mae\n"
        "0,val,0.400,0.100\n1,train,0.3,0.09\n1,val,0.3999,0.080\n2,val,0.3998,0.070\n"
    )
    found = flags.history_not_trained(history, what="the full-size training's validation")
    assert found["force"] is None  # 0.100 -> 0.070
    assert found["energy"].code == "not_trained"
    assert "the full-size training's validation energy MAE changed 0.05 %" in found["energy"].message
    history.write_text("epoch,split,energy_mae,force_mae\n1,val,0.4,0.1\n2,val,0.4,0.1\n")
    assert flags.history_not_trained(history) is None  # nothing before training to compare with
