"""Periodic graphs for DimeNet++: edges with cell shifts, and the triplets (angles) between edges.

torch_geometric's stock DimeNet++ builds its edges with ``radius_graph`` on raw positions and so
ignores periodic images. Here the topology (which atom pairs lie within the cutoff, through which
periodic image, and which edge pairs form an angle) is found once per structure in numpy with
matscipy's neighbour list; the edge *vectors* are then computed in torch from the positions, so
energies are differentiable with respect to positions and forces come from autograd.

Conventions (those of torch_geometric's DimeNet, messages flow ``j -> i``):

* edge ``e`` runs from source ``src[e]`` (``j``) to target ``dst[e]`` (``i``); its vector is
  ``pos[dst] - pos[src] + offset[e]`` where ``offset = S @ cell`` (plus the constant lattice
  translation that wraps the atoms into the cell), so it points from ``j`` to the periodic image
  of ``i``. Both directions of every pair are edges.
* a triplet ``(kj, ji)`` pairs an edge ``k -> j`` with an edge ``j -> i`` leaving the atom that
  ``kj`` arrives at. The only pair dropped is the back-and-forth one, where ``k`` is the very
  periodic image of ``i`` (``k == i`` and ``S_kj + S_ji == 0``): in a small cell ``k`` may be
  another image of ``i``, which is a real angle and is kept (torch_geometric drops every
  ``k == i``, which is only right without periodic images).
* the angle is the one torch_geometric computes from ``pos_i - pos_j`` and ``pos_j - pos_k``:
  here from the two edge vectors, ``atan2(|v_ji x v_kj|, v_ji . v_kj)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matscipy.neighbours import neighbour_list

from mlip_transfer.core.errors import DataError


@dataclass(frozen=True, kw_only=True, eq=False)
class PeriodicGraph:
    """Topology of one periodic structure within a cutoff (numpy arrays, no gradients).

    Attributes:
        numbers: Atomic numbers, shape (n,).
        positions: Cartesian positions as given (Å), shape (n, 3).
        src, dst: Edge source (``j``) and target (``i``) atoms, shape (E,).
        shifts: Integer cell shifts of the target image, shape (E, 3).
        offsets: Cartesian offset added to ``pos[dst] - pos[src]``, shape (E, 3).
        idx_kj, idx_ji: Edge indices of each triplet, shape (T,).
        reverse: Index of each edge's reverse (``dst -> src``, opposite shift), shape (E,).
    """

    numbers: np.ndarray
    positions: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    shifts: np.ndarray
    offsets: np.ndarray
    idx_kj: np.ndarray
    idx_ji: np.ndarray
    reverse: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def n_edges(self) -> int:
        return len(self.src)

    @property
    def n_triplets(self) -> int:
        return len(self.idx_kj)


def build_graph(
    *,
    numbers: Sequence[int] | np.ndarray,
    positions: np.ndarray,
    cell: np.ndarray,
    cutoff: float,
    name: str | None = None,
    triplets: bool = True,
) -> PeriodicGraph:
    """Edges within ``cutoff`` through every periodic image, and their triplets.

    Args:
        numbers: Atomic numbers.
        positions: Cartesian positions (Å); atoms outside the cell are allowed.
        cell: Lattice vectors as rows (Å); periodic in all three directions.
        cutoff: Cutoff radius (Å). It may exceed the cell size: an atom then meets several
            images of the same neighbour, each its own edge.
        name: Structure id for error messages.
        triplets: Also list the triplets (torch_geometric's reference path needs them; the edge
            path never reads them, so MD with it skips ~3 ms of numpy per 64-atom step).

    Raises:
        DataError: Non-finite positions, a singular cell, or two atoms on top of each other.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    if positions.shape != (len(numbers), 3) or cell.shape != (3, 3):
        raise DataError(
            f"positions {positions.shape} and cell {cell.shape} do not fit {len(numbers)} atoms",
            record=name,
            field="positions",
        )
    if not np.all(np.isfinite(positions)):
        raise DataError("positions contain NaN or infinite values", record=name, field="positions")
    if abs(np.linalg.det(cell)) < 1e-8:
        raise DataError("cell has zero volume", record=name, field="cell")
    # Wrap into the cell ourselves, so the shifts refer to positions we know; the wrapping
    # translation is a constant and goes into the offsets (gradients are unaffected).
    frac = np.linalg.solve(cell.T, positions.T).T
    wrapped = (frac - np.floor(frac)) @ cell
    translation = wrapped - positions
    src, dst, shifts, dist = neighbour_list(
        "ijSd",
        positions=wrapped,
        cell=cell,
        pbc=np.array([True, True, True]),
        numbers=numbers.astype(np.int32),
        cutoff=float(cutoff),
    )
    if len(dist) and dist.min() < 1e-6:
        raise DataError("two atoms sit on the same point", record=name, field="positions")
    src = src.astype(np.int64)
    dst = dst.astype(np.int64)
    shifts = shifts.astype(np.int64)
    offsets = shifts @ cell + translation[dst] - translation[src]
    if triplets:
        idx_kj, idx_ji = _triplets(src, dst, shifts, len(numbers))
    else:
        idx_kj = idx_ji = np.zeros(0, dtype=np.int64)
    reverse = _reverse_edges(src, dst, shifts, len(numbers))
    return PeriodicGraph(
        numbers=numbers,
        positions=positions,
        src=src,
        dst=dst,
        shifts=shifts,
        offsets=offsets,
        idx_kj=idx_kj,
        idx_ji=idx_ji,
        reverse=reverse,
    )


