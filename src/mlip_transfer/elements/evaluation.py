"""Predictions of DimeNet++ models on frames: test errors and the fitted energy shift.

* Energy shift: the per-element constant that makes the mean training energy right (least
  squares of ``E_ref - E_model`` over the element counts), because force matching leaves the
  energy's constant undetermined.
* Errors: force MAE and RMSE over force components (meV/Å), energy MAE per atom (meV/atom).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase.data import atomic_numbers

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import Frame
from mlip_transfer.elements.dimenet import DimeNetPP, energy_and_forces
from mlip_transfer.elements.graph import PeriodicGraph, build_graph, collate


def frame_graph(frame: Frame, *, cutoff: float) -> PeriodicGraph:
    """The periodic graph of a canonical frame."""
    numbers = [atomic_numbers[symbol] for symbol in frame.species]
    positions = np.asarray(frame.frac_coords) @ np.asarray(frame.lattice)
    return build_graph(
        numbers=numbers, positions=positions, cell=frame.lattice, cutoff=cutoff, name=frame.frame_id
    )


def _predict(
    model: DimeNetPP, graphs: Sequence[PeriodicGraph], *, batch_size: int = 4, forces: bool = True
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies (eV) and, optionally, forces (eV/Å) of each graph."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    energies, all_forces = [], []
    for start in range(0, len(graphs), batch_size):
        chunk = graphs[start : start + batch_size]
        batch = collate(chunk, dtype=dtype).to(device)
        if forces:
            energy, force = energy_and_forces(model, batch)
            split = np.cumsum([g.n_atoms for g in chunk])[:-1]
            all_forces.extend(np.split(force.detach().cpu().numpy(), split))
        else:
            with torch.no_grad():
                energy = model(batch)
        energies.extend(energy.detach().cpu().numpy().tolist())
    return np.asarray(energies), all_forces


def fit_energy_shift(
    model: DimeNetPP, graphs: Sequence[PeriodicGraph], frames: Sequence[Frame]
) -> dict[str, float]:
    """Set the per-element energy shift to the least-squares fit of the training energies."""
    with torch.no_grad():
        model.energy_shift.zero_()
    predicted, _ = _predict(model, graphs, forces=False)
    reference = np.array([f.energy for f in frames], dtype=float)
    elements = sorted({el for f in frames for el in f.species})
    counts = np.array([[f.species.count(el) for el in elements] for f in frames], dtype=float)
    shift, *_ = np.linalg.lstsq(counts, reference - predicted, rcond=None)
    with torch.no_grad():
        for element, value in zip(elements, shift):
            model.energy_shift[atomic_numbers[element]] = float(value)
    return {element: float(value) for element, value in zip(elements, shift)}


def evaluate(
    model: DimeNetPP,
    frames: Sequence[Frame],
    *,
    graphs: Sequence[PeriodicGraph] | None = None,
    batch_size: int = 4,
) -> dict[str, float]:
    """Force MAE and RMSE (meV/Å, over components) and energy MAE (meV/atom) on ``frames``."""
    if not frames:
        raise DataError("no frames to evaluate")
    graphs = [frame_graph(f, cutoff=model.cutoff) for f in frames] if graphs is None else graphs
    model.eval()
    energies, forces = _predict(model, graphs, batch_size=batch_size)
    force_error = np.concatenate([(p - np.asarray(f.forces)).ravel() for p, f in zip(forces, frames)])
    energy_error = np.array([(e - f.energy) / f.n_atoms for e, f in zip(energies, frames)])
    return {
        "n_frames": len(frames),
        "force_mae_mev_per_a": float(np.mean(np.abs(force_error)) * 1000),
        "force_rmse_mev_per_a": float(np.sqrt(np.mean(force_error**2)) * 1000),
        "energy_mae_mev_per_atom": float(np.mean(np.abs(energy_error)) * 1000),
        "finite": bool(np.all(np.isfinite(force_error)) and np.all(np.isfinite(energy_error))),
    }
