"""CHGNet's forward pass with forces and stress from ONE gradient of the energy.

* forward pass: chgnet's own modules, but forces and stress come from ONE gradient of the
  energy with respect to positions and strains together (:func:`predict_efsm`), where
  ``CHGNet.forward`` takes two; the same predictions, ~1.6x faster training steps. It is checked
  against ``CHGNet.forward`` on the first batch of every training (:func:`check_fused`;
  ``fused_force_stress=False`` or a mismatch uses ``CHGNet.forward``). Validation does not
  differentiate parameters and keeps no second-order graph.
* batch assembly: a few batch-wide tensor operations (:mod:`mlip_transfer.transfer.batching`)
  instead of chgnet's ~50 per graph; the same numbers to float32 rounding.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from mlip_transfer.transfer.batching import batch_graphs
from mlip_transfer.transfer.graphs import to_device

logger = logging.getLogger("mlip_transfer.transfer.forward")
TASK = "efsm"
EV_PER_A3_TO_GPA = 160.21766208  # chgnet.model.model.CHGNet._compute


@contextlib.contextmanager
def frozen_parameters(model: Any) -> Iterator[None]:
    """No parameter is differentiated inside (predictions cost less), each one's
    ``requires_grad`` restored after, also on an error."""
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])


def can_fuse(model: Any) -> bool:
    """Whether :func:`predict_efsm` may take the fused path (intensive CHGNet with an AtomRef)."""
    return bool(getattr(model, "is_intensive", False)) and all(
        hasattr(model, name)
        for name in (
            "_compute",
            "composition_model",
            "bond_basis_expansion",
            "angle_basis_expansion",
        )
    )


def predict_efsm(
    model: Any,
    graphs: Sequence[Any],
    *,
    fused: bool = True,
    create_graph: bool = True,
    batched: bool = True,
) -> dict[str, Any]:
    """``model(graphs, task="efsm")``, with forces and stress from ONE gradient pass.

    ``CHGNet.forward`` differentiates the energy twice, once for forces and once for stress,
    each with ``create_graph=True``, so training back-propagates through two second-order
    graphs. Here the same energy is differentiated once with respect to the positions and the
    strains together: the same predictions, parameter gradients equal to float32 rounding,
    and a training step ~1.6x faster on CPU. The pieces are chgnet's own (``CHGNet._compute``,
    its basis expansions, the composition model); a model this does not fit
    (:func:`can_fuse`) or ``fused=False`` uses ``model(graphs, task="efsm")``.

    Args:
        create_graph: Keep the graph of the gradients (needed to train on forces/stress);
            False for evaluation, where it only costs memory and time.
        batched: Assemble the batch with :func:`~mlip_transfer.transfer.batching.batch_graphs`
            (a few batch-wide tensor operations); False: chgnet's graph-by-graph
            ``BatchedGraph.from_graphs`` (the reference ``tests/transfer/test_batching.py``
            compares with).
    """
    if not fused or not can_fuse(model):
        return model(graphs, task=TASK)
    comp_energy = 0 if model.composition_model is None else model.composition_model(graphs)
    if batched:
        batch, positions, strains = batch_graphs(graphs, model)
        inputs = [positions, strains]
    else:
        from chgnet.model.model import BatchedGraph

        batch = BatchedGraph.from_graphs(
            graphs,
            bond_basis_expansion=model.bond_basis_expansion,
            angle_basis_expansion=model.angle_basis_expansion,
            compute_stress=True,
        )
        inputs = [*batch.atom_positions, *batch.strains]
    prediction = model._compute(
        batch, compute_force=False, compute_stress=False, compute_magmom=True
    )
    total = (prediction["e"] * prediction["atoms_per_graph"]).sum()  # intensive -> total energy
    grads = torch.autograd.grad(
        total, inputs, create_graph=create_graph, retain_graph=create_graph
    )
    if batched:
        force_grads = grads[0].split([len(p) for p in batch.atom_positions])
        strain_grads = grads[1].unbind(0)
    else:
        n_graphs = len(batch.atom_positions)
        force_grads, strain_grads = grads[:n_graphs], grads[n_graphs:]
    prediction["f"] = [-1 * grad for grad in force_grads]
    scale = 1 / batch.volumes * EV_PER_A3_TO_GPA
    prediction["s"] = [grad * factor for grad, factor in zip(strain_grads, scale, strict=True)]
    prediction["e"] = prediction["e"] + comp_energy
    return prediction


def check_fused(
    model: Any, graphs: Sequence[Any], device: torch.device, *, batched: bool = True
) -> bool:
    """Compare the fused path with ``CHGNet.forward`` on a few graphs; False if they disagree.

    The reference runs chgnet's own layers (:func:`~mlip_transfer.transfer.layers.stock_layers`),
    so the check also covers layers switched by
    :func:`~mlip_transfer.transfer.layers.project_before_gather`.

    Args:
        batched: Check the batch-wide assembly (else chgnet's per-graph one), as trained.
    """
    if not can_fuse(model):
        logger.info(
            "fused force/stress gradient does not apply to this model; using CHGNet.forward"
        )
        return False

    def flat(prediction: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = {}
        for key in "efsm":
            value = prediction[key]
            value = torch.cat([t.reshape(-1) for t in value]) if isinstance(value, list) else value
            out[key] = value.detach().reshape(-1)
        return out

    # One at a time, parameters not differentiated: the check costs less memory than a step.
    # create_graph as in training (without it float32 noise differs, ~1e-4 eV/Å).
    from mlip_transfer.transfer.layers import stock_layers  # imports chgnet

    with frozen_parameters(model):
        with stock_layers(model):  # chgnet's own layers, also where they are projected
            reference = flat(model(to_device(graphs, {}, device, forces=True)[0], task=TASK))
        batch = to_device(graphs, {}, device, forces=True)[0]
        fused = flat(predict_efsm(model, batch, create_graph=True, batched=batched))
    worst = {}
    ok = True
    for key in "efsm":
        ref, new = reference[key], fused[key]
        worst[key] = float((ref - new).abs().max()) if ref.numel() else 0.0
        ok = (
            ok
            and ref.shape == new.shape
            and torch.allclose(
                ref,
                new,
                rtol=1e-3,
                atol=1e-4 * max(1.0, float(ref.abs().max()) if ref.numel() else 1.0),
            )
        )
    if ok:
        logger.info("fused force/stress gradient matches CHGNet.forward (max |diff| %s)", worst)
    else:
        logger.warning(
            "fused force/stress gradient differs from CHGNet.forward (max |diff| %s); "
            "training with CHGNet.forward instead",
            worst,
        )
    return ok

