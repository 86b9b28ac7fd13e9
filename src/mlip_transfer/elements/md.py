"""Molecular dynamics with learned models: an ASE calculator of DimeNet++ and the stability test.

The stability test itself (:func:`run_nvt`, :class:`MDSettings`, :func:`min_distance`) lives in
:mod:`mlip_transfer.elements.nvt`, which imports no model code, so the transfer stage's
retention report (CHGNet) runs it without loading torch_geometric; it is re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from mlip_transfer.elements.dimenet import DimeNetPP, energy_and_forces
from mlip_transfer.elements.graph import build_graph, collate
from mlip_transfer.elements.nvt import REASONS, MDSettings, min_distance, run_nvt

__all__ = ["REASONS", "DimeNetCalculator", "MDSettings", "min_distance", "run_nvt"]


class DimeNetCalculator(Calculator):
    """ASE calculator of a :class:`DimeNetPP` model (energy and forces)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, *, model: DimeNetPP, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model.eval()
        self.dtype = next(model.parameters()).dtype
        self.device = next(model.parameters()).device

    def calculate(
        self, atoms: Atoms | None = None, properties: Any = ("energy",), system_changes: Any = all_changes
    ) -> None:
        super().calculate(atoms, properties, system_changes)
        graph = build_graph(
            numbers=self.atoms.numbers,
            positions=self.atoms.positions,
            cell=self.atoms.cell.array,
            cutoff=self.model.cutoff,
            name="md",
            triplets=self.model.reference,  # the edge path reads no triplets
        )
        energy, forces = energy_and_forces(self.model, collate([graph], dtype=self.dtype).to(self.device))
        energy = float(energy.detach().cpu()[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": forces.detach().cpu().numpy().astype(np.float64),
        }
