"""Rattled 8-atom Ge cells as periodic graphs, shared by the edge-path tests."""

from __future__ import annotations

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