def _reverse_edges(src: np.ndarray, dst: np.ndarray, shifts: np.ndarray, n_atoms: int) -> np.ndarray:
    """Index of the edge ``dst -> src`` through the opposite shift, for every edge."""
    if not len(src):
        return np.zeros(0, dtype=np.int64)
    base = 2 * int(np.abs(shifts).max()) + 1

    def key(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
        s = s + base // 2
        return ((a * n_atoms + b) * base + s[:, 0]) * base**2 + s[:, 1] * base + s[:, 2]

    keys = key(src, dst, shifts)
    order = np.argsort(keys)
    wanted = key(dst, src, -shifts)
    found = np.searchsorted(keys, wanted, sorter=order).clip(max=len(keys) - 1)
    reverse = order[found]
    if not np.array_equal(keys[reverse], wanted):  # a full neighbour list has both directions
        raise DataError("neighbour list is not symmetric", field="positions")
    return reverse


def _triplets(
    src: np.ndarray, dst: np.ndarray, shifts: np.ndarray, n_atoms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (kj, ji) of edges with ``dst[kj] == src[ji]``, less the back-and-forth pairs."""
    order = np.argsort(dst, kind="stable")  # edges grouped by the atom they arrive at
    arriving = np.bincount(dst, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(arriving)[:-1]])
    # For each edge ji (leaving j = src[ji]), every edge arriving at j.
    count = arriving[src]
    idx_ji = np.repeat(np.arange(len(src)), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    idx_kj = order[np.repeat(starts[src], count) + within]
    back = (src[idx_kj] == dst[idx_ji]) & np.all(shifts[idx_kj] + shifts[idx_ji] == 0, axis=1)
    return idx_kj[~back], idx_ji[~back]


@dataclass(kw_only=True, eq=False)
class GraphBatch:
    """Several graphs as one disconnected graph, as torch tensors.

    ``positions`` is a leaf tensor; set ``requires_grad`` on it to get forces.
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    batch: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    offsets: torch.Tensor
    idx_kj: torch.Tensor
    idx_ji: torch.Tensor
    reverse: torch.Tensor
    n_structures: int

    def edge_vectors(self) -> torch.Tensor:
        """Vectors from each edge's source to its target image (differentiable in positions)."""
        return self.positions[self.dst] - self.positions[self.src] + self.offsets

    def to(self, device: torch.device | str) -> GraphBatch:
        for name in (
            "numbers", "positions", "batch", "src", "dst", "offsets", "idx_kj", "idx_ji", "reverse"
        ):
            setattr(self, name, getattr(self, name).to(device))
        return self


def collate(graphs: Sequence[PeriodicGraph], *, dtype: torch.dtype = torch.float32) -> GraphBatch:
    """Join graphs into one batch, renumbering atoms and edges."""
    atom_offset = np.cumsum([0] + [g.n_atoms for g in graphs])
    edge_offset = np.cumsum([0] + [g.n_edges for g in graphs])

    def cat(values: list[np.ndarray], torch_dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.concatenate(values), dtype=torch_dtype)

    return GraphBatch(
        numbers=cat([g.numbers for g in graphs], torch.long),
        positions=cat([g.positions for g in graphs], dtype),
        batch=cat([np.full(g.n_atoms, k) for k, g in enumerate(graphs)], torch.long),
        src=cat([g.src + atom_offset[k] for k, g in enumerate(graphs)], torch.long),
        dst=cat([g.dst + atom_offset[k] for k, g in enumerate(graphs)], torch.long),
        offsets=cat([g.offsets for g in graphs], dtype),
        idx_kj=cat([g.idx_kj + edge_offset[k] for k, g in enumerate(graphs)], torch.long),
        idx_ji=cat([g.idx_ji + edge_offset[k] for k, g in enumerate(graphs)], torch.long),
        reverse=cat([g.reverse + edge_offset[k] for k, g in enumerate(graphs)], torch.long),
        n_structures=len(graphs),
    )
