"""DimeNet++ interactions without per-triplet tensors (the default path of :class:`DimeNetPP`).

torch_geometric's ``InteractionPPBlock`` builds, per triplet ``t = (kj, ji)``, the spherical basis
``sbf[t, l, n] = R[kj, l, n] * A_l(cos θ_t)`` (42 numbers), projects it with ``lin_sbf1`` then
``lin_sbf2`` (no biases), multiplies it by the down-projected message of edge ``kj`` and sums over
the triplets of each ``ji``. On 64-atom Ge cells at 5 Å that is ~27 triplets per edge, and those
triplet-sized tensors, tripled by the double backward of force matching, were nearly all of a
training step. Two exact rewrites remove them:

* Both projections are linear and ``R`` belongs to edge ``kj``, so the whole radial part and the
  message collapse to one edge tensor ``G[l, kj, c]``; what is left per triplet is
  ``sum_l A_l(cos θ_t) G[l, kj, c]``.
* ``A_l`` is a Legendre polynomial of the angle between the two edge directions, which the
  addition theorem splits into edge factors: ``P_l(u . v) = sum_m Y_lm(u) Y_lm(v)`` with real
  spherical harmonics normalised here so. The sum over the triplets of ``ji`` then runs over all
  edges arriving at atom ``j = src[ji]``: a per-atom density ``H[j, l, m, c]`` (one batched
  matrix product over atoms), read back by every edge leaving ``j`` (a second one), less the one
  pair the graph leaves out, ``kj`` = the reverse of ``ji`` (angle 180°, ``P_l(-1) = (-1)^l``).

This needs the graph's triplets to be exactly every (kj, ji) with ``dst[kj] == src[ji]`` except the
reverse pair, as :func:`mlip_transfer.elements.graph.build_graph` makes them. Edges are laid out
per atom in padded tables (``EdgeLayout``), so both sums are dense matrix products.

Training differentiates the forces once more, with respect to the weights. The basis functions
depend only on the (fixed) geometry, so :class:`EdgeInputs` computes them, and their derivatives
along each edge vector, outside the autograd graph: the network sees them as leaf tensors, and
the forces are the chain rule through those derivatives
(:meth:`EdgeInputs.vector_gradient`). The double backward then never runs through the Bessel
recurrences and harmonics polynomials, which were a third of a training step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.models.dimenet import InteractionPPBlock
from torch_geometric.utils import scatter


def real_harmonics(unit: Tensor, num_spherical: int, *, gradient: bool = False) -> Any:
    """Real spherical harmonics with ``sum_m Y_lm(u) Y_lm(v) = P_l(u . v)`` for unit vectors.

    Args:
        unit: Unit vectors, shape (E, 3).
        num_spherical: Orders ``l < num_spherical``.
        gradient: Also return the gradient of each harmonic's polynomial in (x, y, z),
            shape (E, L, 2L - 1, 3) (its tangential part is the gradient on the sphere).

    Returns:
        Shape (E, L, 2L - 1): slot 0 is m = 0, slots 2m - 1 and 2m the cosine and sine parts of
        order m; slots with m > l are zero. Computed as polynomials in x, y, z (no angles), so
        gradients are finite in every direction.
    """
    x, y, z = unit.unbind(-1)
    n_slots = 2 * num_spherical - 1
    zero = torch.zeros_like(z)
    # cos(m φ) sin^m θ and sin(m φ) sin^m θ as the real and imaginary parts of (x + i y)^m.
    cos_m, sin_m = [torch.ones_like(z)], [zero]
    for _ in range(1, num_spherical):
        c, s = cos_m[-1], sin_m[-1]
        cos_m.append(x * c - y * s)
        sin_m.append(x * s + y * c)
    rows = [[zero] * n_slots for _ in range(num_spherical)]
    zero3 = torch.zeros_like(unit)
    grads = [[zero3] * n_slots for _ in range(num_spherical)] if gradient else None
    for m in range(num_spherical):
        # q[l] = P_l^m(z) / sin^m θ (a polynomial in z), upward in l from l = m; dq its z-slope.
        q_prev, q = None, torch.full_like(z, float(math.prod(range(1, 2 * m, 2))))
        dq_prev, dq = None, zero
        for l in range(m, num_spherical):
            if l == m + 1:
                if gradient:
                    dq_prev, dq = dq, (2 * m + 1) * q
                q_prev, q = q, (2 * m + 1) * z * q
            elif l > m + 1:
                if gradient:
                    dq_prev, dq = dq, ((2 * l - 1) * (q + z * dq) - (l + m - 1) * dq_prev) / (l - m)
                q_prev, q = q, ((2 * l - 1) * z * q - (l + m - 1) * q_prev) / (l - m)
            if m == 0:
                rows[l][0] = q
                if grads is not None:
                    grads[l][0] = torch.stack([zero, zero, dq], dim=-1)
                continue
            norm = math.sqrt(2 * math.factorial(l - m) / math.factorial(l + m))
            rows[l][2 * m - 1] = norm * q * cos_m[m]
            rows[l][2 * m] = norm * q * sin_m[m]
            if grads is not None:
                # d(x + i y)^m / dx = m (x + i y)^(m-1), d/dy = i m (x + i y)^(m-1).
                qm = norm * m * q
                grads[l][2 * m - 1] = torch.stack(
                    [qm * cos_m[m - 1], -qm * sin_m[m - 1], norm * dq * cos_m[m]], dim=-1)
                grads[l][2 * m] = torch.stack(
                    [qm * sin_m[m - 1], qm * cos_m[m - 1], norm * dq * sin_m[m]], dim=-1)
    values = torch.stack([torch.stack(row, dim=-1) for row in rows], dim=1)
    if grads is None:
        return values
    return values, torch.stack([torch.stack(row, dim=-2) for row in grads], dim=1)


def _per_atom_table(atoms: Tensor, n_atoms: int, fill: int) -> tuple[Tensor, Tensor]:
    """Edges grouped by atom in a padded (n_atoms, max count) table, and each edge's flat slot."""
    n_edges = atoms.numel()
    order = torch.argsort(atoms, stable=True)
    counts = torch.bincount(atoms, minlength=n_atoms)
    width = int(counts.max()) if n_edges else 1
    starts = torch.cumsum(counts, 0) - counts
    sorted_atoms = atoms[order]
    position = torch.arange(n_edges, device=atoms.device) - starts[sorted_atoms]
    table = torch.full((n_atoms, width), fill, dtype=torch.long, device=atoms.device)
    table[sorted_atoms, position] = order
    flat = torch.empty_like(order)
    flat[order] = sorted_atoms * width + position
    return table, flat


