"""Label materials with the build's teachers, in this process or a worker pool."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.data import dataset
from mlip_transfer.data.surrogate.candidates import Candidate
from mlip_transfer.data.surrogate.relax import is_finite, kept_steps, perturb, relax
from mlip_transfer.data.surrogate.settings import BuildSettings
from mlip_transfer.data.surrogate.teacher_models import Teacher, limit_threads, teacher

logger = logging.getLogger("mlip_transfer.data.surrogate")

# The teachers' ASE calculators by name, loaded once per process.
_CALCULATORS: dict[str, Any] = {}


def init_worker(teachers: Sequence[str]) -> None:
    """Load the teachers once per process, on one torch thread (fastest for single structures)."""
    limit_threads()
    for name in teachers:
        if name not in _CALCULATORS:
            _CALCULATORS[name] = teacher(name).calculator()


def _relaxation_status(snapshots: list[dict], converged: bool) -> dict[str, Any]:
    return {
        "converged": converged,
        "n_steps": len(snapshots) - 1,
        "max_force_start": float(np.linalg.norm(snapshots[0]["forces"], axis=1).max()),
        "max_force_final": float(np.linalg.norm(snapshots[-1]["forces"], axis=1).max()),
    }


def _kept_frames(
    candidate: Candidate,
    labeller: Teacher,
    species: tuple[str, ...],
    snapshots: list[dict],
    *,
    converged: bool,
    settings: BuildSettings,
) -> tuple[list[dataset.Frame], list[dict[str, Any]]]:
    """The kept snapshots of one relaxation as canonical frames, and those dropped for a force
    above ``settings.max_force`` (a teacher's spike, not a label)."""
    n_steps = len(snapshots) - 1
    # The GGA teacher mimics MP2020-corrected energies: its uncorrected twin removes the entry's.
    functional = labeller.functional
    correction = candidate.correction_per_atom * len(species) if functional == "gga" else 0.0
    frames, dropped = [], []
    for step in kept_steps(len(snapshots), settings.frames_per_trajectory):
        snap = snapshots[step]
        frame_id = f"{candidate.material_id}-{labeller.name}-{step}"
        max_force = float(np.linalg.norm(snap["forces"], axis=1).max())
        if max_force > settings.max_force:
            dropped.append({"frame_id": frame_id, "teacher": labeller.name,
                            "reason": f"force spike: {max_force:.1f} eV/Å > max_force "
                                      f"{settings.max_force:g}"})
            continue
        frames.append(dataset.Frame(
            frame_id=frame_id,
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
            extra={"step": step, "final": step == n_steps, "converged": converged,
                   "teacher": labeller.name},
        ))
    return frames, dropped


def build_material(candidate: Candidate, settings: BuildSettings) -> dict[str, Any]:
    """Perturb one material, relax it with each teacher from the same start, and return its
    frames, the frames dropped for a force spike, or its failure.

    A material counts only when every teacher relaxed it, so all teachers label the same
    materials and their labels can be compared one to one.
    """
    init_worker(settings.teachers)
    start = perturb(candidate.structure, seed=settings.seed, material_id=candidate.material_id,
                    strain=settings.strain, rattle=settings.rattle)
    species = tuple(site.specie.symbol for site in start)
    result: dict[str, Any] = {"material_id": candidate.material_id, "frames": [], "status": {},
                              "dropped_frames": [], "error": None}
    for name in settings.teachers:
        labeller = teacher(name)
        try:
            snapshots, converged = relax(start, _CALCULATORS[name], settings,
                                         magmoms=labeller.has_magmoms)
        except Exception as exc:  # a teacher failing on one structure must not stop the build
            return {**result, "frames": [], "error": f"{name}: {type(exc).__name__}: {exc}"}
        if not all(is_finite(snapshot) for snapshot in snapshots):
            return {**result, "frames": [], "error": f"{name}: non-finite energy, forces or stress"}
        result["status"][name] = _relaxation_status(snapshots, converged)
        frames, dropped = _kept_frames(candidate, labeller, species, snapshots,
                                       converged=converged, settings=settings)
        result["frames"] += frames
        result["dropped_frames"] += dropped
    return result


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
    with context.Pool(settings.processes, initializer=init_worker,
                      initargs=(settings.teachers,)) as pool:
        tasks = [(candidate, settings) for candidate in ordered]
        for result in pool.imap_unordered(_build_task, tasks, chunksize=1):
            record(result)


def build_all(candidates: Sequence[Candidate], settings: BuildSettings, *,
              progress: bool, on_result: Callable[[dict[str, Any]], None] | None = None,
              ) -> list[dict[str, Any]]:
    """:func:`build_material` of every candidate, in ``settings.processes`` processes.

    Args:
        candidates, settings: What to relax, and how.
        progress: Show a tqdm bar.
        on_result: Called with each result as it arrives (the build's progress file).

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
        if on_result is not None:
            on_result(result)
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
