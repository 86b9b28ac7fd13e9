"""CHGNet's ``BatchedGraph.from_graphs`` as a few batch-wide tensor operations (issue 16).

chgnet assembles a batch graph by graph: per structure a strained lattice, Cartesian
coordinates, the bond and angle basis expansions and the index offsets, about 50 small
operations each. Forces and stress differentiate through all of them, and training then
back-propagates through that derivative again, so a batch of 16 small cells pays ~2,400 tiny
autograd nodes where one batch-wide pass needs ~60. :func:`batch_graphs` does the same
arithmetic once over the whole batch (the same modules, ``bond_basis_expansion`` and
``angle_basis_expansion``, applied to the concatenated bonds and angles) and returns the
tensors forces and stress are taken with respect to: every atom's Cartesian position in one
tensor, and one zero strain per structure stacked in a ``(n_graphs, 3, 3)`` leaf.

Losses agree to float32 rounding (measured relative differences 0-1e-7) and parameter
gradients to ~1e-4 of each layer's largest gradient (CHGNet.forward against the fused
pass: ~3e-5): the vectorised sin/cos/acos kernels round an element differently depending on
where it falls in the array, and acos amplifies that near straight angles. Computing the lattice
products per graph instead changes nothing measurable. ``tests/transfer/test_batching.py``
pins losses and gradients against ``from_graphs`` on seeded batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def _offsets(counts: list[int], device: torch.device) -> torch.Tensor:
    """Exclusive cumulative sum: where each graph's rows start in the batch."""
    out = torch.zeros(len(counts), dtype=torch.long, device=device)
    if len(counts) > 1:
        out[1:] = torch.tensor(counts[:-1], device=device).cumsum(0)
    return out


def _per_row(values: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Each graph's value repeated for each of its rows."""
    return torch.repeat_interleave(values, torch.tensor(counts, device=values.device), dim=0)


def _rows_times(vectors: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """``vectors[i] @ matrices[i]`` for every row, elementwise (a bmm of 1x3 @ 3x3 is slow)."""
    return (vectors.unsqueeze(2) * matrices).sum(1)


def batch_graphs(graphs: Sequence[Any], model: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The ``BatchedGraph`` of ``graphs`` with stress strains, built batch-wide.

    Args:
        graphs: ``CrystalGraph`` objects on one device (``atom_frac_coord`` may require grad).
        model: The CHGNet whose ``bond_basis_expansion`` and ``angle_basis_expansion`` to use.

    Returns:
        ``(batched, positions, strains)``: the batch for ``CHGNet._compute``; every atom's
        Cartesian coordinates ``[n_atoms, 3]`` (what forces differentiate) and the zero strains
        ``[n_graphs, 3, 3]`` (what stress differentiates; a leaf requiring grad).
    """
    from chgnet.model.model import BatchedGraph

    device = graphs[0].atomic_number.device
    n_atoms = [len(g.atomic_number) for g in graphs]
    atom_graphs = [g.atom_graph.reshape(-1, 2) for g in graphs]  # all-isolated: (0, 2)
    n_directed = [len(a) for a in atom_graphs]
    n_undirected = [len(g.undirected2directed) for g in graphs]
    n_angles = [len(g.bond_graph) if len(g.bond_graph) else 0 for g in graphs]
    atom_start, dir_start = _offsets(n_atoms, device), _offsets(n_directed, device)
    und_start = _offsets(n_undirected, device)

    lattice0 = torch.stack([g.lattice for g in graphs])
    strains = lattice0.new_zeros(lattice0.shape, requires_grad=True)
    lattices = lattice0 @ (torch.eye(3, dtype=lattice0.dtype, device=device) + strains)
    with torch.no_grad():  # chgnet's volumes are constants too (a tensor built from a list)
        volumes = (lattices[:, 0] * torch.linalg.cross(lattices[:, 1], lattices[:, 2])).sum(-1)

    frac = torch.cat([g.atom_frac_coord for g in graphs])
    positions = _rows_times(frac, _per_row(lattices, n_atoms))
    atom_graph = torch.cat(atom_graphs) + _per_row(atom_start, n_directed)[:, None]
    # image @ lattice per bond, handed to the expansion as offsets with an identity lattice.
    image = torch.cat([g.neighbor_image for g in graphs])
    shifts = _rows_times(image, _per_row(lattices, n_directed))
    undirected2directed = torch.cat([g.undirected2directed for g in graphs]) + _per_row(
        dir_start, n_undirected
    )
    bond_bases_ag, bond_bases_bg, bond_vectors = model.bond_basis_expansion(
        center=positions[atom_graph[:, 0]],
        neighbor=positions[atom_graph[:, 1]],
        undirected2directed=undirected2directed,
        image=shifts,
        lattice=torch.eye(3, dtype=lattice0.dtype, device=device),
    )
    angled = [i for i, n in enumerate(n_angles) if n]
    if angled:
        raw = torch.cat([graphs[i].bond_graph for i in angled])
        counts = [n_angles[i] for i in angled]
        pick = torch.tensor(angled, device=device)
        a_off = _per_row(atom_start[pick], counts)
        u_off = _per_row(und_start[pick], counts)
        d_off = _per_row(dir_start[pick], counts)
        angle_bases = model.angle_basis_expansion(
            torch.index_select(bond_vectors, 0, raw[:, 2] + d_off),
            torch.index_select(bond_vectors, 0, raw[:, 4] + d_off),
        )
        bond_graph = torch.stack([raw[:, 0] + a_off, raw[:, 1] + u_off, raw[:, 3] + u_off], 1)
    else:
        angle_bases, bond_graph = torch.tensor([]), torch.tensor([])
    batched = BatchedGraph(
        atomic_numbers=torch.cat([g.atomic_number for g in graphs]),
        bond_bases_ag=bond_bases_ag,
        bond_bases_bg=bond_bases_bg,
        angle_bases=angle_bases,
        batched_atom_graph=atom_graph,
        batched_bond_graph=bond_graph,
        atom_owners=_per_row(torch.arange(len(graphs), device=device), n_atoms).to(torch.int32),
        directed2undirected=torch.cat([g.directed2undirected for g in graphs])
        + _per_row(und_start, n_directed),
        atom_positions=list(positions.split(n_atoms)),
        strains=list(strains.unbind(0)),
        volumes=volumes,
    )
    return batched, positions, strains
