"""Si -> Ge trainings that stop when the validation error stops improving (issue 15)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.elements import training
from mlip_transfer.elements.convergence import EarlyStopping, validation_split
from mlip_transfer.elements.dimenet import DimeNetSettings
from mlip_transfer.elements.sampling import SamplingSettings, sample_frames
from mlip_transfer.elements.training import TrainSettings, start_model, train_force_matching

SMALL = DimeNetSettings(num_blocks=1)
torch.set_num_threads(1)
# A validation error that falls, then plateaus above its best (at step 3) for good.
PLATEAU = [50.0, 40.0, 30.0, 20.0, 25.0, 21.0, 22.0, 20.5, 19.0, 10.0, 5.0, 1.0]


@pytest.fixture(scope="module")
def pool():
    sampling = SamplingSettings(cell_repeats=1, equilibration_ps=0.02, interval_fs=10, trajectories=2)
    return sample_frames(
        element="Ge", temperature=1200, n_frames=5, set_name="pool", settings=sampling,
        progress=False,
    )


def test_stop_rule_stops_patience_after_the_best_and_keeps_it():
    stopper = EarlyStopping(patience=3)
    stops = [
        stopper.record(step=step, train_loss=1.0, value=value, state={"w": torch.tensor(value)})
        for step, value in enumerate(PLATEAU[:7])
    ]
    assert stops == [False] * 6 + [True]  # best at step 3, three steps without a better one
    assert (stopper.best_step, stopper.best_value, stopper.stopped_at) == (3, 20.0, 6)
    assert float(stopper.best_state["w"]) == 20.0
    again = EarlyStopping(patience=3)
    again.load_state_dict(stopper.state_dict())
    assert again.state_dict() == stopper.state_dict()


def test_stop_rule_without_patience_never_stops_but_keeps_the_best():
    stopper = EarlyStopping(patience=0)
    assert not any(
        stopper.record(step=s, train_loss=0.0, value=v, state=None) for s, v in enumerate(PLATEAU)
    )
    assert stopper.best_step == len(PLATEAU) - 1
    with pytest.raises(ConfigError):
        EarlyStopping(patience=-1)


def test_minimum_relative_improvement_stops_a_flattening_curve_and_keeps_its_lowest_point():
    stopper = EarlyStopping(patience=2, min_rel_improvement=0.1)
    for step, value in enumerate([10.0, 9.5, 9.2]):
        stop = stopper.record(step=step, train_loss=0.0, value=value, state=None)
    # Neither gain is 10 %: the clock runs from step 0, but the lowest error is the one kept.
    assert stop and stopper.improved_step == 0 and stopper.best_step == 2


@pytest.mark.parametrize("size", [1, 3, 190])
def test_validation_frames_are_never_training_frames(size):
    train0, val0 = validation_split(201, size=size, validation_size=6, seed=0)
    train1, val1 = validation_split(201, size=size, validation_size=6, seed=1)
    assert len(train0) == size and len(val0) == 6
    assert not set(train0) & set(val0) and not set(train1) & set(val1)
    assert val0 == val1  # one validation set for every seed (and size)
    assert validation_split(201, size=1, validation_size=6, seed=0)[1] == val0


def test_validation_split_without_validation_is_the_old_subset():
    import numpy as np

    train, val = validation_split(20, size=5, validation_size=0, seed=3)
    assert val == [] and train == sorted(np.random.default_rng([3, 7919]).permutation(20)[:5])


def test_validation_split_refuses_a_pool_too_small():
    with pytest.raises(DataError, match="pool has 10"):
        validation_split(10, size=8, validation_size=3, seed=0)


def _stub(monkeypatch, values, *, fail_at=None):
    """Replace the validation by ``values`` in order; record the weights it saw."""
    seen = []

    def fake(model, frames, graphs):
        if fail_at is not None and len(seen) == fail_at:
            raise KeyboardInterrupt
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return values[len(seen) - 1]

    monkeypatch.setattr(training, "_validate", fake)
    return seen


def _run(pool, out_dir, settings):
    model = start_model("scratch", settings=SMALL, seed=2)[0]
    summary = train_force_matching(
        model=model, frames=pool[:2], val_frames=pool[2:], settings=settings, out_dir=out_dir,
        progress=False,
    )
    return model, summary


PATIENT = TrainSettings(
    max_steps=10, batch_size=1, patience=3, validate_every=1, checkpoint_every=1,
    learning_rate=1e-3, final_learning_rate=1e-4,
)


def test_training_stops_at_patience_and_ends_with_the_best_weights(pool, tmp_path, monkeypatch):
    seen = _stub(monkeypatch, PLATEAU)
    model, summary = _run(pool, tmp_path, PATIENT)
    assert summary["steps"] == 6 and summary["best_step"] == 3 and summary["stopped_early"]
    assert summary["best_val_force_mae_mev_per_a"] == 20.0 and summary["validation_frames"] == 3
    best = seen[3]  # validations at steps 0..6: the fourth is step 3
    for name, value in model.state_dict().items():
        if name != "energy_shift":
            torch.testing.assert_close(value, best[name])
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert list(curve["step"]) == list(range(7))
    assert list(curve["val_force_mae_mev_per_a"]) == PLATEAU[:7]
    assert curve["train_loss"].iloc[1:].notna().all() and len(pd.read_csv(tmp_path / "history.csv")) == 6


def test_training_without_improvement_runs_to_the_cap(pool, tmp_path, monkeypatch):
    _stub(monkeypatch, [100.0 - k for k in range(20)])
    _, summary = _run(pool, tmp_path, PATIENT)
    assert summary["steps"] == 10 and summary["best_step"] == 10 and not summary["converged"]


def test_a_resumed_run_stops_where_an_uninterrupted_one_does(pool, tmp_path, monkeypatch):
    _stub(monkeypatch, PLATEAU)
    reference, expected = _run(pool, tmp_path / "a", PATIENT)
    _stub(monkeypatch, PLATEAU, fail_at=5)  # interrupted while validating step 5
    with pytest.raises(KeyboardInterrupt):
        _run(pool, tmp_path / "b", PATIENT)
    _stub(monkeypatch, PLATEAU[5:])  # the checkpoint of step 4 holds validations 0..4
    resumed, summary = _run(pool, tmp_path / "b", PATIENT)
    assert summary["resumed_from_step"] == 4
    assert (summary["steps"], summary["best_step"]) == (expected["steps"], expected["best_step"])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b" / "curve.csv"),
                                  pd.read_csv(tmp_path / "a" / "curve.csv"))
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    _stub(monkeypatch, [])  # a finished run resumes without training or validating again
    _, again = _run(pool, tmp_path / "b", PATIENT)
    assert again["steps"] == expected["steps"] and again["resumed_from_step"] == 6


def test_patience_without_validation_frames_is_refused(pool, tmp_path):
    model = start_model("scratch", settings=SMALL, seed=2)[0]
    with pytest.raises(ConfigError, match="validation frames"):
        train_force_matching(model=model, frames=pool[:2], settings=PATIENT, out_dir=tmp_path,
                             progress=False)
    with pytest.raises(ConfigError, match="validate_every"):
        TrainSettings(max_steps=3, patience=2)
