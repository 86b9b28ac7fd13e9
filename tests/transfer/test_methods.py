"""The four transfer methods (and 4r): their names and starting points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.energy_scale.atomref import fit_atomref_to_frames, fit_residual_shift
from mlip_transfer.energy_scale.chgnet_atomref import read_model_atomref
from mlip_transfer.transfer import methods as M

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
GNN_PARAM = "mlp.layers.0.weight"
ATOMREF = "composition_model.fc.weight"


def weight(model, name=ATOMREF):
    return dict(model.named_parameters())[name].detach().cpu().clone()



def test_methods_are_the_papers_four_plus_the_residual_variant():
    assert M.METHODS == (
        "1_scratch",
        "2_trainable_gga_atomref",
        "3_frozen_gga_atomref",
        "4_refit_atomref",
        "4r_residual_atomref",
    )
    assert set(M.METHOD_NAMES) == set(M.METHODS)
    assert [m for m in M.METHODS if M.TRAINABLE_ATOMREF[m]] == ["2_trainable_gga_atomref"]
    with pytest.raises(ConfigError, match="training method"):
        M.build_model("5_magic", train_frames=[])



def test_build_model_starting_points(source, built, train_frames):
    src_ref = read_model_atomref(source)
    src_gnn = weight(source, GNN_PARAM)
    refit = fit_atomref_to_frames(train_frames)
    present = {el for f in train_frames for el in f.species}

    def atomref(method):
        return read_model_atomref(built[method][0])

    # Method 1: random GNN (seeded), AtomRef = Eq. 2 refit, frozen.
    m1, info1 = built["1_scratch"]
    assert not torch.equal(weight(m1, GNN_PARAM), src_gnn)
    assert info1["gnn_init"].startswith("random") and info1["atomref_trainable"] is False
    for el, value in refit.energies.items():
        assert atomref("1_scratch")[el] == pytest.approx(value, abs=1e-5)
    # Absent from training: the source value plus the median fitted shift, never the bare GGA one.
    fallback = info1["atomref_fallback"]
    assert "Pu" in fallback["elements"] and not set(fallback["elements"]) & set(refit.energies)
    median = float(np.median([refit.energies[el] - src_ref[el] for el in refit.energies]))
    assert fallback["shift_ev_per_atom"] == pytest.approx(median, abs=1e-5)
    assert atomref("1_scratch")["Pu"] == pytest.approx(src_ref["Pu"] + median, abs=1e-5)
    assert abs(median) > 1.0  # r2SCAN - GGA: several eV/atom, which the bare GGA value would miss
    again, _ = M.build_model("1_scratch", train_frames=train_frames, source_model=source, seed=0)
    other, _ = M.build_model("1_scratch", train_frames=train_frames, source_model=source, seed=1)
    assert torch.equal(weight(again, GNN_PARAM), weight(m1, GNN_PARAM))
    assert not torch.equal(weight(other, GNN_PARAM), weight(m1, GNN_PARAM))

    # Methods 2 and 3: source weights and source AtomRef; trainable only in Method 2.
    for method, trainable in (("2_trainable_gga_atomref", True), ("3_frozen_gga_atomref", False)):
        model, info = built[method]
        assert atomref(method) == src_ref
        assert torch.equal(weight(model, GNN_PARAM), src_gnn)
        assert info["atomref_trainable"] is trainable
        assert model.composition_model.fc.weight.requires_grad is trainable

    # Method 4: AtomRef = Eq. 2 refit on the training frames; undetermined ones get the fallback.
    m4, info4 = built["4_refit_atomref"]
    assert torch.equal(weight(m4, GNN_PARAM), src_gnn)
    for el in present:
        expected = refit.energies.get(el, src_ref[el] + median)
        assert atomref("4_refit_atomref")[el] == pytest.approx(expected, abs=1e-5)
    assert set(info4["atomref_undetermined"]) == set(refit.missing)
    assert info4["atomref_fitted_elements"] == sorted(refit.energies)
    assert "Pu" in info4["atomref_absent_from_training"]

    # Method 4r: source + shift fitted to (label - source prediction), predictions by chgnet.
    preds = [float(source.predict_structure(f.to_structure(), task="e")["e"]) for f in train_frames]
    shift = fit_residual_shift(
        [f.species for f in train_frames], [f.energy_per_atom for f in train_frames], preds
    )
    median_shift = float(np.median(list(shift.energies.values())))
    for el in present:
        expected = src_ref[el] + shift.energies.get(el, median_shift)
        assert atomref("4r_residual_atomref")[el] == pytest.approx(expected, abs=1e-4)
    assert built["4r_residual_atomref"][1]["atomref_fallback"]["shift_ev_per_atom"] == (
        pytest.approx(median_shift, abs=1e-4))
    assert read_model_atomref(source) == src_ref  # the source model itself is untouched

