"""CHGNet crystal graphs of frames, converted once, and the labels and batches built on them.

* graphs: ``model.graph_converter`` converts each frame ONCE (:class:`GraphCache`, optionally on
  disk); labels are pre-built tensors in chgnet's training units (energy per atom, forces eV/Å,
  stress GPa as the model predicts it, |magmom| μB). Batches are collated with
  ``chgnet.data.dataset.collate_graphs``. Cached graphs are never mutated: each batch uses
  shallow copies whose coordinates are detached leaves, so no gradient piles up in the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from mlip_transfer.core.files import save_torch_atomic
from mlip_transfer.data.dataset import Frame

logger = logging.getLogger("mlip_transfer.transfer.graphs")


def short_sha(text: str, n: int = 16) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:n]


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
        self.settings_key = short_sha(json.dumps(self.settings, sort_keys=True), 12)
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
        name = f"shard-{short_sha(chr(10).join(sorted(graphs) + sorted(failed)))}.pt"
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


def make_loader(
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


def to_device(
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

