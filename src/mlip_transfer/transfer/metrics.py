"""Errors of CHGNet models on labelled frames (the MAEs of the history and of Table 1).

Conventions as chgnet's Trainer: energy per atom averaged over structures; forces over all
force components; stress over the 9 components of each structure (GPa, canonical sign);
magmom over atoms that have a label, comparing |label| with the predicted magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.forward import frozen_parameters, predict_efsm
from mlip_transfer.transfer.graphs import (
    GraphCache,
    GraphDataset,
    make_loader,
    shared_graph_cache,
    to_device,
)

# Keys of evaluate_errors and of the "val_before" / "val_after" entries of train_summary.json.
ERROR_KEYS = {
    "energy_mae_mev_per_atom": "energy MAE, meV/atom",
    "force_mae_mev_per_a": "force MAE over force components, meV/Å",
    "stress_mae_gpa": "stress MAE over the 9 components, GPa",
    "magmom_mae_mub": "|magmom| MAE over atoms with labels, μB",
}


class ErrorSums:
    """Exact MAEs accumulated over batches (sums of absolute errors and counts)."""

    def __init__(self) -> None:
        self.sums = dict.fromkeys("efsm", 0.0)
        self.counts = dict.fromkeys("efsm", 0)
        self.loss_sum = 0.0
        self.n_structures = 0

    def add(
        self, targets: dict[str, Any], prediction: dict[str, Any], loss: float | None = None
    ) -> None:
        def accumulate(key: str, target: torch.Tensor, pred: torch.Tensor) -> None:
            valid = ~torch.isnan(target)
            self.sums[key] += float(torch.abs(target[valid] - pred.detach()[valid]).sum())
            self.counts[key] += int(valid.sum())

        accumulate("e", targets["e"], prediction["e"].view(-1))
        if "f" in prediction:
            accumulate("f", torch.cat(targets["f"]), torch.cat(prediction["f"]))
        if "s" in prediction:
            accumulate("s", torch.cat(targets["s"]), torch.cat(prediction["s"]))
        if "m" in prediction:
            for target, pred in zip(targets["m"], prediction["m"], strict=True):
                if target is not None:
                    accumulate("m", target, pred)
        n = len(targets["e"])
        if loss is not None:
            self.loss_sum += loss * n
        self.n_structures += n

    def mae(self, key: str) -> float:
        return self.sums[key] / self.counts[key] if self.counts[key] else math.nan

    def row(self) -> dict[str, float]:
        """History units: eV/atom, eV/Å, GPa, μB."""
        return {
            "energy_mae": self.mae("e"),
            "force_mae": self.mae("f"),
            "stress_mae": self.mae("s"),
            "magmom_mae": self.mae("m"),
            "loss": self.loss_sum / self.n_structures if self.n_structures else math.nan,
        }

    def errors(self) -> dict[str, float]:
        """Report units: meV/atom, meV/Å, GPa, μB (:data:`ERROR_KEYS`)."""
        return {
            "energy_mae_mev_per_atom": 1000 * self.mae("e"),
            "force_mae_mev_per_a": 1000 * self.mae("f"),
            "stress_mae_gpa": self.mae("s"),
            "magmom_mae_mub": self.mae("m"),
        }


def model_device(model: Any) -> torch.device:
    return next(model.parameters()).device


def evaluate_loader(
    model: Any,
    loader: DataLoader,
    device: torch.device,
    criterion: Any = None,
    *,
    progress: bool = False,
    desc: str = "eval",
    fused: bool = True,
) -> ErrorSums:
    """Predict ``efsm`` over a loader; parameters are not differentiated (faster, same values)."""
    sums = ErrorSums()
    model.eval()
    with frozen_parameters(model):
        for graphs, targets in tqdm(
            loader, desc=desc, unit="batch", disable=not progress, leave=False
        ):
            graphs, targets = to_device(graphs, targets, device, forces=True)
            prediction = predict_efsm(model, graphs, fused=fused, create_graph=False)
            loss = None
            if criterion is not None:
                loss = float(criterion(targets, prediction)["loss"])
            sums.add(targets, prediction, loss)
            del graphs, targets, prediction
    return sums


def evaluate_errors(
    model: Any,
    frames: Sequence[Frame],
    *,
    batch_size: int = 16,
    graph_cache: GraphCache | None = None,
    progress: bool = False,
    fused: bool = True,
) -> dict[str, float]:
    """Energy, force, stress and magmom MAEs of a CHGNet model on labelled frames.

    Conventions as chgnet's Trainer: energy per atom averaged over structures; forces over all
    force components; stress over the 9 components of each structure (GPa, canonical sign);
    magmom over atoms that have a label, comparing |label| with the predicted magnitude.
    Missing labels are skipped. The model runs on the device its parameters are on. Forces and
    stress come from one gradient pass (:func:`~mlip_transfer.transfer.forward.predict_efsm`;
    ``fused=False``: ``CHGNet.forward``).

    Returns:
        ``energy_mae_mev_per_atom``, ``force_mae_mev_per_a``, ``stress_mae_gpa``,
        ``magmom_mae_mub`` (NaN where no frame has that label), ``n_frames`` evaluated and
        ``n_skipped`` (structures the graph converter rejects).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    frames = list(frames)
    cache = shared_graph_cache(model.graph_converter) if graph_cache is None else graph_cache
    dataset, skipped = GraphDataset.from_frames(frames, cache, progress=progress)
    if not len(dataset):
        raise DataError("no frames to evaluate (none given, or none convertible to graphs)")
    sums = evaluate_loader(
        model, make_loader(dataset, batch_size), model_device(model), progress=progress, fused=fused
    )
    return {**sums.errors(), "n_frames": len(dataset), "n_skipped": len(skipped)}


