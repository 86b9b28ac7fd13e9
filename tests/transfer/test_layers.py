"""The projected convolution layers (issue 16) are chgnet's layers, computed in another order."""

from __future__ import annotations

import copy

import pytest
import torch
from chgnet.model.layers import AngleUpdate, AtomConv, BondConv
from chgnet_batches import loss_and_grads, r2scan_batches

from mlip_transfer.transfer.layers import (
    ProjectedAngleUpdate,
    ProjectedAtomConv,
    ProjectedBondConv,
    project_before_gather,
    restore_stock_layers,
    stock_layers,
)

STOCK = (AtomConv, BondConv, AngleUpdate)
PROJECTED = (ProjectedAtomConv, ProjectedBondConv, ProjectedAngleUpdate)


@pytest.fixture(scope="module")
def batches(request, cache):
    """Two seeded shuffled batches of 8 r2SCAN frames (elements, compounds, magmoms)."""
    return r2scan_batches(request.config.rootpath, cache, n_frames=16, batch_size=8, seed=11)


def _kinds(model):
    return [type(m) for m in model.modules() if isinstance(m, STOCK)]


def test_projected_layers_give_chgnet_losses_gradients_and_forces(source, batches):
    stock = copy.deepcopy(source)
    stock.composition_model.requires_grad_(False)
    fast = copy.deepcopy(stock)
    assert project_before_gather(fast) == 10  # 4 atom, 3 bond, 3 angle layers of v0.3.0
    assert set(_kinds(fast)) == set(PROJECTED)
    assert project_before_gather(fast) == 10  # idempotent
    for graphs, targets in batches:
        ref_pred, ref_loss, ref_grads = loss_and_grads(stock, graphs, targets)
        new_pred, new_loss, new_grads = loss_and_grads(fast, graphs, targets)
        assert new_loss == pytest.approx(ref_loss, rel=1e-5)
        assert sorted(new_grads) == sorted(ref_grads)
        for name, ref in ref_grads.items():
            # float32 summation order only: measured <= 6e-6 of the layer's largest gradient; a
            # weight block applied to the wrong input moves them by O(1) of it.
            torch.testing.assert_close(new_grads[name], ref, rtol=1e-5,
                                       atol=1e-4 * float(ref.abs().max()),
                                       msg=lambda m, n=name: f"{n}: {m}")
        for key in "efsm":
            ref, new = ref_pred[key], new_pred[key]
            if isinstance(ref, list):
                ref = torch.cat([r.reshape(-1) for r in ref])
                new = torch.cat([x.reshape(-1) for x in new])
            torch.testing.assert_close(new.detach(), ref.detach(), rtol=1e-5, atol=1e-4)


def test_switching_keeps_the_state_dict_and_switches_back(source):
    model = copy.deepcopy(source)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    project_before_gather(model)
    assert model.state_dict().keys() == before.keys()
    with pytest.raises(RuntimeError, match="inside"):
        with stock_layers(model):
            assert set(_kinds(model)) == set(STOCK)
            raise RuntimeError("inside")
    assert set(_kinds(model)) == set(PROJECTED)  # restored after the error
    assert len(restore_stock_layers(model)) == 10 and set(_kinds(model)) == set(STOCK)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


def test_a_layer_with_dropout_stays_chgnet_s(source):
    model = copy.deepcopy(source)
    model.atom_conv_layers[0].twoBody_atom.mlp_core.layers[2].p = 0.1
    assert project_before_gather(model) == 9
    assert type(model.atom_conv_layers[0]) is AtomConv