@dataclass(frozen=True, kw_only=True, eq=False)
class EdgeTables:
    """Per-atom tables of a batch's edges: topology only, so built outside any autograd graph.

    Attributes:
        arriving: Edges arriving at each atom (``dst``), padded with the index E, (N, Da).
        leaving: Edges leaving each atom (``src``), padded with E, (N, Dl).
        leaving_slot: Flat slot of each edge in ``leaving``, (E,).
    """

    arriving: Tensor
    leaving: Tensor
    leaving_slot: Tensor

    @classmethod
    def of(cls, *, src: Tensor, dst: Tensor, n_atoms: int) -> EdgeTables:
        """The tables of edges ``src -> dst`` among ``n_atoms`` atoms."""
        arriving, _ = _per_atom_table(dst, n_atoms, dst.numel())
        leaving, leaving_slot = _per_atom_table(src, n_atoms, src.numel())
        return cls(arriving=arriving, leaving=leaving, leaving_slot=leaving_slot)


@dataclass(frozen=True, kw_only=True, eq=False)
class EdgeLayout:
    """A batch's basis values laid out per atom, as all interactions read them.

    Attributes:
        arriving: ``EdgeTables.arriving``, flat (N * Da,).
        leaving_slot: ``EdgeTables.leaving_slot``, (E,).
        reverse: Reverse edge of each edge, (E,).
        radial_arriving: Radial basis of the arriving edges, (L, N * Da, num_radial), zero on
            padding.
        y_arriving: Harmonics of the arriving edges, (L, N, M, Da), zero on padding.
        y_leaving: Harmonics of the leaving edges, (N, Dl, L * M), zero on padding.
        radial_back: ``(-1)^l`` times the radial basis of each edge's reverse, (E, L * num_radial).
    """

    arriving: Tensor
    leaving_slot: Tensor
    reverse: Tensor
    radial_arriving: Tensor
    y_arriving: Tensor
    y_leaving: Tensor
    radial_back: Tensor

    @classmethod
    def build(cls, *, inputs: EdgeInputs, tables: EdgeTables, reverse: Tensor) -> EdgeLayout:
        """The layout of ``inputs`` by ``tables`` (differentiable in the inputs)."""
        radial, y = inputs.radial, inputs.harmonics
        n_l, _, n_radial = radial.shape
        arriving = tables.arriving.flatten()
        y = torch.cat([y, y.new_zeros((1, *y.shape[1:]))])  # row E: the padding
        radial_pad = torch.cat([radial, radial.new_zeros((n_l, 1, n_radial))], dim=1)
        sign = radial.new_tensor([(-1.0) ** l for l in range(n_l)]).view(-1, 1, 1)
        return cls(
            arriving=arriving,
            leaving_slot=tables.leaving_slot,
            reverse=reverse,
            radial_arriving=radial_pad[:, arriving],
            y_arriving=y[tables.arriving].permute(2, 0, 3, 1).contiguous(),
            y_leaving=y[tables.leaving].flatten(2),
            radial_back=(sign * radial[:, reverse]).transpose(0, 1).flatten(1).contiguous(),
        )


