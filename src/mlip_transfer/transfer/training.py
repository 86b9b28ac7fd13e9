"""The paper's four transfer methods: building each model and training it (CHGNet).

Methods (``METHODS``; the source is a pretrained CHGNet, default v0.3.0, GGA/GGA+U):

``1_scratch``
    Same architecture as the source, GNN randomly initialised (seeded); AtomRef refit on the
    target training frames (Eq. 2) and frozen.
``2_trainable_gga_atomref``
    Source weights, source (GGA) AtomRef, AtomRef trained with the GNN.
``3_frozen_gga_atomref``
    Source weights, source AtomRef frozen.
``4_refit_atomref``
    Source weights, AtomRef replaced by the Eq.-2 refit on the target training frames, frozen
    (the paper's Method 4).
``4r_residual_atomref``
    Source weights, AtomRef = source AtomRef + a per-element shift fitted to the residual
    ``target label - source prediction`` on the training frames (Eq. 3 estimated directly),
    frozen. Not in the paper: a better-conditioned variant of Method 4 for small data.

Elements the refit cannot determine (present but not identifiable) and elements absent from
the training frames keep the source model's value; ``build_model`` lists both in its info.

Training loop: chgnet's ``Trainer`` cannot do what the study needs without patching its
internals (it builds Adam over ALL parameters, including a frozen AtomRef; it records no
gradients, no per-epoch loss or learning rate, saves no RNG state, and cannot resume inside
``train``), so :func:`train` is a faithful re-implementation of ``Trainer._train`` /
``Trainer._validate`` (chgnet 0.4.2) built from chgnet's own pieces:

* loss: ``chgnet.trainer.trainer.CombinedLoss`` (targets ``efsm``, ``allow_missing_labels``,
  Huber delta 0.1 as the Trainer's default), ratios energy:force:stress:magmom;
* optimizer: ``torch.optim.Adam`` (weight decay 0), over the TRAINABLE parameters only, so a
  frozen AtomRef (``requires_grad=False``) can never be moved;
* schedule: ``CosineAnnealingLR`` stepped every tenth of an epoch exactly as the Trainer does
  (after batch ``floor(k n / 10)``, k = 1..10; fewer steps when an epoch has < 10 batches),
  ``T_max`` = number of scheduler steps in the whole run, ``eta_min = final_learning_rate``:
  1e-3 decays to 1e-5 by the last batch;
* graphs: ``model.graph_converter`` converts each frame ONCE (:class:`GraphCache`, optionally on
  disk); labels are pre-built tensors in chgnet's training units (energy per atom, forces eV/Å,
  stress GPa as the model predicts it, |magmom| μB). Batches are collated with
  ``chgnet.data.dataset.collate_graphs``. Cached graphs are never mutated: each batch uses
  shallow copies whose coordinates are detached leaves, so no gradient piles up in the cache;
* forward pass: chgnet's own modules, but forces and stress come from ONE gradient of the
  energy with respect to positions and strains together (:func:`predict_efsm`), where
  ``CHGNet.forward`` takes two; the same predictions, ~1.6x faster training steps. It is checked
  against ``CHGNet.forward`` on the first batch of every training (``fused_force_stress=False``
  or a mismatch uses ``CHGNet.forward``). Validation does not differentiate parameters and
  keeps no second-order graph.

Fig. 3a layers (paper name -> CHGNet parameter): see :data:`FIG3A_LAYERS`. ``W0`` / ``W3`` are
the linear layers at index 0 and 3 of the core MLP of the two-body gated MLP of a convolution
(``mlp_core.layers.0`` / ``.3``); the gate MLP has the same shape and is not recorded. The
norm is the L2 norm of the parameter's gradient just before the optimizer step (0 when the batch
does not reach the parameter, e.g. a batch without any angle; NaN for a frozen parameter).

Outputs of :func:`train` in ``out_dir``: ``checkpoint_epoch{N}.pt`` (model, optimizer,
scheduler, epoch, RNG states, history so far), ``history.csv``, ``gradients.csv``,
``model_final.pt`` and ``model_best.pt`` (both loadable with ``CHGNet.from_file`` or
:func:`mlip_transfer.transfer.models.load_chgnet`), ``train_summary.json``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mlip_transfer.core.device import resolve_device
from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.files import save_torch_atomic, write_text_atomic
from mlip_transfer.data.dataset import Frame
from mlip_transfer.energy_scale.atomref import (
    add_shift,
    fit_atomref_to_frames,
    fit_residual_shift,
    read_model_atomref,
    set_model_atomref,
)

logger = logging.getLogger("mlip_transfer.transfer.training")

METHODS = (
    "1_scratch",
    "2_trainable_gga_atomref",
    "3_frozen_gga_atomref",
    "4_refit_atomref",
    "4r_residual_atomref",
)
METHOD_NAMES = {
    "1_scratch": "Method 1: scratch",
    "2_trainable_gga_atomref": "Method 2: TL, trainable GGA AtomRef",
    "3_frozen_gga_atomref": "Method 3: TL, frozen GGA AtomRef",
    "4_refit_atomref": "Method 4: TL, refit AtomRef",
    "4r_residual_atomref": "Method 4r: TL, residual-fit AtomRef",
}
TRAINABLE_ATOMREF = {method: method == "2_trainable_gga_atomref" for method in METHODS}

# Paper name (Fig. 3a) -> CHGNet parameter whose gradient norm is recorded.
FIG3A_LAYERS = {
    "AtomEmb": "atom_embedding.embedding.weight",
    "BondEmb": "bond_embedding.weight",
    "AngleEmb": "angle_embedding.weight",
    "AtomConv0_W0": "atom_conv_layers.0.twoBody_atom.mlp_core.layers.0.weight",
    "AtomConv3_W3": "atom_conv_layers.3.twoBody_atom.mlp_core.layers.3.weight",
    "BondConv0_W0": "bond_conv_layers.0.twoBody_bond.mlp_core.layers.0.weight",
    "BondConv2_W3": "bond_conv_layers.2.twoBody_bond.mlp_core.layers.3.weight",
    "MLP_Layer0": "mlp.layers.0.weight",
}
HISTORY_COLUMNS = (
    "epoch",
    "split",
    "energy_mae",
    "force_mae",
    "stress_mae",
    "magmom_mae",
    "loss",
    "lr",
    "wall_s",
)
GRADIENT_COLUMNS = (
    "method",
    "step",
    "epoch_fraction",
    "layer",
    "grad_norm",
    "grad_abs_mean",
    "grad_abs_max",
    "parameter",
)
# Keys of evaluate_errors and of the "val_before" / "val_after" entries of train_summary.json.
ERROR_KEYS = {
    "energy_mae_mev_per_atom": "energy MAE, meV/atom",
    "force_mae_mev_per_a": "force MAE over force components, meV/Å",
    "stress_mae_gpa": "stress MAE over the 9 components, GPa",
    "magmom_mae_mub": "|magmom| MAE over atoms with labels, μB",
}
TASK = "efsm"
_CHECKPOINT = re.compile(r"^checkpoint_epoch(\d+)\.pt$")


# ------------------------------------------------------------------ small helpers


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"training method must be one of {list(METHODS)}, got {method!r}")
    return method


def _sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _tenth_steps(n_batches: int) -> list[int]:
    """Batches (1-based) after which chgnet's Trainer steps its scheduler: every tenth."""
    return sorted({max(1, (k * n_batches) // 10) for k in range(1, 11)}) if n_batches else []


# ------------------------------------------------------------------ graphs and labels


def structure_hash(frame: Frame) -> str:
    """Digest of a frame's species, lattice and coordinates (what the graph depends on)."""
    digest = hashlib.sha256()
    digest.update("|".join(frame.species).encode())
    digest.update(np.ascontiguousarray(frame.lattice, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(frame.frac_coords, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


class GraphCache:
    """CHGNet crystal graphs of frames, converted once and reused across epochs and methods.

    Keys are ``frame_id:structure_hash``, so a frame id reused for another structure is never
    served a stale graph. With ``cache_dir``, graphs are also kept on disk under
    ``cache_dir/graphs-<settings>/`` (settings = converter cutoffs and algorithm + chgnet
    version), written as atomically renamed shard files, so a separate training process (one
    Snakemake rule per method) loads them instead of converting again.

    Attributes:
        n_converted: Structures converted by this object (the count tests pin).
        n_loaded: Graphs read from disk.
        conversion_s: Seconds spent converting.
        failed: Frame key -> reason, for structures the converter rejects (isolated atoms).
    """

    def __init__(self, converter: Any, *, cache_dir: str | Path | None = None) -> None:
        import chgnet

        self.converter = converter
        self.settings = {**converter.as_dict(), "chgnet": chgnet.__version__}
        self.settings_key = _sha(json.dumps(self.settings, sort_keys=True), 12)
        self.cache_dir = (
            None if cache_dir is None else Path(cache_dir) / f"graphs-{self.settings_key}"
        )
        self._graphs: dict[str, Any] = {}
        self.failed: dict[str, str] = {}
        self.n_converted = 0
        self.n_loaded = 0
        self.conversion_s = 0.0
        self._seen_shards: set[str] = set()

    @staticmethod
    def key(frame: Frame) -> str:
        return f"{frame.frame_id}:{structure_hash(frame)}"

    @property
    def n_graphs(self) -> int:
        """Graphs held (no ``__len__``: an empty cache must not be falsy)."""
        return len(self._graphs)

    def _load_disk(self) -> None:
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return
        for shard in sorted(self.cache_dir.glob("shard-*.pt")):
            if shard.name in self._seen_shards:
                continue
            try:
                content = torch.load(shard, map_location="cpu", weights_only=False)
            except Exception as exc:  # noqa: BLE001 - a bad shard is only a cache miss
                logger.warning("ignoring unreadable graph cache shard %s (%s)", shard, exc)
                continue
            self._seen_shards.add(shard.name)
            if content.get("settings") != self.settings:
                continue
            for key, graph in content["graphs"].items():
                if key not in self._graphs:
                    self._graphs[key] = graph
                    self.n_loaded += 1
            for key, reason in content.get("failed", {}).items():
                self.failed.setdefault(key, reason)

    def _write_shard(self, graphs: dict[str, Any], failed: dict[str, str]) -> None:
        if self.cache_dir is None or not (graphs or failed):
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        name = f"shard-{_sha(chr(10).join(sorted(graphs) + sorted(failed)))}.pt"
        save_torch_atomic(
            {"settings": self.settings, "graphs": graphs, "failed": failed}, self.cache_dir / name
        )
        self._seen_shards.add(name)

    def graphs(self, frames: Sequence[Frame], *, progress: bool = False) -> list[Any]:
        """One graph per frame (``None`` where the converter rejects the structure)."""
        keys = [self.key(frame) for frame in frames]
        if any(k not in self._graphs and k not in self.failed for k in keys):
            self._load_disk()
        todo = {}
        for key, frame in zip(keys, frames):
            if key not in self._graphs and key not in self.failed:
                todo[key] = frame
        new: dict[str, Any] = {}
        new_failed: dict[str, str] = {}
        if todo:
            start = time.perf_counter()
            for key, frame in tqdm(
                todo.items(), desc="graphs", unit="structure", disable=not progress, leave=False
            ):
                try:
                    graph = self.converter(
                        frame.to_structure(), graph_id=frame.frame_id, mp_id=frame.material_id
                    )
                except Exception as exc:  # noqa: BLE001 - chgnet raises plain exceptions
                    new_failed[key] = f"{type(exc).__name__}: {exc}"
                    logger.warning(
                        "frame %s: graph conversion failed (%s); skipped", frame.frame_id, exc
                    )
                    continue
                # Store leaves that require no gradient: nothing accumulates in the cache.
                graph.atom_frac_coord = graph.atom_frac_coord.detach()
                graph.lattice = graph.lattice.detach()
                new[key] = graph
            self.n_converted += len(todo)
            self.conversion_s += time.perf_counter() - start
            self._graphs.update(new)
            self.failed.update(new_failed)
            self._write_shard(new, new_failed)
            logger.info(
                "converted %d structures to graphs in %.1f s (%d failed)",
                len(todo),
                time.perf_counter() - start,
                len(new_failed),
            )
        return [self._graphs.get(key) for key in keys]


_SHARED_CACHES: dict[tuple[str, str], GraphCache] = {}


def shared_graph_cache(converter: Any, *, cache_dir: str | Path | None = None) -> GraphCache:
    """The process-wide :class:`GraphCache` for these converter settings (and cache folder)."""
    probe = GraphCache(converter, cache_dir=cache_dir)
    key = (probe.settings_key, str(probe.cache_dir))
    return _SHARED_CACHES.setdefault(key, probe)


def frame_targets(frame: Frame) -> dict[str, Any]:
    """Labels of one frame in chgnet's training units (what ``StructureData`` yields).

    ``e`` energy per atom (eV/atom), ``f`` forces (eV/Å), ``s`` stress in GPa with the sign the
    model predicts (= the canonical frame stress; ``StructureData`` gets it from VASP kBar by
    multiplying with -0.1), ``m`` |magmom| (μB) or ``None``. Missing energy, forces or stress
    become NaN, which ``CombinedLoss(allow_missing_labels=True)`` masks out.
    """
    dtype = torch.float32
    n = frame.n_atoms
    energy = frame.energy_per_atom
    return {
        "e": torch.tensor(math.nan if energy is None else energy, dtype=dtype),
        "f": torch.full((n, 3), math.nan, dtype=dtype)
        if frame.forces is None
        else torch.tensor(np.asarray(frame.forces), dtype=dtype),
        "s": torch.full((3, 3), math.nan, dtype=dtype)
        if frame.stress is None
        else torch.tensor(np.asarray(frame.stress), dtype=dtype),
        "m": None
        if frame.magmoms is None
        else torch.abs(torch.tensor(np.asarray(frame.magmoms), dtype=dtype)),
    }


class GraphDataset(Dataset):
    """(graph, targets) pairs over cached graphs; collate with ``collate_graphs``."""

    def __init__(
        self, graphs: Sequence[Any], targets: Sequence[dict[str, Any]], frame_ids: Sequence[str]
    ) -> None:
        if not (len(graphs) == len(targets) == len(frame_ids)):
            raise ValueError("graphs, targets and frame ids differ in length")
        self.graphs = list(graphs)
        self.targets = list(targets)
        self.frame_ids = list(frame_ids)

    @classmethod
    def from_frames(
        cls, frames: Sequence[Frame], cache: GraphCache, *, progress: bool = False
    ) -> tuple[GraphDataset, list[str]]:
        """Dataset of the frames the converter accepts, and the ids of those it rejected."""
        graphs = cache.graphs(frames, progress=progress)
        kept = [(g, f) for g, f in zip(graphs, frames) if g is not None]
        skipped = [f.frame_id for g, f in zip(graphs, frames) if g is None]
        return (
            cls(
                [g for g, _ in kept],
                [frame_targets(f) for _, f in kept],
                [f.frame_id for _, f in kept],
            ),
            skipped,
        )

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, idx: int) -> tuple[Any, dict[str, Any]]:
        return self.graphs[idx], self.targets[idx]


def _loader(
    dataset: GraphDataset, batch_size: int, *, shuffle_seed: int | None = None
) -> DataLoader:
    from chgnet.data.dataset import collate_graphs

    generator = None
    if shuffle_seed is not None:
        generator = torch.Generator()
        generator.manual_seed(shuffle_seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None,
        generator=generator,
        collate_fn=collate_graphs,
        num_workers=0,
    )


def _to_device(
    graphs: Sequence[Any], targets: dict[str, Any], device: torch.device, *, forces: bool
):
    """Batch on the device; graphs are shallow copies whose coordinates are fresh leaves."""
    moved = []
    for graph in graphs:
        copy_ = graph.to(device)  # a new CrystalGraph; tensors are shared when already there
        copy_.atom_frac_coord = copy_.atom_frac_coord.detach().requires_grad_(forces)
        copy_.lattice = copy_.lattice.detach()
        moved.append(copy_)

    def move(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [move(v) for v in value]
        return value.to(device)

    return moved, {key: move(value) for key, value in targets.items()}


# ------------------------------------------------------------------ forward pass

EV_PER_A3_TO_GPA = 160.21766208  # chgnet.model.model.CHGNet._compute


def can_fuse(model: Any) -> bool:
    """Whether :func:`predict_efsm` may take the fused path (intensive CHGNet with an AtomRef)."""
    return bool(getattr(model, "is_intensive", False)) and all(
        hasattr(model, name)
        for name in (
            "_compute",
            "composition_model",
            "bond_basis_expansion",
            "angle_basis_expansion",
        )
    )


def predict_efsm(
    model: Any, graphs: Sequence[Any], *, fused: bool = True, create_graph: bool = True
) -> dict[str, Any]:
    """``model(graphs, task="efsm")``, with forces and stress from ONE gradient pass.

    ``CHGNet.forward`` differentiates the energy twice, once for forces and once for stress,
    each with ``create_graph=True``, so training back-propagates through two second-order
    graphs. Here the same energy is differentiated once with respect to the positions and the
    strains together: identical predictions (bitwise on CPU in our tests), parameter gradients
    equal to float32 rounding, and a training step ~1.6x faster on CPU. The pieces are chgnet's
    own (``BatchedGraph.from_graphs``, ``CHGNet._compute``, the composition model); a model
    this does not fit (:func:`can_fuse`) or ``fused=False`` uses ``model(graphs, task="efsm")``.

    Args:
        create_graph: Keep the graph of the gradients (needed to train on forces/stress);
            False for evaluation, where it only costs memory and time.
    """
    if not fused or not can_fuse(model):
        return model(graphs, task=TASK)
    from chgnet.model.model import BatchedGraph

    comp_energy = 0 if model.composition_model is None else model.composition_model(graphs)
    batched = BatchedGraph.from_graphs(
        graphs,
        bond_basis_expansion=model.bond_basis_expansion,
        angle_basis_expansion=model.angle_basis_expansion,
        compute_stress=True,
    )
    prediction = model._compute(
        batched, compute_force=False, compute_stress=False, compute_magmom=True
    )
    total = (prediction["e"] * prediction["atoms_per_graph"]).sum()  # intensive -> total energy
    n_graphs = len(batched.atom_positions)
    grads = torch.autograd.grad(
        total,
        [*batched.atom_positions, *batched.strains],
        create_graph=create_graph,
        retain_graph=create_graph,
    )
    prediction["f"] = [-1 * grad for grad in grads[:n_graphs]]
    scale = 1 / batched.volumes * EV_PER_A3_TO_GPA
    prediction["s"] = [grad * factor for grad, factor in zip(grads[n_graphs:], scale, strict=True)]
    prediction["e"] = prediction["e"] + comp_energy
    return prediction


def _check_fused(model: Any, graphs: Sequence[Any], device: torch.device) -> bool:
    """Compare the fused path with ``CHGNet.forward`` on one batch; False if they disagree."""
    if not can_fuse(model):
        logger.info(
            "fused force/stress gradient does not apply to this model; using CHGNet.forward"
        )
        return False

    def flat(prediction: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = {}
        for key in "efsm":
            value = prediction[key]
            value = torch.cat([t.reshape(-1) for t in value]) if isinstance(value, list) else value
            out[key] = value.detach().reshape(-1)
        return out

    # One at a time, parameters not differentiated: the check costs less memory than a step.
    # create_graph as in training (without it float32 noise differs, ~1e-4 eV/Å).
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        reference = flat(model(_to_device(graphs, {}, device, forces=True)[0], task=TASK))
        batch = _to_device(graphs, {}, device, forces=True)[0]
        fused = flat(predict_efsm(model, batch, create_graph=True))
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
    worst = {}
    ok = True
    for key in "efsm":
        ref, new = reference[key], fused[key]
        worst[key] = float((ref - new).abs().max()) if ref.numel() else 0.0
        ok = (
            ok
            and ref.shape == new.shape
            and torch.allclose(
                ref,
                new,
                rtol=1e-3,
                atol=1e-4 * max(1.0, float(ref.abs().max()) if ref.numel() else 1.0),
            )
        )
    if ok:
        logger.info("fused force/stress gradient matches CHGNet.forward (max |diff| %s)", worst)
    else:
        logger.warning(
            "fused force/stress gradient differs from CHGNet.forward (max |diff| %s); "
            "training with CHGNet.forward instead",
            worst,
        )
    return ok


# ------------------------------------------------------------------ errors


class _ErrorSums:
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


def _model_device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _evaluate(
    model: Any,
    loader: DataLoader,
    device: torch.device,
    criterion: Any = None,
    *,
    progress: bool = False,
    desc: str = "eval",
    fused: bool = True,
) -> _ErrorSums:
    """Predict ``efsm`` over a loader; parameters are not differentiated (faster, same values)."""
    sums = _ErrorSums()
    model.eval()
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for graphs, targets in tqdm(
            loader, desc=desc, unit="batch", disable=not progress, leave=False
        ):
            graphs, targets = _to_device(graphs, targets, device, forces=True)
            prediction = predict_efsm(model, graphs, fused=fused, create_graph=False)
            loss = None
            if criterion is not None:
                loss = float(criterion(targets, prediction)["loss"])
            sums.add(targets, prediction, loss)
            del graphs, targets, prediction
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
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
    stress come from one gradient pass (:func:`predict_efsm`; ``fused=False``: ``CHGNet.forward``).

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
    sums = _evaluate(
        model, _loader(dataset, batch_size), _model_device(model), progress=progress, fused=fused
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
    device = _model_device(model)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(index), batch_size):
            chunk = index[start : start + batch_size]
            batch = [graphs[i].to(device) for i in chunk]
            out[chunk] = model(batch, task="e")["e"].cpu().numpy()
    return out


# ------------------------------------------------------------------ the four methods


def build_model(
    method: str,
    *,
    train_frames: Sequence[Frame],
    source_model_name: str = "0.3.0",
    seed: int = 0,
    source_model: Any = None,
    graph_cache: GraphCache | None = None,
    batch_size: int = 16,
) -> tuple[Any, dict[str, Any]]:
    """The starting model of a method (on the CPU) and how it was built.

    Args:
        method: One of :data:`METHODS`.
        train_frames: Target-functional training frames (one functional) for the AtomRef fits.
        source_model_name: Pretrained CHGNet to start from (``CHGNet.load(model_name=...)``).
        seed: Seed of the random GNN initialisation (Method 1).
        source_model: An already loaded source model (deep-copied, never modified); overrides
            ``source_model_name`` except as the label in ``info``.
        graph_cache: Graphs for the source predictions of Method 4r (default: shared cache).
        batch_size: Batch size of those predictions.

    Returns:
        ``(model, info)``. ``info`` (JSON-serialisable) holds ``method``, ``display_name``,
        ``source_model``, ``gnn_init``, ``atomref_start``, ``atomref_trainable``, ``seed``,
        ``n_train_frames``, ``atomref_fitted_elements``, ``atomref_undetermined`` (element ->
        reason; these keep the source value), ``atomref_absent_from_training`` (keep the source
        value), ``atomref_fit`` (rank, residual MAE ...) and ``atomref`` (element -> eV/atom).

    Raises:
        ConfigError: Unknown method.
        DataError: No training frames, several functionals, or a frame without energy.
    """
    from chgnet.model import CHGNet

    _check_method(method)
    frames = list(train_frames)
    if method in ("1_scratch", "4_refit_atomref", "4r_residual_atomref") and not frames:
        raise DataError(f"method {method} needs training frames to fit its AtomRef")
    if source_model is None:
        source = CHGNet.load(model_name=source_model_name, use_device="cpu", verbose=False)
    else:
        source = copy.deepcopy(source_model).cpu()
    source_ref = read_model_atomref(source)
    info: dict[str, Any] = {
        "method": method,
        "display_name": METHOD_NAMES[method],
        "source_model": source_model_name,
        "gnn_init": f"pretrained CHGNet {source_model_name}",
        "atomref_trainable": TRAINABLE_ATOMREF[method],
        "seed": seed,
        "n_train_frames": len(frames),
        "atomref_fitted_elements": [],
        "atomref_undetermined": {},
        "atomref_absent_from_training": [],
        "atomref_fit": None,
    }
    fit = None
    if method == "1_scratch":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = CHGNet(**source.model_args)
        model.composition_model.load_state_dict(source.composition_model.state_dict())
        fit = fit_atomref_to_frames(frames)
        set_model_atomref(model, fit)
        info["gnn_init"] = f"random (torch seed {seed}), architecture of CHGNet {source_model_name}"
        info["atomref_start"] = f"Eq. 2 refit on {len(frames)} training frames, frozen"
    elif method in ("2_trainable_gga_atomref", "3_frozen_gga_atomref"):
        model = source
        state = "trainable" if TRAINABLE_ATOMREF[method] else "frozen"
        info["atomref_start"] = f"source AtomRef of CHGNet {source_model_name}, {state}"
    elif method == "4_refit_atomref":
        model = source
        fit = fit_atomref_to_frames(frames)
        set_model_atomref(model, fit)
        info["atomref_start"] = f"Eq. 2 refit on {len(frames)} training frames, frozen"
    else:  # 4r
        model = source
        functionals = sorted({f.functional for f in frames})
        if len(functionals) > 1:
            raise DataError(f"training frames hold functionals {functionals}", field="functional")
        for frame in frames:
            if frame.energy is None:
                raise DataError("frame has no energy", record=frame.frame_id, field="energy")
        cache = shared_graph_cache(source.graph_converter) if graph_cache is None else graph_cache
        predicted = predict_energies(source, frames, batch_size=batch_size, graph_cache=cache)
        usable = [i for i in range(len(frames)) if np.isfinite(predicted[i])]
        fit = fit_residual_shift(
            [frames[i].species for i in usable],
            [frames[i].energy_per_atom for i in usable],
            predicted[usable],
            records=[frames[i].frame_id for i in usable],
        )
        set_model_atomref(model, add_shift(source_ref, fit))
        info["atomref_start"] = (
            f"source AtomRef + per-element shift fitted to (label - source prediction) on "
            f"{len(usable)} training frames, frozen"
        )
        info["atomref_shift"] = dict(sorted(fit.energies.items()))
    for param in model.composition_model.parameters():
        param.requires_grad_(TRAINABLE_ATOMREF[method])
    model.composition_model.fitted = True
    if fit is not None:
        info["atomref_fitted_elements"] = sorted(fit.energies)
        info["atomref_undetermined"] = {el: fit.reasons.get(el, "") for el in fit.missing}
        info["atomref_fit"] = {
            "rank": fit.rank,
            "n_samples": fit.n_samples,
            "n_elements": fit.n_elements,
            "residual_mae_ev_per_atom": fit.residual_mae,
            "residual_rmse_ev_per_atom": fit.residual_rmse,
        }
        present = {el for f in frames for el in f.species}
        info["atomref_absent_from_training"] = sorted(set(source_ref) - present)
        if info["atomref_undetermined"]:
            logger.warning(
                "%s: AtomRef of %s not determined by the training frames; they keep the source value",
                method,
                ", ".join(info["atomref_undetermined"]),
            )
    info["atomref"] = read_model_atomref(model)
    return model, info


# ------------------------------------------------------------------ training


@dataclass
class TrainResult:
    """What :func:`train` produced (the files are in ``out_dir``)."""

    out_dir: Path
    model: Any
    history: pd.DataFrame
    gradients: pd.DataFrame
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def _resolve_layers(model: Any, layers: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    if layers is None:
        return {}
    if isinstance(layers, Mapping):
        mapping = dict(layers)
    else:
        mapping = {name: FIG3A_LAYERS.get(name, name) for name in layers}
    params = dict(model.named_parameters())
    unknown = [f"{k} ({v})" for k, v in mapping.items() if v not in params]
    if unknown:
        raise ConfigError(f"gradient_layers name parameters the model does not have: {unknown}")
    return mapping


def _last_checkpoint(out_dir: Path, epochs: int) -> Path | None:
    found = []
    for path in out_dir.glob("checkpoint_epoch*.pt"):
        match = _CHECKPOINT.match(path.name)
        if match and 1 <= int(match.group(1)) <= epochs:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_tables(
    out_dir: Path, history: list[dict], gradients: list[dict]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    hist = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
    grads = pd.DataFrame(gradients, columns=list(GRADIENT_COLUMNS))
    write_text_atomic(out_dir / "history.csv", hist.to_csv(index=False))
    write_text_atomic(out_dir / "gradients.csv", grads.to_csv(index=False))
    return hist, grads


def train(
    *,
    model: Any,
    train_frames: Sequence[Frame],
    val_frames: Sequence[Frame],
    method: str,
    out_dir: str | Path,
    epochs: int,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    final_learning_rate: float = 1e-5,
    loss_ratios: Sequence[float] = (3, 1, 0.1, 1),
    criterion: str = "Huber",
    device: str = "auto",
    seed: int = 0,
    gradient_layers: Mapping[str, str] | Sequence[str] | None = tuple(FIG3A_LAYERS),
    progress: bool = True,
    graph_cache: GraphCache | None = None,
    info: Mapping[str, Any] | None = None,
    keep_checkpoints: int | None = None,
    fused_force_stress: bool = True,
    validate_every: int | None = 1,
) -> TrainResult:
    """Train a model built by :func:`build_model`; resumes from checkpoints in ``out_dir``.

    Args:
        model: The starting model (modified in place and returned in the result).
        train_frames, val_frames: Labelled frames; validation errors are computed before
            training (``epoch`` 0) and after every epoch.
        method: One of :data:`METHODS`; decides whether the AtomRef is trained (Method 2 only).
        out_dir: Output folder (created).
        epochs: Total number of epochs (also fixes the cosine schedule length).
        batch_size, learning_rate, final_learning_rate: Adam batch size and cosine lr range.
        loss_ratios: Energy, force, stress, magmom weights of ``CombinedLoss``.
        criterion: ``"Huber"`` (delta 0.1), ``"MSE"`` or ``"MAE"``.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
        seed: Seed of the per-epoch shuffling (epoch ``N`` uses ``seed``, ``N``, so a resumed
            run sees the same order) and of the global RNGs at the start.
        gradient_layers: Layers whose gradient norms are recorded every tenth of the first
            epoch: Fig. 3a names (:data:`FIG3A_LAYERS`), parameter names, or a mapping
            label -> parameter name; ``None`` records none.
        progress: tqdm bars (to stderr).
        graph_cache: Graph cache (default: the process-wide one for the model's converter).
        info: The ``info`` of :func:`build_model`, copied into ``train_summary.json``.
        keep_checkpoints: Keep only the newest this many ``checkpoint_epoch*.pt`` (default all).
        fused_force_stress: Forces and stress from one gradient pass (:func:`predict_efsm`),
            checked against ``CHGNet.forward`` on the first batch (falls back if they differ).
        validate_every: Validate after every this many epochs and after the last; ``None``:
            only before training and after the last epoch (many short jobs, e.g. the scaling
            law, where validation would cost more than training). The best model is chosen among
            validated epochs.

    Resume: if ``out_dir`` holds ``checkpoint_epoch{N}.pt``, the model, optimizer, scheduler,
    RNG states, history and gradients of the newest are restored and training continues with
    epoch ``N + 1``; the settings must match (else :class:`ConfigError`).

    Raises:
        ConfigError: Bad settings, or checkpoints made with other settings.
        DataError: No usable training frames.
        FloatingPointError: The training loss became NaN (history up to then is written).
    """
    from chgnet.trainer.trainer import CombinedLoss

    _check_method(method)
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if validate_every is not None and validate_every < 1:
        raise ConfigError(f"validate_every must be >= 1 or None, got {validate_every}")
    if len(loss_ratios) != 4:
        raise ConfigError(
            f"loss_ratios must be four numbers (energy, force, stress, magmom), got {loss_ratios}"
        )
    if not 0 < final_learning_rate <= learning_rate:
        raise ConfigError(
            f"need 0 < final_learning_rate <= learning_rate, got {final_learning_rate}, {learning_rate}"
        )
    if criterion not in ("Huber", "MSE", "mse", "MAE", "mae", "l1"):
        raise ConfigError(f"criterion must be 'Huber', 'MSE' or 'MAE', got {criterion!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    wall_start = time.perf_counter()
    train_frames, val_frames = list(train_frames), list(val_frames)

    cache = shared_graph_cache(model.graph_converter) if graph_cache is None else graph_cache
    converted_before, conversion_before = cache.n_converted, cache.conversion_s
    train_set, skipped_train = GraphDataset.from_frames(train_frames, cache, progress=progress)
    val_set, skipped_val = GraphDataset.from_frames(val_frames, cache, progress=progress)
    if not len(train_set):
        raise DataError("no training frames (none given, or none convertible to graphs)")
    settings = {
        "method": method,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "final_learning_rate": final_learning_rate,
        "loss_ratios": [float(x) for x in loss_ratios],
        "criterion": criterion,
        "seed": seed,
        "train_frames": _sha("\n".join(train_set.frame_ids)),
        "val_frames": _sha("\n".join(val_set.frame_ids)),
    }

    # Trainability: the AtomRef only in Method 2; everything else trains.
    model.to(dev)
    for name, param in model.named_parameters():
        param.requires_grad_(
            TRAINABLE_ATOMREF[method] if name.startswith("composition_model.") else True
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=learning_rate, weight_decay=0)
    unseen = sorted(
        {el for f in val_frames for el in f.species}
        - {el for f in train_frames for el in f.species}
    )
    if unseen:
        logger.warning(
            "%s: validation frames hold elements absent from the training frames (%s): no "
            "AtomRef fit or training reaches them",
            method,
            ", ".join(unseen),
        )
    fused = fused_force_stress and _check_fused(
        model, train_set.graphs[: min(batch_size, len(train_set))], dev
    )
    n_batches = math.ceil(len(train_set) / batch_size)
    sched_steps = set(_tenth_steps(n_batches))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs * len(sched_steps)), eta_min=final_learning_rate
    )
    loss_fn = CombinedLoss(
        target_str=TASK,
        criterion=criterion,
        energy_loss_ratio=loss_ratios[0],
        force_loss_ratio=loss_ratios[1],
        stress_loss_ratio=loss_ratios[2],
        mag_loss_ratio=loss_ratios[3],
        allow_missing_labels=True,
    )
    layers = _resolve_layers(model, gradient_layers)
    params = dict(model.named_parameters())
    val_loader = _loader(val_set, batch_size) if len(val_set) else None

    history: list[dict] = []
    gradients: list[dict] = []
    best = {"epoch": None, "energy_mae": math.inf}
    start_epoch = 1
    prior_train_s = 0.0
    val_before: dict[str, float] = {}
    checkpoint = _last_checkpoint(out_dir, epochs)
    if checkpoint is not None:
        # On the CPU: RNG states must stay CPU tensors; the optimizer moves its state to the
        # parameters' device and load_state_dict copies into the model where it is.
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        differing = {
            k: (state["settings"].get(k), v)
            for k, v in settings.items()
            if state["settings"].get(k) != v
        }
        if differing:
            raise ConfigError(
                f"{checkpoint} was written with other settings {differing} (checkpoint, now); "
                "use the same settings or another out_dir"
            )
        model.load_state_dict(state["model"]["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        history, gradients, best = state["history"], state["gradients"], state["best"]
        val_before, prior_train_s = state["val_before"], state["train_s"]
        start_epoch = state["epoch"] + 1
        logger.info(
            "%s: resuming from %s (epoch %d of %d)", method, checkpoint.name, state["epoch"], epochs
        )
    else:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        if val_loader is not None:
            t0 = time.perf_counter()
            sums = _evaluate(
                model, val_loader, dev, loss_fn, progress=progress, desc="val (before)", fused=fused
            )
            history.append(
                {
                    "epoch": 0,
                    "split": "val",
                    **sums.row(),
                    "lr": learning_rate,
                    "wall_s": time.perf_counter() - t0,
                }
            )
            val_before = sums.errors()
            logger.info("%s: validation before training: %s", method, _fmt(val_before))
    logger.info(
        "%s: %d train / %d val frames (%d / %d without graph), %d batches per epoch, device %s, "
        "%d trainable parameters (AtomRef %s)",
        method,
        len(train_set),
        len(val_set),
        len(skipped_train),
        len(skipped_val),
        n_batches,
        dev,
        sum(p.numel() for p in trainable),
        "trainable" if TRAINABLE_ATOMREF[method] else "frozen",
    )

    run_train_s = 0.0
    run_structures = 0
    for epoch in range(start_epoch, epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        sums = _ErrorSums()
        record = epoch == 1 and bool(layers)
        t0 = time.perf_counter()
        loader = _loader(train_set, batch_size, shuffle_seed=seed * 1_000_003 + epoch)
        bar = tqdm(
            loader,
            desc=f"{method} epoch {epoch}/{epochs}",
            unit="batch",
            disable=not progress,
            leave=False,
        )
        for idx, (graphs, targets) in enumerate(bar, start=1):
            graphs, targets = _to_device(graphs, targets, dev, forces=True)
            prediction = predict_efsm(model, graphs, fused=fused)
            out = loss_fn(targets, prediction)
            loss = out["loss"]
            if not torch.isfinite(loss):
                _write_tables(out_dir, history, gradients)
                raise FloatingPointError(
                    f"{method}: training loss is {float(loss)} at epoch {epoch}, batch {idx}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if record and idx in sched_steps:
                for label, pname in layers.items():
                    grad = params[pname].grad
                    if (
                        grad is None
                    ):  # not reached by this batch (e.g. no angles): zero if trainable
                        grad = (
                            torch.zeros_like(params[pname]) if params[pname].requires_grad else None
                        )
                    values = (
                        (math.nan,) * 3
                        if grad is None
                        else (float(grad.norm()), float(grad.abs().mean()), float(grad.abs().max()))
                    )
                    gradients.append(
                        {
                            "method": method,
                            "step": idx,
                            "epoch_fraction": idx / n_batches,
                            "layer": label,
                            "grad_norm": values[0],
                            "grad_abs_mean": values[1],
                            "grad_abs_max": values[2],
                            "parameter": pname,
                        }
                    )
            optimizer.step()
            if idx in sched_steps:
                scheduler.step()
            sums.add(targets, prediction, float(loss))
            if progress:
                bar.set_postfix(loss=f"{float(loss):.4g}", e_mae=f"{sums.mae('e'):.4g}")
            del graphs, targets, prediction, out, loss
        train_s = time.perf_counter() - t0
        run_train_s += train_s
        run_structures += len(train_set)
        history.append(
            {"epoch": epoch, "split": "train", **sums.row(), "lr": lr, "wall_s": train_s}
        )
        message = (
            f"{method} epoch {epoch}/{epochs}: train E {1000 * sums.mae('e'):.1f} meV/atom, "
            f"F {1000 * sums.mae('f'):.1f} meV/Å ({train_s:.1f} s)"
        )
        validate_now = epoch == epochs or bool(validate_every and epoch % validate_every == 0)
        metric: float | None = None
        if val_loader is not None and validate_now:
            t0 = time.perf_counter()
            vsums = _evaluate(
                model, val_loader, dev, loss_fn, progress=progress, desc="val", fused=fused
            )
            history.append(
                {
                    "epoch": epoch,
                    "split": "val",
                    **vsums.row(),
                    "lr": lr,
                    "wall_s": time.perf_counter() - t0,
                }
            )
            metric = vsums.mae("e")
            message += f"; val E {1000 * metric:.1f} meV/atom, F {1000 * vsums.mae('f'):.1f} meV/Å"
        elif val_loader is None:
            metric = sums.mae("e")
        logger.info(message)
        if metric is not None and metric < best["energy_mae"]:
            best = {"epoch": epoch, "energy_mae": metric}
            save_torch_atomic(_model_file(model, method, info, epoch), out_dir / "model_best.pt")
        save_torch_atomic(
            {
                "epoch": epoch,
                "model": model.as_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_state(),
                "settings": settings,
                "history": history,
                "gradients": gradients,
                "best": best,
                "val_before": val_before,
                "train_s": prior_train_s + run_train_s,
                "mlip_transfer": {"method": method, "info": dict(info or {})},
            },
            out_dir / f"checkpoint_epoch{epoch}.pt",
        )
        if keep_checkpoints is not None:
            _prune_checkpoints(out_dir, keep_checkpoints)
        _write_tables(out_dir, history, gradients)

    hist, grads = _write_tables(out_dir, history, gradients)
    save_torch_atomic(_model_file(model, method, info, epochs), out_dir / "model_final.pt")
    if not (out_dir / "model_best.pt").exists():  # every epoch's metric was NaN
        save_torch_atomic(_model_file(model, method, info, epochs), out_dir / "model_best.pt")
    last_val = [row for row in history if row["split"] == "val" and row["epoch"] == epochs]
    val_after = _errors_from_row(last_val[0]) if last_val else {}
    total_train_s = prior_train_s + run_train_s
    summary = {
        "method": method,
        "display_name": METHOD_NAMES[method],
        "atomref_trainable": TRAINABLE_ATOMREF[method],
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "settings": settings,
        "n_train": len(train_set),
        "n_val": len(val_set),
        "skipped_train_frames": skipped_train,
        "skipped_val_frames": skipped_val,
        "n_trainable_parameters": sum(p.numel() for p in trainable),
        "fused_force_stress": fused,
        "val_elements_absent_from_training": unseen,
        "n_optimizer_tensors": sum(len(g["params"]) for g in optimizer.param_groups),
        "val_before": val_before,
        "val_after": val_after,
        "best_epoch": best["epoch"],
        "best_val_energy_mae_mev_per_atom": 1000 * best["energy_mae"] if best["epoch"] else None,
        "resumed_from_epoch": start_epoch - 1 if checkpoint is not None else None,
        "train_time_s": total_train_s,
        "wall_time_s_this_run": time.perf_counter() - wall_start,
        "train_structures_per_s": (len(train_set) * epochs / total_train_s)
        if total_train_s > 0
        else None,
        "train_structures_per_s_this_run": (run_structures / run_train_s)
        if run_train_s > 0
        else None,
        "graphs_converted_this_run": cache.n_converted - converted_before,
        "graph_conversion_s_this_run": cache.conversion_s - conversion_before,
        "model_info": dict(info or {}),
    }
    write_text_atomic(
        out_dir / "train_summary.json", json.dumps(summary, indent=2, default=_json_default) + "\n"
    )
    logger.info(
        "%s: done; best epoch %s, val before %s, after %s",
        method,
        best["epoch"],
        _fmt(val_before),
        _fmt(val_after),
    )
    files = {
        name: out_dir / name
        for name in (
            "history.csv",
            "gradients.csv",
            "model_final.pt",
            "model_best.pt",
            "train_summary.json",
        )
    }
    return TrainResult(
        out_dir=out_dir, model=model, history=hist, gradients=grads, summary=summary, files=files
    )


def _errors_from_row(row: Mapping[str, float]) -> dict[str, float]:
    return {
        "energy_mae_mev_per_atom": 1000 * row["energy_mae"],
        "force_mae_mev_per_a": 1000 * row["force_mae"],
        "stress_mae_gpa": row["stress_mae"],
        "magmom_mae_mub": row["magmom_mae"],
    }


def _fmt(errors: Mapping[str, float]) -> str:
    if not errors:
        return "n/a"
    return (
        f"E {errors['energy_mae_mev_per_atom']:.1f} meV/atom, F {errors['force_mae_mev_per_a']:.1f} meV/Å, "
        f"S {errors['stress_mae_gpa']:.3f} GPa, M {errors['magmom_mae_mub']:.3f} μB"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _model_file(
    model: Any, method: str, info: Mapping[str, Any] | None, epoch: int
) -> dict[str, Any]:
    return {
        "model": model.as_dict(),
        "mlip_transfer": {"method": method, "epoch": epoch, "info": dict(info or {})},
    }


def _prune_checkpoints(out_dir: Path, keep: int) -> None:
    found = sorted(
        (int(m.group(1)), p)
        for p in out_dir.glob("checkpoint_epoch*.pt")
        if (m := _CHECKPOINT.match(p.name))
    )
    for _, path in found[: max(0, len(found) - max(1, keep))]:
        path.unlink()
