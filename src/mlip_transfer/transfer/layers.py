"""CHGNet's convolution layers with the first linear layer applied before the gather.

Each of chgnet's ``AtomConv``, ``BondConv`` and ``AngleUpdate`` gathers atom, bond and angle
features onto every directed bond or angle, concatenates them and feeds the concatenation to a
gated MLP, whose core and gate start with a linear layer. A linear layer of a concatenation is
the sum of the blocks' own linear maps, and a linear map commutes with a gather, so here each
block is projected where it lives (129 atoms, 3k bonds of a batch of 16 small cells) and only
the projections are gathered onto the directed bonds (6k) and angles (7k); core and gate share
one matrix product. Same parameters, same state dict, same function: losses agree to float32
rounding (``tests/transfer/test_layers.py``), and a training step on CPU takes ~1.35x less time
because half of the model's matrix-product work, tripled by force training's double
backward, is gone.

:func:`project_before_gather` switches a model's layers in place (their class becomes a
subclass whose ``forward`` differs, nothing else); :func:`restore_stock_layers` switches them
back, :func:`stock_layers` for the duration of a ``with`` block (the reference that
:func:`~mlip_transfer.transfer.forward.check_fused` compares against). A layer with dropout is
left as chgnet's (dropout sits between the gather and the linear layer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from chgnet.model.functions import GatedMLP, aggregate
from chgnet.model.layers import AngleUpdate, AtomConv, BondConv
from torch import Tensor, nn


def _first_linear(mlp: nn.Module) -> tuple[nn.Linear, nn.Sequential]:
    """The MLP's first linear layer and the layers after it (leading zero dropouts skipped)."""
    layers = list(mlp.layers)
    start = 0
    while isinstance(layers[start], nn.Dropout):
        start += 1
    return layers[start], nn.Sequential(*layers[start + 1 :])


def _projections(
    gated: GatedMLP, widths: Sequence[int]
) -> tuple[tuple[Tensor, ...], Tensor | None, nn.Sequential, nn.Sequential]:
    """Core and gate first-layer weights stacked (``2 * out`` rows), split by input block."""
    (core, core_rest), (gate, gate_rest) = _first_linear(gated.mlp_core), _first_linear(
        gated.mlp_gate
    )
    weight = torch.cat([core.weight, gate.weight])
    bias = None if core.bias is None else torch.cat([core.bias, gate.bias])
    return weight.split(list(widths), dim=1), bias, core_rest, gate_rest


def _gated(gated: GatedMLP, pre: Tensor, core_rest: nn.Module, gate_rest: nn.Module) -> Tensor:
    """``GatedMLP.forward`` from its first layers' stacked output."""
    core, gate = pre.chunk(2, dim=1)
    core, gate = core_rest(core), gate_rest(gate)
    if gated.norm is not None:
        core, gate = gated.bn1(core), gated.bn2(gate)
    return gated.activation(core) * gated.sigmoid(gate)


def _bond_angle_messages(
    gated: GatedMLP, atom_feas: Tensor, bond_feas: Tensor, angle_feas: Tensor, bond_graph: Tensor
) -> Tensor:
    """The gated MLP of ``cat[bond_i, bond_j, angle, center atom]`` for every angle."""
    n_bond, n_angle, n_atom = bond_feas.shape[1], angle_feas.shape[1], atom_feas.shape[1]
    (w_i, w_j, w_angle, w_atom), bias, core_rest, gate_rest = _projections(
        gated, [n_bond, n_bond, n_angle, n_atom]
    )
    bond_i, bond_j = (bond_feas @ torch.cat([w_i, w_j]).T).chunk(2, dim=1)
    pre = (
        F.linear(angle_feas, w_angle, bias)
        + torch.index_select(bond_i, 0, bond_graph[:, 1])
        + torch.index_select(bond_j, 0, bond_graph[:, 2])
        + torch.index_select(atom_feas @ w_atom.T, 0, bond_graph[:, 0])
    )
    return _gated(gated, pre, core_rest, gate_rest)


