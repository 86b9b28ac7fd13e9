"""Errors of a model on labelled frames."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mlip_transfer.transfer import metrics as E

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def test_evaluate_errors_is_zero_on_the_models_own_predictions(source, frames, cache):
    own = []
    for frame in frames[:6]:
        pred = source.predict_structure(frame.to_structure(), task="efsm")
        own.append(
            dataclasses.replace(
                frame,
                energy=float(pred["e"]) * frame.n_atoms,
                forces=np.asarray(pred["f"], dtype=float),
                stress=np.asarray(pred["s"], dtype=float),
                magmoms=np.asarray(pred["m"], dtype=float),
            )
        )
    errors = E.evaluate_errors(source, own, batch_size=4, graph_cache=cache)
    assert errors["n_frames"] == 6 and errors["n_skipped"] == 0
    assert errors["energy_mae_mev_per_atom"] < 1e-3  # float32 noise only
    assert errors["force_mae_mev_per_a"] < 1e-2
    assert errors["stress_mae_gpa"] < 1e-4
    assert errors["magmom_mae_mub"] < 1e-5
    shifted = [
        dataclasses.replace(f, energy=f.energy + 0.010 * f.n_atoms, magmoms=None) for f in own
    ]
    errors = E.evaluate_errors(source, shifted, batch_size=4, graph_cache=cache)
    assert errors["energy_mae_mev_per_atom"] == pytest.approx(10.0, abs=1e-3)  # 10 meV/atom
    assert math.isnan(errors["magmom_mae_mub"])  # no labels: not zero
    assert all(
        p.requires_grad for n, p in source.named_parameters() if not n.startswith("composition")
    )
