"""Label materials with the two pretrained CHGNet teachers, in this process or a worker pool."""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.data import dataset
from mlip_transfer.data.surrogate.candidates import Candidate
from mlip_transfer.data.surrogate.relax import is_finite, kept_steps, perturb, relax
from mlip_transfer.data.surrogate.settings import FUNCTIONALS, TEACHER_MODELS, BuildSettings

logger = logging.getLogger("mlip_transfer.data.surrogate")

# The teachers' ASE calculators by functional, loaded once per process.
_TEACHERS: dict[str, Any] = {}


def init_worker() -> None:
    """Load both teachers once per process, on one torch thread (fastest for single structures)."""
    import torch
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    torch.set_num_threads(1)
    # FrechetCellFilter's tiny 3x3 scipy operations run ~10x slower on a multi-threaded BLAS.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    # Harmless noise: chgnet's volume tensor, and scipy's logm (err ~1e-12) in FrechetCellFilter.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    warnings.filterwarnings("ignore", message="logm result may be inaccurate")
    if _TEACHERS:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # chgnet prints its device
        for functional, name in TEACHER_MODELS.items():
            model = CHGNet.load(model_name=name, verbose=False, use_device="cpu")
            _TEACHERS[functional] = CHGNetCalculator(
                model=model, use_device="cpu", on_isolated_atoms="error"
            )


def _relaxation_status(snapshots: list[dict], converged: bool) -> dict[str, Any]:
    return {
        "converged": converged,
        "n_steps": len(snapshots) - 1,
        "max_force_start": float(np.linalg.norm(snapshots[0]["forces"], axis=1).max()),
        "max_force_final": float(np.linalg.norm(snapshots[-1]["forces"], axis=1).max()),
    }


def _kept_frames(
    candidate: Candidate,
    functional: str,
    species: tuple[str, ...],
    snapshots: list[dict],
    *,
    converged: bool,
    settings: BuildSettings,
) -> list[dataset.Frame]:
    """The kept snapshots of one relaxation as canonical frames."""
    n_steps = len(snapshots) - 1
    # The GGA teacher mimics MP2020-corrected energies: its uncorrected twin removes the entry's.
    correction = candidate.correction_per_atom * len(species) if functional == "gga" else 0.0
    frames = []
    for step in kept_steps(len(snapshots), settings.frames_per_trajectory):
        snap = snapshots[step]
        frames.append(dataset.Frame(
            frame_id=f"{candidate.material_id}-{functional}-{step}",
            material_id=candidate.material_id,
            functional=functional,
            species=species,
            lattice=snap["lattice"],
            frac_coords=snap["frac_coords"],
            energy=snap["energy"],
            energy_uncorrected=snap["energy"] - correction,
            forces=snap["forces"],
            stress=snap["stress"],
            magmoms=snap["magmoms"],
            source=SURROGATE_DEFAULT.name,
            extra={"step": step, "final": step == n_steps, "converged": converged},
        ))
    return frames


def build_material(candidate: Candidate, settings: BuildSettings) -> dict[str, Any]:
    """Perturb one material, relax it with each teacher and return its frames or its failure."""
    init_worker()
    start = perturb(candidate.structure, seed=settings.seed, material_id=candidate.material_id,
                    strain=settings.strain, rattle=settings.rattle)
    species = tuple(site.specie.symbol for site in start)
    frames: list[dataset.Frame] = []
    status: dict[str, dict[str, Any]] = {}
    for functional in FUNCTIONALS:
        try:
            snapshots, converged = relax(start, _TEACHERS[functional], settings)
        except Exception as exc:  # a teacher failing on one structure must not stop the build
            return {"material_id": candidate.material_id, "frames": [], "status": status,
                    "error": f"{functional}: {type(exc).__name__}: {exc}"}
        if not all(is_finite(snapshot) for snapshot in snapshots):
            return {"material_id": candidate.material_id, "frames": [], "status": status,
                    "error": f"{functional}: non-finite energy, forces or stress"}
        status[functional] = _relaxation_status(snapshots, converged)
        frames += _kept_frames(candidate, functional, species, snapshots, converged=converged,
                               settings=settings)
    return {"material_id": candidate.material_id, "frames": frames, "status": status, "error": None}


def _build_task(task: tuple[Candidate, BuildSettings]) -> dict[str, Any]:
    return build_material(*task)


def _build_here(ordered: Sequence[Candidate], settings: BuildSettings, record) -> None:
    """Build in this process, restoring its torch and BLAS thread counts afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    try:
        with threadpool_limits():  # restores this process's BLAS threads afterwards
            for candidate in ordered:
                record(build_material(candidate, settings))
    finally:
        torch.set_num_threads(threads)


def _build_in_pool(ordered: Sequence[Candidate], settings: BuildSettings, record) -> None:
    # spawn: a fresh interpreter per worker, safe with torch's threads (fork is not).
    context = multiprocessing.get_context("spawn")
    with context.Pool(settings.processes, initializer=init_worker) as pool:
        tasks = [(candidate, settings) for candidate in ordered]
        for result in pool.imap_unordered(_build_task, tasks, chunksize=1):
            record(result)


def build_all(candidates: Sequence[Candidate], settings: BuildSettings, *,
              progress: bool) -> list[dict[str, Any]]:
    """:func:`build_material` of every candidate, in ``settings.processes`` processes.

    Returns:
        The results in completion order.
    """
    # Largest structures first so that no long job starts last.
    ordered = sorted(candidates, key=lambda c: (-len(c.structure), c.material_id))
    bar = tqdm(total=len(ordered), desc="relaxing", unit="material", disable=not progress)
    results: list[dict[str, Any]] = []
    start = time.perf_counter()
    log_every = max(1, len(ordered) // 10)

    def record(result: dict[str, Any]) -> None:
        results.append(result)
        bar.update()
        if result["error"]:
            logger.warning("relaxation failed for %s (%s)", result["material_id"], result["error"])
        if len(results) % log_every == 0 or len(results) == len(ordered):
            logger.info("%d/%d materials relaxed (%.0f s)", len(results), len(ordered),
                        time.perf_counter() - start)

    # Log lines go above the bar instead of through it.
    with logging_redirect_tqdm() if progress else contextlib.nullcontext():
        build = _build_here if settings.processes == 1 else _build_in_pool
        build(ordered, settings, record)
    bar.close()
    return results
