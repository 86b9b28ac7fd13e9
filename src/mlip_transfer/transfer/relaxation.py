"""Relax structures with a CHGNet model and count failed relaxations instead of crashing.

Each structure is relaxed with ASE's FIRE on a :class:`~chgnet.model.dynamics.CHGNetCalculator`,
cell included (``FrechetCellFilter``) unless ``relax_cell=False``, until the largest force (cell
forces included) is below ``fmax`` or ``max_steps`` steps have run.

Outcomes, one row per structure (column ``failure``):

================  ======================================================================  ========
``None``          converged                                                                kept
``not_converged`` still above ``fmax`` after ``max_steps`` steps; energy of the last step  kept
``isolated_atom`` an atom is more than 6 Å from its nearest neighbour (periodic images     failed
                  counted), the paper's criterion of a failed relaxation; checked on the
                  start and the final structure, and whenever CHGNet refuses a structure
                  with an isolated atom in the middle of a relaxation
``non_finite``    NaN or infinite energy, forces or stress at some step                    failed
``error``         any other exception (its type and text in ``message``)                  failed
================  ======================================================================  ========

``failed`` is true for the last three: their energy is not usable (``energy_per_atom`` is NaN).

Workers are spawned processes (safe with torch, unlike fork), each loading the model once and
running on one torch thread and one BLAS thread; ``processes=1`` relaxes in this process, also
single-threaded, so the number of processes changes the speed, never the numbers. Measured on
the 2-core machine (CHGNet v0.3.0 from the default dataset's r2SCAN structures, median 6-7 atoms,
median 22-24 FIRE steps, fmax 0.05): ~0.06 s per step and ~1.4 s per structure on one process;
two processes ~0.09 s per step each, 16 structures in 21 s wall including ~4 s of worker start.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from tqdm import tqdm

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer.models import check_model, load_chgnet

logger = logging.getLogger("mlip_transfer.transfer.relaxation")

# The paper's criterion of a failed relaxation, and CHGNet's atom-graph cutoff.
ISOLATION_CUTOFF = 6.0  # Å
# Names CHGNet.load(model_name=...) accepts in chgnet 0.4.
FAILURE_REASONS = ("isolated_atom", "non_finite", "error")
RESULT_COLUMNS = (
    "material_id",
    "formula",
    "n_atoms",
    "energy_per_atom",
    "n_steps",
    "converged",
    "failed",
    "failure",
    "message",
    "max_force",
    "max_nn_distance",
    "wall_s",
    "structure_json",
)


@dataclass(frozen=True, kw_only=True)
class RelaxSettings:
    """What one relaxation needs besides the structure and the calculator."""

    fmax: float = 0.05
    max_steps: int = 300
    relax_cell: bool = True

    def __post_init__(self) -> None:
        if not self.fmax > 0:
            raise ConfigError(f"fmax must be positive, got {self.fmax!r}")
        if self.max_steps < 0:
            raise ConfigError(f"max_steps must not be negative, got {self.max_steps!r}")


# --------------------------------------------------------------------------- geometry


def nearest_neighbor_distances(
    structure: Structure, cutoff: float = ISOLATION_CUTOFF
) -> np.ndarray:
    """Distance of every site to its nearest neighbour under periodic boundary conditions, Å.

    Periodic images of the site itself count as neighbours (as in CHGNet's graph). Sites with
    no neighbour within ``cutoff`` get ``inf``.
    """
    distances = np.full(len(structure), np.inf)
    centers, _, _, dists = structure.get_neighbor_list(r=cutoff, exclude_self=True)
    if len(centers):
        np.minimum.at(distances, centers.astype(int), dists)
    return distances


def isolated_sites(structure: Structure, cutoff: float = ISOLATION_CUTOFF) -> list[int]:
    """Indices of the sites more than ``cutoff`` Å from their nearest neighbour."""
    distances = nearest_neighbor_distances(structure, cutoff)
    return [int(i) for i in np.flatnonzero(~np.isfinite(distances))]


def _max_nn(structure: Structure) -> float:
    # Beyond the cutoff the exact distance is of no interest: report inf.
    return float(np.max(nearest_neighbor_distances(structure)))


def _isolation_message(structure: Structure, sites: list[int]) -> str:
    first = sites[0]
    return (
        f"{len(sites)} atom(s) more than {ISOLATION_CUTOFF:g} Å from any neighbour, "
        f"e.g. site {first} ({structure[first].specie.symbol})"
    )


# --------------------------------------------------------------------------- models


_CALCULATORS: dict[tuple[str, str], Any] = {}
_LOAD_ERRORS: dict[tuple[str, str], str] = {}


def _calculator(model_path_or_name: str, device: str) -> Any:
    """The worker's calculator for a model, loaded once per process (a failure is remembered)."""
    key = (str(model_path_or_name), device)
    if key in _LOAD_ERRORS:
        raise RuntimeError(_LOAD_ERRORS[key])
    if key not in _CALCULATORS:
        from chgnet.model.dynamics import CHGNetCalculator

        try:
            model = load_chgnet(model_path_or_name, device=device)
        except Exception as exc:
            _LOAD_ERRORS[key] = f"{type(exc).__name__}: {exc}"
            raise
        with contextlib.redirect_stdout(io.StringIO()):
            # "error": CHGNet refuses a structure with an isolated atom; the relaxation catches
            # it and records an isolated_atom failure.
            _CALCULATORS[key] = CHGNetCalculator(
                model=model, use_device=device, on_isolated_atoms="error"
            )
    return _CALCULATORS[key]


def _init_worker(model_path_or_name: str | None = None, device: str = "cpu") -> None:
    """One torch thread and one BLAS thread per process, quiet warnings, the model loaded.

    The BLAS limit matters as much as torch's: ``FrechetCellFilter`` calls scipy's ``expm_frechet``
    and ``logm`` on 3x3 matrices several times per step, and a multithreaded OpenBLAS on a busy
    machine (two workers on two cores, or anything running beside) spends milliseconds per 3x3
    solve in thread hand-offs: measured 15 s instead of 1.2 s for one 23-step relaxation.
    """
    import scipy.linalg  # noqa: F401 - load scipy's BLAS now so that the limit reaches it
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    # Harmless noise: chgnet's volume tensor, and scipy's logm (err ~1e-12) in FrechetCellFilter.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    warnings.filterwarnings("ignore", message="logm result may be inaccurate")
    if model_path_or_name is not None:
        # A pool initializer must not raise (the pool would respawn workers forever): a load
        # failure is remembered and reported on every structure instead.
        with contextlib.suppress(Exception):
            _calculator(model_path_or_name, device)


# --------------------------------------------------------------------------- one structure


class _NonFinite(RuntimeError):
    pass


def relax_one(
    material_id: str, structure: Structure, calculator: Any, settings: RelaxSettings
) -> dict[str, Any]:
    """Relax one structure with an ASE calculator and classify the outcome (never raises).

    Returns a row with the keys of :data:`RESULT_COLUMNS`.
    """
    began = time.perf_counter()
    try:
        return _relax_one(material_id, structure, calculator, settings)
    except Exception as exc:  # noqa: BLE001 - e.g. a structure ASE cannot represent
        return _error_row(material_id, structure, f"{type(exc).__name__}: {exc}",
                          wall_s=time.perf_counter() - began)


def _blank_row(material_id: str, structure: Structure) -> dict[str, Any]:
    """A result row before anything is known: not relaxed, not failed."""
    return {
        **{col: None for col in RESULT_COLUMNS},
        "material_id": str(material_id),
        "formula": structure.composition.reduced_formula,
        "n_atoms": len(structure),
        "energy_per_atom": math.nan,
        "n_steps": 0,
        "converged": False,
        "failed": False,
        "max_force": math.nan,
        "max_nn_distance": math.nan,
    }


def _error_row(material_id: str, structure: Structure, message: str, *,
               wall_s: float) -> dict[str, Any]:
    return {**_blank_row(material_id, structure), "failed": True, "failure": "error",
            "message": message, "wall_s": wall_s}


def _relax_one(
    material_id: str, structure: Structure, calculator: Any, settings: RelaxSettings
) -> dict[str, Any]:
    began = time.perf_counter()
    row = _blank_row(material_id, structure)

    def fail(reason: str, message: str, current: Structure | None) -> dict[str, Any]:
        row.update(failed=True, failure=reason, message=message, energy_per_atom=math.nan)
        if current is not None:
            row["max_nn_distance"] = _max_nn(current)
            row["structure_json"] = json.dumps(current.as_dict())
        row["wall_s"] = time.perf_counter() - began
        return row

    sites = isolated_sites(structure)
    if sites:
        return fail("isolated_atom", "start structure: " + _isolation_message(structure, sites),
                    structure)

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calculator

    def current_structure() -> Structure:
        return Structure(Lattice(np.array(atoms.get_cell()[:])), list(structure.species),
                         atoms.get_positions(), coords_are_cartesian=True)

    def check_finite() -> None:
        values = [atoms.get_potential_energy(), atoms.get_forces()]
        if settings.relax_cell:
            values.append(atoms.get_stress())
        if not all(np.all(np.isfinite(value)) for value in values):
            raise _NonFinite("NaN or infinite energy, forces or stress")

    target = FrechetCellFilter(atoms) if settings.relax_cell else atoms
    optimizer = FIRE(target, logfile=None)
    optimizer.attach(check_finite, interval=1)
    try:
        converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.max_steps))
        check_finite()  # the last step when max_steps is 0
    except _NonFinite as exc:
        row["n_steps"] = int(optimizer.nsteps)
        return fail("non_finite", f"step {optimizer.nsteps}: {exc}", current_structure())
    except Exception as exc:  # a model failing on one structure must not stop the others
        row["n_steps"] = int(optimizer.nsteps)
        if not (np.all(np.isfinite(atoms.get_positions()))
                and np.all(np.isfinite(np.array(atoms.get_cell()[:])))):
            return fail("non_finite", f"step {optimizer.nsteps}: positions or cell became "
                        f"non-finite ({type(exc).__name__}: {exc})", None)
        try:
            current = current_structure()
            sites = isolated_sites(current)
        except Exception:  # noqa: BLE001 - the geometry itself may be broken (NaN cell)
            current, sites = None, []
        if sites:
            return fail("isolated_atom", f"step {optimizer.nsteps}: "
                        + _isolation_message(current, sites), current)
        return fail("error", f"step {optimizer.nsteps}: {type(exc).__name__}: {exc}", current)

    final = current_structure()
    row["n_steps"] = int(optimizer.nsteps)
    row["converged"] = converged
    row["max_force"] = float(np.sqrt((target.get_forces() ** 2).sum(axis=1).max()))
    sites = isolated_sites(final)
    if sites:
        return fail("isolated_atom", "final structure: " + _isolation_message(final, sites), final)
    row["energy_per_atom"] = float(atoms.get_potential_energy()) / len(atoms)
    row["max_nn_distance"] = _max_nn(final)
    row["structure_json"] = json.dumps(final.as_dict())
    if not converged:
        row["failure"] = "not_converged"
        row["message"] = (
            f"largest force {row['max_force']:.3g} eV/Å > fmax {settings.fmax:g} "
            f"after {settings.max_steps} steps"
        )
    row["wall_s"] = time.perf_counter() - began
    return row