def predict_energies(
    model: Any,
    frames: Sequence[Frame],
    *,
    batch_size: int = 16,
    graph_cache: GraphCache | None = None,
) -> np.ndarray:
    """Predicted energy per atom (eV/atom) of each frame; NaN for frames without a graph."""
    frames = list(frames)
    cache = shared_graph_cache(model.graph_converter) if graph_cache is None else graph_cache
    graphs = cache.graphs(frames)
    out = np.full(len(frames), np.nan)
    index = [i for i, g in enumerate(graphs) if g is not None]
    device = model_device(model)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(index), batch_size):
            chunk = index[start : start + batch_size]
            batch = [graphs[i].to(device) for i in chunk]
            out[chunk] = model(batch, task="e")["e"].cpu().numpy()
    return out

def energy_predictions(
    model: Any,
    frames: Sequence[Frame],
    *,
    batch_size: int = 16,
    graph_cache: GraphCache | None = None,
) -> Any:
    """Each frame's predicted and labelled energy per atom, and the part of the prediction that
    is the model's AtomRef (its composition model), so another AtomRef can be swapped in
    exactly: the AtomRef term is linear in composition and the GNN term does not depend on it.

    Returns:
        A data frame: ``frame_id``, ``material_id``, ``n_atoms``, ``composition``
        (``"Fe:2 O:3"``), ``energy_label``, ``energy_pred`` and ``energy_atomref`` (eV/atom;
        NaN prediction for frames without a graph).
    """
    import pandas as pd

    from mlip_transfer.energy_scale.chgnet_atomref import read_model_atomref

    frames = list(frames)
    predicted = predict_energies(model, frames, batch_size=batch_size, graph_cache=graph_cache)
    atomref = read_model_atomref(model)
    rows = []
    for frame, energy in zip(frames, predicted, strict=True):
        counts: dict[str, int] = {}
        for element in frame.species:
            counts[element] = counts.get(element, 0) + 1
        n_atoms = len(frame.species)
        rows.append({
            "frame_id": frame.frame_id,
            "material_id": frame.material_id,
            "n_atoms": n_atoms,
            "composition": " ".join(f"{el}:{n}" for el, n in sorted(counts.items())),
            "energy_label": math.nan if frame.energy is None else frame.energy_per_atom,
            "energy_pred": float(energy),
            "energy_atomref": sum(n * atomref.get(el, 0.0) for el, n in counts.items()) / n_atoms,
        })
    return pd.DataFrame(rows)


def errors_from_row(row: Mapping[str, float]) -> dict[str, float]:
    """A history row's MAEs (eV/atom, eV/Å, GPa, μB) in report units (:data:`ERROR_KEYS`)."""
    return {
        "energy_mae_mev_per_atom": 1000 * row["energy_mae"],
        "force_mae_mev_per_a": 1000 * row["force_mae"],
        "stress_mae_gpa": row["stress_mae"],
        "magmom_mae_mub": row["magmom_mae"],
    }


def format_errors(errors: Mapping[str, float]) -> str:
    """One line of report-unit errors for the log ("n/a" when there are none)."""
    if not errors:
        return "n/a"
    return (
        f"E {errors['energy_mae_mev_per_atom']:.1f} meV/atom, "
        f"F {errors['force_mae_mev_per_a']:.1f} meV/Å, "
        f"S {errors['stress_mae_gpa']:.3f} GPa, M {errors['magmom_mae_mub']:.3f} μB"
    )