def _summed_update(
    layer: AtomConv | BondConv, messages: Tensor, owners: Tensor, feas: Tensor,
    norm: nn.Module | None,
) -> Tensor:
    """The messages summed per owner, then chgnet's output MLP, residual and norm of ``feas``."""
    new = aggregate(messages, owners, average=False, num_owner=len(feas))
    if layer.use_mlp_out:
        new = layer.mlp_out(new)
    if layer.resnet:
        new = new + feas
    return new if norm is None else norm(new)


class ProjectedAtomConv(AtomConv):
    """``AtomConv`` with its messages' first linear layer applied before the gather."""

    def forward(
        self,
        atom_feas: Tensor,
        bond_feas: Tensor,
        bond_weights: Tensor,
        atom_graph: Tensor,
        directed2undirected: Tensor,
    ) -> Tensor:
        gated = self.twoBody_atom
        n_atom, n_bond = atom_feas.shape[1], bond_feas.shape[1]
        (w_center, w_bond, w_nbr), bias, core_rest, gate_rest = _projections(
            gated, [n_atom, n_bond, n_atom]
        )
        center, nbr = (atom_feas @ torch.cat([w_center, w_nbr]).T).chunk(2, dim=1)
        pre = (
            torch.index_select(center, 0, atom_graph[:, 0])
            + torch.index_select(F.linear(bond_feas, w_bond, bias), 0, directed2undirected)
            + torch.index_select(nbr, 0, atom_graph[:, 1])
        )
        messages = _gated(gated, pre, core_rest, gate_rest)
        messages = messages * torch.index_select(bond_weights, 0, directed2undirected)
        return _summed_update(self, messages, atom_graph[:, 0], atom_feas, self.atom_norm)


class ProjectedBondConv(BondConv):
    """``BondConv`` with its messages' first linear layer applied before the gather."""

    def forward(
        self,
        atom_feas: Tensor,
        bond_feas: Tensor,
        bond_weights: Tensor,
        angle_feas: Tensor,
        bond_graph: Tensor,
    ) -> Tensor:
        update = _bond_angle_messages(
            self.twoBody_bond, atom_feas, bond_feas, angle_feas, bond_graph
        )
        update = (
            update
            * torch.index_select(bond_weights, 0, bond_graph[:, 1])
            * torch.index_select(bond_weights, 0, bond_graph[:, 2])
        )
        return _summed_update(self, update, bond_graph[:, 1], bond_feas, self.bond_norm)


class ProjectedAngleUpdate(AngleUpdate):
    """``AngleUpdate`` with its first linear layer applied before the gather."""

    def forward(
        self, atom_feas: Tensor, bond_feas: Tensor, angle_feas: Tensor, bond_graph: Tensor
    ) -> Tensor:
        new = _bond_angle_messages(
            self.twoBody_bond, atom_feas, bond_feas, angle_feas, bond_graph
        )
        if self.resnet:
            new = new + angle_feas
        return new if self.angle_norm is None else self.angle_norm(new)


PROJECTED = {AtomConv: ProjectedAtomConv, BondConv: ProjectedBondConv,
             AngleUpdate: ProjectedAngleUpdate}
STOCK = {fast: stock for stock, fast in PROJECTED.items()}


def _without_dropout(layer: nn.Module) -> bool:
    return all(m.p == 0 for m in layer.modules() if isinstance(m, nn.Dropout))


def project_before_gather(model: Any) -> int:
    """Switch the model's convolution layers to the projected ones, in place (idempotent).

    Returns:
        How many of its layers are projected now (0 for a model without chgnet's layers).
    """
    for layer in model.modules():
        fast = PROJECTED.get(type(layer))
        if fast is not None and _without_dropout(layer):
            layer.__class__ = fast
    return sum(1 for layer in model.modules() if type(layer) in STOCK)


def restore_stock_layers(model: Any) -> list[nn.Module]:
    """Switch projected layers back to chgnet's own, in place; the layers switched."""
    switched = [layer for layer in model.modules() if type(layer) in STOCK]
    for layer in switched:
        layer.__class__ = STOCK[type(layer)]
    return switched


@contextlib.contextmanager
def stock_layers(model: Any) -> Iterator[None]:
    """Inside: the model's layers are chgnet's own again; after (also on an error): as before."""
    switched = restore_stock_layers(model)
    try:
        yield
    finally:
        for layer in switched:
            layer.__class__ = PROJECTED[type(layer)]
