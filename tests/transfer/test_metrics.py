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


def test_swapping_the_atomref_in_predictions_equals_predicting_with_the_other_atomref(
    source, frames, cache
):
    """The step-0 rows' premise: the AtomRef part of a prediction is exactly linear in
    composition, so another AtomRef can be swapped into a table of predictions."""
    import copy

    from mlip_transfer.energy_scale.chgnet_atomref import read_model_atomref, set_model_atomref
    from mlip_transfer.transfer.step0 import swapped_energy_mae_mev

    table = E.energy_predictions(source, frames[:6], batch_size=4, graph_cache=cache)
    assert list(table["frame_id"]) == [f.frame_id for f in frames[:6]]
    np.testing.assert_allclose(table["energy_label"], [f.energy_per_atom for f in frames[:6]])
    other = copy.deepcopy(source)
    shifted = {el: value + 0.3 * (i % 3) for i, (el, value)
               in enumerate(read_model_atomref(source).items())}
    set_model_atomref(other, shifted)
    direct = E.evaluate_errors(other, frames[:6], batch_size=4, graph_cache=cache)
    swapped, lacking = swapped_energy_mae_mev(table, shifted)
    assert lacking == []
    # Equal to float32 rounding of energies of tens of eV/atom (0.05 meV/atom).
    assert swapped == pytest.approx(direct["energy_mae_mev_per_atom"], abs=0.05)
    own, _ = swapped_energy_mae_mev(table, read_model_atomref(source))
    assert own != pytest.approx(swapped, abs=1.0)
