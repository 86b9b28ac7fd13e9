"""Rattled 8-atom Ge cells as periodic graphs, and models with forces from the start, shared
by the edge-path tests."""

from __future__ import annotations

import torch

from mlip_transfer.elements.dimenet import DimeNetPP, DimeNetSettings
from mlip_transfer.elements.graph import PeriodicGraph, build_graph
from mlip_transfer.elements.stillinger_weber import diamond_cell


def rattled_ge_graphs(n: int, *, cutoff: float) -> list[PeriodicGraph]:
    """``n`` diamond Ge cells rattled by 0.2 Å (seeds 0 .. n-1), graphs at ``cutoff``."""
    graphs = []
    for seed in range(n):
        atoms = diamond_cell("Ge", repeats=1)
        atoms.rattle(0.2, seed=seed)
        graphs.append(build_graph(numbers=atoms.numbers, positions=atoms.positions,
                                  cell=atoms.cell.array, cutoff=cutoff))
    return graphs


def model_with_forces(settings: DimeNetSettings, *, seed: int) -> DimeNetPP:
    """A seeded edge-path model whose output layers are drawn at random.

    torch_geometric starts them at zero, which gives no energy, no forces and nothing to compare.
    """
    torch.manual_seed(seed)
    model = DimeNetPP(settings=settings)
    with torch.no_grad():
        for block in model.output_blocks:
            block.lin.weight.normal_(0, 0.1)
    return model
