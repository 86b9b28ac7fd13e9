"""Force matching through ``torch.compile`` (``TrainSettings.compile``; off by default).

A force-matching step differentiates the forces, themselves a gradient, by the weights. Eager
PyTorch runs that double backward as ~4,000 small operators on edge-sized tensors, most of them
memory-bound elementwise ones, each a separate kernel. Compiled, the forces (the energy, its
gradient by the edge inputs through ``torch.func.grad``, the chain rule) are one graph; AOTAutograd
derives the weights' backward from it and Inductor fuses the elementwise work into generated C++
loops. Measured on 64-atom Ge cells, batch 2, one thread (``benchmarks/ge_training_speed.py``):
0.13 -> ~0.095 core-s per update (3.44x the step before issue 15); compiling costs about a minute on a cold cache and 6 s on a warm
one (Inductor's on-disk cache, ``TORCHINDUCTOR_CACHE_DIR``), once per process, so it pays for
trainings of thousands of updates rather than the default run's few hundred.

Shapes are dynamic (edges and atoms vary per batch), so batches do not recompile. If compiling
fails (no C++ compiler, an unsupported operator), :class:`CompiledForces` says so once and the
trainer continues on the eager path, which computes the same forces.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from mlip_transfer.elements.dimenet import DimeNetPP
from mlip_transfer.elements.edge_basis import EdgeInputs, EdgeLayout, EdgeTables
from mlip_transfer.elements.graph import GraphBatch

logger = logging.getLogger("mlip_transfer.elements.compiled")


def _forces(
    model: DimeNetPP, numbers: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
    reverse: torch.Tensor, arriving: torch.Tensor, leaving: torch.Tensor,
    leaving_slot: torch.Tensor, unit: torch.Tensor, dist: torch.Tensor, radial: torch.Tensor,
    harmonics: torch.Tensor, radial_slope: torch.Tensor, harmonics_jacobian: torch.Tensor,
) -> torch.Tensor:
    """Forces of the edge path as a function of tensors only (what ``torch.compile`` traces)."""
    tables = EdgeTables(arriving=arriving, leaving=leaving, leaving_slot=leaving_slot)

    def energy(dist_: torch.Tensor, radial_: torch.Tensor, harmonics_: torch.Tensor) -> torch.Tensor:
        inputs = EdgeInputs(unit=unit, dist=dist_, radial=radial_, harmonics=harmonics_)
        layout = EdgeLayout.build(inputs=inputs, tables=tables, reverse=reverse)
        return model.edge_path_energies(numbers, src, dst, inputs, layout).sum()

    gradients = torch.func.grad(energy, argnums=(0, 1, 2))(dist, radial, harmonics)
    leaves = EdgeInputs(unit=unit, dist=dist, radial=radial, harmonics=harmonics,
                        radial_slope=radial_slope, harmonics_jacobian=harmonics_jacobian)
    return leaves.forces(gradients, src=src, dst=dst, n_atoms=numbers.shape[0])


class CompiledForces:
    """``forces(batch, inputs)`` of an edge-path model, compiled on first use.

    Args:
        model: The model; its weights are read at every call, so training updates them as usual.
    """

    def __init__(self, model: DimeNetPP) -> None:
        if model.reference:
            raise ValueError("CompiledForces needs the edge path (DimeNetPP(reference=False))")
        self.model = model
        self.failed: str | None = None
        self._checked = False
        self._compiled = torch.compile(_forces, dynamic=True)

    def _arguments(self, batch: GraphBatch, inputs: EdgeInputs) -> tuple[Any, ...]:
        tables = EdgeTables.of(src=batch.src, dst=batch.dst, n_atoms=batch.numbers.numel())
        return (self.model, batch.numbers, batch.src, batch.dst, batch.reverse, tables.arriving,
                tables.leaving, tables.leaving_slot, inputs.unit, inputs.dist.detach(),
                inputs.radial.detach(), inputs.harmonics.detach(), inputs.radial_slope,
                inputs.harmonics_jacobian)

    def __call__(self, batch: GraphBatch, inputs: EdgeInputs) -> torch.Tensor:
        """Forces (eV/Å), differentiable by the weights; eager forces if compiling failed."""
        arguments = self._arguments(batch, inputs)
        if self.failed is None:
            try:
                if not self._checked:  # the backward compiles lazily: make it fail here, if at all
                    params = [p for p in self.model.parameters() if p.requires_grad]
                    trial = self._compiled(*arguments)
                    torch.autograd.grad(trial.pow(2).sum(), params, allow_unused=True)
                    self._checked = True
                return self._compiled(*arguments)
            except Exception as error:  # noqa: BLE001 - any compiler failure falls back
                self.failed = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                logger.warning("torch.compile failed (%s); training continues on the eager path",
                               self.failed)
        return _forces(*arguments)
