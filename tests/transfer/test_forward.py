"""The fused force/stress pass equals CHGNet.forward."""

from __future__ import annotations

import copy

import pytest
import torch

from mlip_transfer.transfer import forward as F
from mlip_transfer.transfer import graphs as G

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def test_fused_force_stress_pass_equals_chgnet_forward(source, frames, cache):
    from chgnet.data.dataset import collate_graphs
    from chgnet.trainer.trainer import CombinedLoss

    model = copy.deepcopy(source)
    dataset, _ = G.GraphDataset.from_frames(frames[:6], cache)
    graphs, targets = collate_graphs([dataset[i] for i in range(len(dataset))])
    loss_fn = CombinedLoss(
        target_str="efsm", criterion="Huber", energy_loss_ratio=3, mag_loss_ratio=1
    )
    results = []
    for fused in (False, True):
        batch, labels = G.to_device(graphs, targets, torch.device("cpu"), forces=True)
        # per-graph assembly: the fused gradient alone (batching: test_batching.py)
        prediction = F.predict_efsm(model, batch, fused=fused, batched=False)
        model.zero_grad()
        loss_fn(labels, prediction)["loss"].backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((prediction, grads))
    (stock, stock_grads), (fused, fused_grads) = results
    torch.testing.assert_close(fused["e"], stock["e"])
    for key in "fsm":
        for a, b in zip(fused[key], stock[key], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert set(fused_grads) == set(stock_grads)
    for name, grad in stock_grads.items():  # same gradients up to float32 summation order
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-3, atol=1e-6, msg=name)
    assert F.check_fused(model, graphs, torch.device("cpu"))

