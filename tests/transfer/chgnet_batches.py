"""Seeded batches of r2SCAN frames and one step's loss and gradients, for the tests that pin a
faster path of the trainer (batch-wide collation, projected layers) against chgnet's own."""

from __future__ import annotations

from pathlib import Path

import torch

from mlip_transfer.data.dataset import iter_frames
from mlip_transfer.transfer.forward import predict_efsm
from mlip_transfer.transfer.graphs import GraphDataset, make_loader, to_device

DATASET = "resources/default_dataset/frames.jsonl.gz"


def r2scan_batches(root: Path, cache, *, n_frames: int, batch_size: int, seed: int) -> list:
    """The first ``n_frames`` r2SCAN frames of the small default dataset, shuffled with
    ``seed`` into batches of ``batch_size`` (graphs, targets)."""
    frames = []
    for frame in iter_frames(root / DATASET):
        if frame.functional == "r2scan":
            frames.append(frame)
        if len(frames) == n_frames:
            break
    dataset, _ = GraphDataset.from_frames(frames, cache)
    return list(make_loader(dataset, batch_size, shuffle_seed=seed))


def loss_and_grads(model, graphs, targets, **predict):
    """Predictions, the training loss (Huber 3:1:0.1:1) and every parameter's gradient of one
    batch; ``predict``: keywords of :func:`predict_efsm`."""
    from chgnet.trainer.trainer import CombinedLoss

    loss_fn = CombinedLoss(target_str="efsm", criterion="Huber", energy_loss_ratio=3,
                           force_loss_ratio=1, stress_loss_ratio=0.1, mag_loss_ratio=1,
                           allow_missing_labels=True)
    model.zero_grad(set_to_none=True)
    graphs, targets = to_device(graphs, targets, torch.device("cpu"), forces=True)
    prediction = predict_efsm(model, graphs, **predict)
    loss = loss_fn(targets, prediction)["loss"]
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return prediction, float(loss), grads
