"""DimeNet++ for periodic crystals, built from torch_geometric's DimeNet++ blocks.

The radial basis, envelope, embedding, interaction and output blocks are torch_geometric's own;
what differs from its stock ``DimeNetPlusPlus`` is the graph: edges and angles come from
:mod:`mlip_transfer.elements.graph` (periodic images, angles from edge vectors) instead of
``radius_graph`` on raw positions. The spherical basis (:class:`SphericalBasis`) computes the same
functions as torch_geometric's ``SphericalBasisLayer`` numerically: that layer derives them with
sympy and simplifies 42 expressions on every construction (about 18 s on this machine, every
model, every process); here spherical Bessel functions come from their recurrence, with
torch_geometric's own roots and normalisers, and the angular part from the Legendre recurrence in
``cos θ`` computed directly from the edge vectors (no ``atan2``, so no singular gradient at 0 or
180 degrees). The energy is the sum of the per-atom outputs plus
a per-element constant shift (``energy_shift``, eV/atom), fitted to training energies after
force-matching training (:func:`mlip_transfer.elements.training.fit_energy_shift`); forces are
``-dE/dpositions``: on the edge path by the chain rule through the basis derivatives of
:class:`~mlip_transfer.elements.edge_basis.EdgeInputs` (:func:`energy_and_forces`), on the
reference path by autograd through the positions.

Sizes: the study (Röcken & Zavadlav 2025) uses 1/4 of the original DimeNet++ embedding sizes:
hidden 32 (128), output embedding 64 (256), interaction embedding 16 (64); basis embedding 8,
4 blocks, 7 spherical and 6 radial basis functions, envelope exponent 5 as the original.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.nn.models.dimenet import (
    BesselBasisLayer,
    EmbeddingBlock,
    Envelope,
    InteractionPPBlock,
    OutputPPBlock,
)
from torch_geometric.nn.models.dimenet_utils import Jn, Jn_zeros
from torch_geometric.nn.resolver import activation_resolver
from torch_geometric.utils import scatter

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.core.files import save_torch_atomic
from mlip_transfer.elements.edge_basis import (
    EdgeInputs,
    EdgeInteractionPPBlock,
    EdgeLayout,
    EdgeTables,
)
from mlip_transfer.elements.graph import GraphBatch, PeriodicGraph, collate

N_SPECIES = 95  # rows of torch_geometric's species embedding (atomic numbers 0-94)


@dataclass(frozen=True, kw_only=True)
class DimeNetSettings:
    """Architecture of :class:`DimeNetPP` (defaults: the study's 1/4-size DimeNet++)."""

    hidden_channels: int = 32
    out_emb_channels: int = 64
    int_emb_size: int = 16
    basis_emb_size: int = 8
    num_blocks: int = 4
    num_spherical: int = 7
    num_radial: int = 6
    cutoff: float = 5.0
    envelope_exponent: int = 5
    num_before_skip: int = 1
    num_after_skip: int = 2
    num_output_layers: int = 3

    def __post_init__(self) -> None:
        if self.cutoff <= 0:
            raise ConfigError(f"model cutoff must be positive, got {self.cutoff}")
        if self.num_spherical < 2:
            raise ConfigError("model num_spherical must be at least 2")


def spherical_bessel(order: int, x: torch.Tensor, *, derivative: bool = False) -> Any:
    """Spherical Bessel function of the first kind ``j_order(x)`` by upward recurrence.

    With ``derivative``, returns ``(j_order(x), j_order'(x))``, the derivative from
    ``j_l' = j_{l-1} - (l + 1) / x * j_l`` (``j_0' = -j_1``).
    """
    j_prev = torch.sin(x) / x
    if order == 0 and not derivative:
        return j_prev
    j = torch.sin(x) / x**2 - torch.cos(x) / x
    if order == 0:
        return j_prev, -j
    for n in range(1, order):
        j_prev, j = j, (2 * n + 1) / x * j - j_prev
    return (j, j_prev - (order + 1) / x * j) if derivative else j


def envelope_slope(envelope: Envelope, x: torch.Tensor) -> torch.Tensor:
    """Derivative of torch_geometric's polynomial ``Envelope`` in ``x`` (zero beyond 1)."""
    p, a, b, c = envelope.p, envelope.a, envelope.b, envelope.c
    return (-1.0 / x**2 + a * (p - 1) * x.pow(p - 2) + b * p * x.pow(p - 1)
            + c * (p + 1) * x.pow(p)) * (x < 1.0).to(x.dtype)


def legendre(order: int, c: torch.Tensor) -> list[torch.Tensor]:
    """Legendre polynomials ``P_0 .. P_{order-1}`` of ``c`` by Bonnet's recurrence."""
    values = [torch.ones_like(c), c]
    for n in range(1, order - 1):
        values.append(((2 * n + 1) * c * values[n] - n * values[n - 1]) / (n + 1))
    return values[:order]


class SphericalBasis(nn.Module):
    """The 2D spherical Fourier-Bessel basis of DimeNet (same values as torch_geometric's
    ``SphericalBasisLayer``, whose sympy construction is too slow to repeat per process).

    ``forward(dist, cos_angle, idx_kj)`` returns, per triplet, ``N_ln j_l(z_ln d_kj / c) u(d_kj / c)
    Y_l^0(θ)`` for l < ``num_spherical``, n < ``num_radial``, flattened l-major like
    torch_geometric: ``z_ln`` are the roots of ``j_l``, ``N_ln`` the normalisers, ``u`` the envelope.
    """

    def __init__(self, *, num_spherical: int, num_radial: int, cutoff: float, envelope_exponent: int) -> None:
        super().__init__()
        self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, cutoff
        self.envelope = Envelope(envelope_exponent)
        zeros = Jn_zeros(num_spherical, num_radial)  # float32 roots, as torch_geometric
        norms = np.array(
            [[1 / math.sqrt(0.5 * Jn(zeros[l, n], l + 1) ** 2) for n in range(num_radial)]
             for l in range(num_spherical)]
        )
        prefactors = [math.sqrt((2 * l + 1) / (4 * math.pi)) for l in range(num_spherical)]
        self.register_buffer("zeros", torch.tensor(np.asarray(zeros, dtype=np.float64)), persistent=False)
        self.register_buffer("norms", torch.tensor(norms), persistent=False)
        self.register_buffer("prefactors", torch.tensor(prefactors), persistent=False)

    def radial(self, dist: torch.Tensor) -> torch.Tensor:
        """The radial part ``N_ln j_l(z_ln d / c) u(d / c)`` per edge, shape (E, l, n)."""
        x = (dist / self.cutoff).unsqueeze(-1)
        zeros, norms = self.zeros.to(dist.dtype), self.norms.to(dist.dtype)
        radial = torch.stack(
            [norms[l] * spherical_bessel(l, zeros[l] * x) for l in range(self.num_spherical)], dim=1
        )
        return self.envelope(x).unsqueeze(-1) * radial

    def radial_with_slope(self, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`radial` and its derivative in ``dist`` (analytic), both (E, l, n)."""
        x = (dist / self.cutoff).unsqueeze(-1)
        zeros, norms = self.zeros.to(dist.dtype), self.norms.to(dist.dtype)
        values, slopes = [], []
        for l in range(self.num_spherical):
            j, dj = spherical_bessel(l, zeros[l] * x, derivative=True)
            values.append(norms[l] * j)
            slopes.append(norms[l] * zeros[l] * dj)
        value, slope = torch.stack(values, dim=1), torch.stack(slopes, dim=1)
        envelope = self.envelope(x).unsqueeze(-1)
        d_envelope = envelope_slope(self.envelope, x).unsqueeze(-1)
        return envelope * value, (d_envelope * value + envelope * slope) / self.cutoff

    def forward(self, dist: torch.Tensor, cos_angle: torch.Tensor, idx_kj: torch.Tensor) -> torch.Tensor:
        radial = self.radial(dist)
        angular = torch.stack(legendre(self.num_spherical, cos_angle), dim=1) * self.prefactors.to(
            dist.dtype
        )  # (triplets, l)
        n, k = self.num_spherical, self.num_radial
        return (radial[idx_kj] * angular.view(-1, n, 1)).view(-1, n * k)


class DimeNetPP(nn.Module):
    """DimeNet++ energy model of periodic structures (energy in eV per structure).

    Args:
        settings: Architecture.
        reference: Run torch_geometric's per-triplet interaction path instead of the edge path of
            :mod:`mlip_transfer.elements.edge_basis` (same weights, same values to float
            rounding, several times slower); kept for the tests and the speed benchmark.
    """

    def __init__(self, *, settings: DimeNetSettings | None = None, reference: bool = False) -> None:
        super().__init__()
        self.settings = settings or DimeNetSettings()
        self.reference = reference
        s = self.settings
        act = activation_resolver("swish")
        self.rbf = BesselBasisLayer(s.num_radial, s.cutoff, s.envelope_exponent)
        self.sbf = SphericalBasis(
            num_spherical=s.num_spherical,
            num_radial=s.num_radial,
            cutoff=s.cutoff,
            envelope_exponent=s.envelope_exponent,
        )
        self.emb = EmbeddingBlock(s.num_radial, s.hidden_channels, act)
        self.output_blocks = nn.ModuleList(
            OutputPPBlock(
                s.num_radial, s.hidden_channels, s.out_emb_channels, 1, s.num_output_layers, act
            )
            for _ in range(s.num_blocks + 1)
        )
        self.interaction_blocks = nn.ModuleList(
            EdgeInteractionPPBlock(
                s.hidden_channels,
                s.int_emb_size,
                s.basis_emb_size,
                s.num_spherical,
                s.num_radial,
                s.num_before_skip,
                s.num_after_skip,
                act,
            )
            for _ in range(s.num_blocks)
        )
        # Per-element energy per atom added to the network's output; not trained by gradients.
        self.register_buffer("energy_shift", torch.zeros(N_SPECIES))

    @property
    def cutoff(self) -> float:
        return self.settings.cutoff

    def radial_basis(self, dist: torch.Tensor) -> torch.Tensor:
        """The radial part of the spherical basis with its angular prefactors, (L, E, n)."""
        prefactors = self.sbf.prefactors.to(dist.dtype).view(-1, 1, 1)
        return self.sbf.radial(dist).transpose(0, 1) * prefactors

    def radial_basis_with_slope(self, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`radial_basis` and its derivative in ``dist``, both (L, E, n)."""
        prefactors = self.sbf.prefactors.to(dist.dtype).view(-1, 1, 1)
        value, slope = self.sbf.radial_with_slope(dist)
        return value.transpose(0, 1) * prefactors, slope.transpose(0, 1) * prefactors

    def edge_inputs(self, batch: GraphBatch, *, as_leaves: bool = False) -> EdgeInputs:
        """The edge path's per-edge geometry of ``batch``; see :class:`EdgeInputs`.

        Args:
            as_leaves: Leaf tensors with their derivatives (for :func:`energy_and_forces`)
                instead of tensors differentiable in ``batch.positions``.
        """
        vectors, n_l = batch.edge_vectors(), self.settings.num_spherical
        if as_leaves:
            return EdgeInputs.leaves_of(vectors, radial_with_slope=self.radial_basis_with_slope,
                                        num_spherical=n_l)
        return EdgeInputs.of(vectors, radial_basis=self.radial_basis, num_spherical=n_l)

    def atomic_energies(self, batch: GraphBatch, inputs: EdgeInputs | None = None) -> torch.Tensor:
        """Per-atom energies (eV), shift included.

        Args:
            inputs: The edge path's geometry (default: computed from ``batch.positions``,
                differentiable in them); ignored by the reference path.
        """
        n_atoms = batch.numbers.numel()
        i, j = batch.dst, batch.src
        if self.reference:
            vectors = batch.edge_vectors()
            dist = vectors.norm(dim=-1)
            rbf = self.rbf(dist)
            # torch_geometric's angle: between pos_i - pos_j (edge ji) and pos_j - pos_k (edge kj).
            cos_angle = (vectors[batch.idx_ji] * vectors[batch.idx_kj]).sum(-1) / (
                dist[batch.idx_ji] * dist[batch.idx_kj]
            )
            sbf = self.sbf(dist, cos_angle, batch.idx_kj)

            def interact(block: EdgeInteractionPPBlock, x: torch.Tensor) -> torch.Tensor:
                return InteractionPPBlock.forward(block, x, rbf, sbf, batch.idx_kj, batch.idx_ji)
        else:
            inputs = inputs if inputs is not None else self.edge_inputs(batch)
            tables = EdgeTables.of(src=batch.src, dst=batch.dst, n_atoms=n_atoms)
            return self.edge_path_energies(batch.numbers, batch.src, batch.dst, inputs,
                                           EdgeLayout.build(inputs=inputs, tables=tables, reverse=batch.reverse))
        return self._energies(batch.numbers, i, j, rbf, interact)

    def edge_path_energies(
        self, numbers: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, inputs: EdgeInputs,
        layout: EdgeLayout,
    ) -> torch.Tensor:
        """Per-atom energies of the edge path from its inputs and layout (tensors only, so a
        compiled function can call it; see :mod:`mlip_transfer.elements.compiled`)."""
        rbf = self.rbf(inputs.dist)

        def interact(block: EdgeInteractionPPBlock, x: torch.Tensor) -> torch.Tensor:
            return block(x, rbf, layout)

        return self._energies(numbers, dst, src, rbf, interact)

    def _energies(self, numbers: torch.Tensor, i: torch.Tensor, j: torch.Tensor, rbf: torch.Tensor,
                  interact: Any) -> torch.Tensor:
        n_atoms = numbers.shape[0]
        x = self.emb(numbers, rbf, i, j)
        energy = self.output_blocks[0](x, rbf, i, num_nodes=n_atoms)
        for interaction, output in zip(self.interaction_blocks, self.output_blocks[1:]):
            x = interact(interaction, x)
            energy = energy + output(x, rbf, i, num_nodes=n_atoms)
        return energy.squeeze(-1) + self.energy_shift[numbers].to(energy.dtype)

    def forward(self, batch: GraphBatch, inputs: EdgeInputs | None = None) -> torch.Tensor:
        """Total energy of each structure in the batch (eV), shape (n_structures,)."""
        return scatter(
            self.atomic_energies(batch, inputs), batch.batch, dim=0, dim_size=batch.n_structures,
            reduce="sum",
        )


def energy_and_forces(
    model: DimeNetPP, batch: GraphBatch, *, create_graph: bool = False,
    inputs: EdgeInputs | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Energies per structure and forces ``-dE/dpositions`` (eV/Å).

    The edge path differentiates the energy by the per-edge basis values
    (:meth:`DimeNetPP.edge_inputs` as leaves) and applies the chain rule through their
    precomputed derivatives; the reference path differentiates by the positions. Both give
    ``-dE/dpositions`` of the same energy.

    Args:
        create_graph: Keep the graph of the force computation, as a force-matching loss needs
            to differentiate the forces with respect to the parameters.
        inputs: The batch's edge inputs if already computed (:func:`inputs_per_graph`, joined
            by :meth:`EdgeInputs.concatenate`); computed from the positions otherwise.
    """
    if model.reference:
        positions = batch.positions.detach().requires_grad_(True)
        batch.positions = positions
        energy = model(batch)
        (gradient,) = torch.autograd.grad(energy.sum(), positions, create_graph=create_graph)
        return energy, -gradient
    if inputs is None:
        inputs = model.edge_inputs(batch, as_leaves=True)
    energy = model(batch, inputs)
    gradients = torch.autograd.grad(
        energy.sum(), inputs.leaves(), create_graph=create_graph, materialize_grads=True
    )
    return energy, inputs.forces(gradients, src=batch.src, dst=batch.dst, n_atoms=batch.numbers.numel())


def inputs_per_graph(
    model: DimeNetPP, graphs: Sequence[PeriodicGraph], *, dtype: torch.dtype, device: torch.device | str,
) -> list[EdgeInputs] | None:
    """Each graph's edge inputs with their derivatives, for a trainer to reuse every step.

    Returns None for the reference path, which reads no edge inputs.
    """
    if model.reference:
        return None
    return [model.edge_inputs(collate([graph], dtype=dtype).to(device), as_leaves=True)
            for graph in graphs]


def copy_species_embedding(model: DimeNetPP, *, source: int, target: int) -> None:
    """Start species ``target`` from the trained embedding row of species ``source``.

    This is how a Ge model starts from a Si model without an untrained Ge embedding: the Si row
    (Z = 14) is copied into the Ge row (Z = 32); every other weight is shared as trained. All
    weights, both rows included, are fine-tuned afterwards.
    """
    with torch.no_grad():
        model.emb.emb.weight[target] = model.emb.emb.weight[source]


def save_model(model: DimeNetPP, path: str | Path, **info: Any) -> Path:
    """Write architecture, weights (shift included) and ``info`` to one file, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch_atomic(
        {"settings": asdict(model.settings), "state_dict": model.state_dict(), "info": info}, path
    )
    return path


def load_model(path: str | Path) -> tuple[DimeNetPP, dict[str, Any]]:
    """Read a file written by :func:`save_model`; returns the model (eval mode) and its info."""
    content = torch.load(Path(path), map_location="cpu", weights_only=False)
    model = DimeNetPP(settings=DimeNetSettings(**content["settings"]))
    model.load_state_dict(content["state_dict"])
    model.eval()
    return model, content.get("info", {})