def _relax_task(task: tuple[str, Structure, str, str, RelaxSettings]) -> dict[str, Any]:
    material_id, structure, model, device, settings = task
    try:
        calculator = _calculator(model, device)
    except Exception as exc:  # noqa: BLE001 - reported per structure like any other failure
        return _error_row(material_id, structure, f"model load: {type(exc).__name__}: {exc}",
                          wall_s=0.0)
    return relax_one(material_id, structure, calculator, settings)


# --------------------------------------------------------------------------- many structures


def relax_structures(
    structures: Mapping[str, Structure],
    *,
    model_path_or_name: str | os.PathLike,
    fmax: float = 0.05,
    max_steps: int = 300,
    relax_cell: bool = True,
    processes: int = 2,
    progress: bool = True,
    device: str = "cpu",
) -> pd.DataFrame:
    """Relax every structure with one CHGNet model; failures are recorded, not raised.

    Args:
        structures: Material id -> starting structure (ordered, one element per site).
        model_path_or_name: A saved model file (``CHGNet.from_file``) or a CHGNet model name
            (``"0.3.0"``, ``"r2scan"``); see :func:`mlip_transfer.transfer.models.load_chgnet`.
        fmax: FIRE convergence criterion, eV/Å (cell forces included when ``relax_cell``).
        max_steps: Step limit; relaxations still above ``fmax`` are kept, flagged
            ``not_converged``.
        relax_cell: Relax the cell with ``FrechetCellFilter``, not only the positions.
        processes: Spawned worker processes, one torch thread each (1: in this process).
        progress: Show a tqdm progress bar.
        device: Torch device of the model (``"cpu"``; ``"cuda"`` with ``processes=1``).

    With ``processes > 1`` the workers are spawned, which re-imports the calling script: call
    this from a script only under ``if __name__ == "__main__":`` (pytest, notebooks and
    Snakemake ``script:`` rules are fine).

    Returns:
        One row per id, in the order of ``structures``, with the columns of
        :data:`RESULT_COLUMNS`: ``energy_per_atom`` (eV/atom, NaN when ``failed``), ``n_steps``,
        ``converged``, ``failed``, ``failure`` (see the module docstring), ``message``,
        ``max_force`` (eV/Å, final), ``max_nn_distance`` (largest nearest-neighbour distance of
        the final structure, Å), ``wall_s`` and ``structure_json`` (``Structure.as_dict()`` of
        the final structure as JSON). Everything but ``wall_s`` is independent of
        ``processes``.
    """
    settings = RelaxSettings(fmax=fmax, max_steps=max_steps, relax_cell=relax_cell)
    if processes < 1:
        raise ConfigError(f"processes must be at least 1, got {processes!r}")
    ids = [str(mid) for mid in structures]
    if len(set(ids)) != len(ids):
        raise ConfigError("material ids are not unique as strings")
    model = check_model(model_path_or_name)
    # Largest structures first so that no long job starts last.
    order = sorted(structures.items(), key=lambda item: (-len(item[1]), str(item[0])))
    tasks = [(str(mid), structure, model, device, settings) for mid, structure in order]
    rows: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(tasks), desc=f"relaxing ({Path(model).name})", unit="structure",
               disable=not progress)
    began = time.perf_counter()

    def record(row: dict[str, Any]) -> None:
        rows[row["material_id"]] = row
        bar.update()
        if row["failed"]:
            logger.warning("relaxation of %s failed: %s (%s)", row["material_id"],
                           row["failure"], row["message"])

    if not tasks:
        pass
    elif processes == 1 or len(tasks) == 1:
        import torch
        from threadpoolctl import threadpool_limits

        threads = torch.get_num_threads()
        try:
            with threadpool_limits():  # restores this process's BLAS threads afterwards
                _init_worker()
                for task in tasks:
                    record(_relax_task(task))
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(processes, len(tasks)), initializer=_init_worker,
                          initargs=(model, device)) as pool:
            for row in pool.imap_unordered(_relax_task, tasks, chunksize=1):
                record(row)
    bar.close()
    table = pd.DataFrame([rows[mid] for mid in ids], columns=list(RESULT_COLUMNS))
    for column in ("failure", "message", "structure_json"):
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    counts = failure_counts(table)
    logger.info("relaxed %d structures with %s in %.0f s: %d failed %s, %d not converged",
                len(table), model, time.perf_counter() - began, int(table["failed"].sum()),
                {k: v for k, v in counts.items() if k in FAILURE_REASONS and v},
                counts.get("not_converged", 0))
    return table


def failure_counts(relaxed: pd.DataFrame) -> dict[str, int]:
    """How many relaxations ended in each failure reason, ``not_converged`` included.

    Every reason of :data:`FAILURE_REASONS` and ``not_converged`` appears, with 0 if none.
    """
    counts = {reason: 0 for reason in (*FAILURE_REASONS, "not_converged")}
    for reason in relaxed["failure"].dropna():
        counts[str(reason)] = counts.get(str(reason), 0) + 1
    return counts


def final_structures(relaxed: pd.DataFrame) -> dict[str, Structure]:
    """Material id -> final structure of each row that has one (failed rows may not)."""
    return {
        str(row.material_id): Structure.from_dict(json.loads(row.structure_json))
        for row in relaxed.itertuples(index=False)
        if isinstance(row.structure_json, str)
    }