RadialBasis = Callable[[Tensor], Tensor]
"""Distances (E,) to the radial part of the spherical basis, prefactors folded in, (L, E, n)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class EdgeInputs:
    """The per-edge geometry the edge path reads: distance, radial basis and harmonics.

    Attributes:
        unit: Edge directions, (E, 3).
        dist: Edge lengths, (E,).
        radial: Radial part of the spherical basis, angular prefactors folded in, (L, E, n).
        harmonics: :func:`real_harmonics` of the directions, (E, L, M).
        radial_slope: ``d radial / d dist``, (L, E, n); only from :meth:`leaves_of`, as below.
        harmonics_jacobian: ``d harmonics / d vector``, (E, L, M, 3); only from :meth:`leaves_of`.
    """

    unit: Tensor
    dist: Tensor
    radial: Tensor
    harmonics: Tensor
    radial_slope: Tensor | None = None
    harmonics_jacobian: Tensor | None = None

    @classmethod
    def of(cls, vectors: Tensor, *, radial_basis: RadialBasis, num_spherical: int) -> EdgeInputs:
        """Inputs computed from ``vectors`` (E, 3), differentiable in them."""
        dist = vectors.norm(dim=-1)
        unit = vectors / dist.unsqueeze(-1)
        return cls(unit=unit, dist=dist, radial=radial_basis(dist),
                   harmonics=real_harmonics(unit, num_spherical))

    @classmethod
    def leaves_of(
        cls, vectors: Tensor, *, radial_with_slope: Callable[[Tensor], tuple[Tensor, Tensor]],
        num_spherical: int,
    ) -> EdgeInputs:
        """Inputs as leaf tensors that require gradients, with their derivatives along ``vectors``.

        Args:
            radial_with_slope: Distances to the radial basis and its derivative, both (L, E, n).
        """
        with torch.no_grad():
            vectors = vectors.detach()
            dist = vectors.norm(dim=-1)
            unit = vectors / dist.unsqueeze(-1)
            radial, radial_slope = radial_with_slope(dist)
            harmonics, polynomial_grad = real_harmonics(unit, num_spherical, gradient=True)
            # Through u = v / |v|: dY/dv = (grad - (grad . u) u) / |v|.
            radial_part = (polynomial_grad * unit[:, None, None, :]).sum(-1, keepdim=True)
            jacobian = (polynomial_grad - radial_part * unit[:, None, None, :]) / dist.view(-1, 1, 1, 1)
        return cls(
            unit=unit, dist=dist.requires_grad_(), radial=radial.requires_grad_(),
            harmonics=harmonics.requires_grad_(), radial_slope=radial_slope,
            harmonics_jacobian=jacobian,
        )

    @classmethod
    def concatenate(cls, parts: list[EdgeInputs]) -> EdgeInputs:
        """The inputs of a batch from those of its graphs (:meth:`leaves_of`, in batch order).

        Training frames keep their geometry, so a trainer computes each frame's inputs once and
        joins them per batch; the joined tensors are fresh leaves.
        """
        if any(part.radial_slope is None or part.harmonics_jacobian is None for part in parts):
            raise ValueError("EdgeInputs.concatenate needs inputs from EdgeInputs.leaves_of")

        def cat(name: str, dim: int = 0) -> Tensor:
            return torch.cat([getattr(part, name).detach() for part in parts], dim=dim)

        return cls(
            unit=cat("unit"), dist=cat("dist").requires_grad_(),
            radial=cat("radial", 1).requires_grad_(), harmonics=cat("harmonics").requires_grad_(),
            radial_slope=cat("radial_slope", 1), harmonics_jacobian=cat("harmonics_jacobian"),
        )

    def leaves(self) -> tuple[Tensor, Tensor, Tensor]:
        """The tensors the energy is differentiated by: distances, radial basis, harmonics."""
        return self.dist, self.radial, self.harmonics

    def vector_gradient(self, grad_dist: Tensor, grad_radial: Tensor, grad_harmonics: Tensor) -> Tensor:
        """``dE / d vector`` per edge, (E, 3), from the gradients with respect to :meth:`leaves`.

        Linear in the gradients, so differentiating the forces by the weights (training)
        goes through the network's first backward only.
        """
        if self.radial_slope is None or self.harmonics_jacobian is None:
            raise ValueError("vector_gradient needs EdgeInputs.leaves_of (no derivatives here)")
        along = grad_dist + (grad_radial * self.radial_slope).sum(dim=(0, 2))
        across = torch.einsum("elm,elmk->ek", grad_harmonics, self.harmonics_jacobian)
        return along.unsqueeze(-1) * self.unit + across

    def forces(
        self, gradients: tuple[Tensor, Tensor, Tensor], *, src: Tensor, dst: Tensor, n_atoms: int
    ) -> Tensor:
        """Forces ``-dE/dpositions`` (N, 3) from the energy's gradients by :meth:`leaves`.

        Each edge vector is ``pos[dst] - pos[src]`` (plus a cell offset), so its gradient counts
        for the atom at ``dst`` and against the one at ``src``.
        """
        per_edge = self.vector_gradient(*gradients)
        return -(scatter(per_edge, dst, dim=0, dim_size=n_atoms, reduce="sum")
                 - scatter(per_edge, src, dim=0, dim_size=n_atoms, reduce="sum"))


class EdgeInteractionPPBlock(InteractionPPBlock):
    """torch_geometric's ``InteractionPPBlock`` (same parameters, so the same state dicts) whose
    forward works on edge tensors only; ``InteractionPPBlock.forward(block, ...)`` still runs the
    triplet path on the same weights (the reference the tests and the benchmark compare to).
    """

    def forward(  # type: ignore[override]
        self, x: Tensor, rbf: Tensor, layout: EdgeLayout
    ) -> Tensor:
        """One interaction.

        Args:
            x: Edge embeddings, (E, hidden).
            rbf: Bessel basis per edge, (E, num_radial).
            layout: The batch's :class:`EdgeLayout` (with the radial part of the spherical basis).
        """
        x_ji = self.act(self.lin_ji(x))
        x_kj = self.act(self.lin_kj(x))
        x_kj = x_kj * self.lin_rbf2(self.lin_rbf1(rbf))
        x_kj = self.act(self.lin_down(x_kj))  # (E, C)
        n_l, n_atoms, _, width = layout.y_arriving.shape
        # lin_sbf2(lin_sbf1(.)) restricted to each order l: weights (L, num_radial, C).
        weight = (self.lin_sbf2.weight @ self.lin_sbf1.weight).view(x_kj.shape[1], n_l, -1)
        weight = weight.permute(1, 2, 0)
        x_pad = torch.cat([x_kj, x_kj.new_zeros((1, x_kj.shape[1]))])
        # g[l, (j, d), c]: radial part and message of the d-th edge arriving at atom j.
        g = torch.bmm(layout.radial_arriving, weight) * x_pad[layout.arriving]
        density = torch.matmul(layout.y_arriving, g.view(n_l, n_atoms, width, -1))  # (L, N, M, C)
        density = density.permute(1, 0, 2, 3).flatten(1, 2)  # (N, L * M, C)
        per_slot = torch.bmm(layout.y_leaving, density).flatten(0, 1)  # (N * Dl, C)
        back = x_kj[layout.reverse] * (layout.radial_back @ weight.flatten(0, 1))
        x_kj = per_slot[layout.leaving_slot] - back
        x_kj = self.act(self.lin_up(x_kj))

        h = x_ji + x_kj
        for layer in self.layers_before_skip:
            h = layer(h)
        h = self.act(self.lin(h)) + x
        for layer in self.layers_after_skip:
            h = layer(h)
        return h
