"""Edge inputs as leaves (issue 15): the forces by the chain rule through precomputed basis
derivatives are those of autograd through the positions, and the trainer's per-frame cache
changes nothing."""

from __future__ import annotations

import pytest
import torch
from ge_cells import model_with_forces, rattled_ge_graphs

from mlip_transfer.elements.dimenet import (
    DimeNetPP,
    DimeNetSettings,
    energy_and_forces,
    inputs_per_graph,
)
from mlip_transfer.elements.edge_basis import EdgeInputs
from mlip_transfer.elements.graph import collate

SMALL = DimeNetSettings(num_blocks=2, cutoff=4.0)
torch.set_num_threads(1)


def _graphs(n=2):
    return rattled_ge_graphs(n, cutoff=SMALL.cutoff)


def _model(seed=0):
    return model_with_forces(SMALL, seed=seed).double()


def test_basis_derivatives_are_those_of_autograd():
    model = _model()
    generator = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(30, 3, generator=generator, dtype=torch.float64))
    lengths = 2.0 + 1.9 * torch.rand(30, 1, generator=generator, dtype=torch.float64)  # bonds below 4 Å
    vectors = directions * lengths
    vectors[:3] = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -2.5], [1.0, 0.0, 0.0]])  # poles, axes
    leaves = EdgeInputs.leaves_of(vectors, radial_with_slope=model.radial_basis_with_slope,
                                  num_spherical=SMALL.num_spherical)

    def radial(v):
        return model.radial_basis(v.norm(dim=-1))

    def harmonics(v):
        return EdgeInputs.of(v, radial_basis=model.radial_basis,
                             num_spherical=SMALL.num_spherical).harmonics

    # Each output depends on its own edge only, so summing over edges gives per-edge Jacobians.
    radial_jac = torch.autograd.functional.jacobian(lambda v: radial(v).sum(1), vectors)
    harm_jac = torch.autograd.functional.jacobian(lambda v: harmonics(v).sum(0), vectors)
    expected_slope = torch.einsum("lnek,ek->len", radial_jac, leaves.unit)
    # The upward Bessel recurrence loses digits at small arguments for high l in both routes.
    torch.testing.assert_close(leaves.radial_slope, expected_slope, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(leaves.harmonics_jacobian, harm_jac.permute(2, 0, 1, 3),
                               rtol=1e-10, atol=1e-10)
    assert leaves.radial_slope.abs().max() > 0.1 and leaves.harmonics_jacobian.abs().max() > 0.1


def test_forces_and_their_parameter_gradients_match_autograd_through_the_positions():
    model = _model(seed=1)
    batch = collate(_graphs(), dtype=torch.float64)
    energy, forces = energy_and_forces(model, batch, create_graph=True)
    positions = batch.positions.detach().requires_grad_(True)
    batch.positions = positions
    energy_ref = model(batch)  # the edge path with inputs differentiable in the positions
    (gradient,) = torch.autograd.grad(energy_ref.sum(), positions, create_graph=True)
    assert forces.abs().max() > 1e-2
    torch.testing.assert_close(energy, energy_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(forces, -gradient, rtol=1e-9, atol=1e-10)
    params = [p for p in model.parameters() if p.requires_grad]
    ours = torch.autograd.grad(forces.pow(2).sum(), params, allow_unused=True)
    theirs = torch.autograd.grad(gradient.pow(2).sum(), params, allow_unused=True)
    moved = 0
    for name, a, b in zip([n for n, p in model.named_parameters() if p.requires_grad], ours, theirs):
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)
            moved += int(a.abs().max() > 0)
    assert moved > 10  # the comparison covers most weights, the Bessel frequencies included
    freq = dict(zip([n for n, _ in model.named_parameters()], ours))["rbf.freq"]
    assert freq is not None and freq.abs().max() > 0


def test_per_frame_inputs_joined_per_batch_give_the_same_step():
    model = _model(seed=2)
    graphs = _graphs(3)
    cache = inputs_per_graph(model, graphs, dtype=torch.float64, device="cpu")
    chosen = [2, 0]
    batch = collate([graphs[k] for k in chosen], dtype=torch.float64)
    joined = EdgeInputs.concatenate([cache[k] for k in chosen])
    assert all(t.is_leaf and t.requires_grad for t in joined.leaves())
    e_cached, f_cached = energy_and_forces(model, batch, create_graph=True, inputs=joined)
    e_fresh, f_fresh = energy_and_forces(model, collate([graphs[k] for k in chosen], dtype=torch.float64),
                                         create_graph=True)
    torch.testing.assert_close(e_cached, e_fresh, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(f_cached, f_fresh, rtol=1e-12, atol=1e-13)


def test_joining_or_chaining_inputs_without_derivatives_is_refused():
    model = _model()
    plain = model.edge_inputs(collate(_graphs(1), dtype=torch.float64))
    with pytest.raises(ValueError, match="leaves_of"):
        EdgeInputs.concatenate([plain])
    with pytest.raises(ValueError, match="leaves_of"):
        plain.vector_gradient(plain.dist, plain.radial, plain.harmonics)


def test_the_reference_path_has_no_edge_inputs():
    model = DimeNetPP(settings=SMALL, reference=True)
    assert inputs_per_graph(model, _graphs(1), dtype=torch.float32, device="cpu") is None
