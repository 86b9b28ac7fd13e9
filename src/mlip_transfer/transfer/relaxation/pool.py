"""Many relaxations with one CHGNet model: one calculator per worker process, results in order.

Workers are spawned processes (safe with torch, unlike fork), each loading the model once and
running on one torch thread and one BLAS thread; ``processes=1`` relaxes in this process, also
single-threaded, so the number of processes changes the speed, never the numbers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure
from tqdm import tqdm

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer.models import check_model, load_chgnet
from mlip_transfer.transfer.relaxation.fire import relax_one
from mlip_transfer.transfer.relaxation.outcomes import (
    FAILURE_REASONS,
    RESULT_COLUMNS,
    RelaxSettings,
    error_row,
    failure_counts,
)

logger = logging.getLogger("mlip_transfer.transfer.relaxation")

# (material id, start structure, model file or name, torch device, settings)
Task = tuple[str, Structure, str, str, RelaxSettings]

# --------------------------------------------------------------------------- worker state

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


def _relax_task(task: Task) -> dict[str, Any]:
    material_id, structure, model, device, settings = task
    try:
        calculator = _calculator(model, device)
    except Exception as exc:  # noqa: BLE001 - reported per structure like any other failure
        return error_row(material_id, structure, f"model load: {type(exc).__name__}: {exc}",
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
        ``converged``, ``failed``, ``failure`` (see the package docstring), ``message``,
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

    _run_tasks(tasks, processes=processes, model=model, device=device, record=record)
    bar.close()
    table = _result_table(rows[mid] for mid in ids)
    counts = failure_counts(table)
    logger.info("relaxed %d structures with %s in %.0f s: %d failed %s, %d not converged",
                len(table), model, time.perf_counter() - began, int(table["failed"].sum()),
                {k: v for k, v in counts.items() if k in FAILURE_REASONS and v},
                counts.get("not_converged", 0))
    return table


def _run_tasks(tasks: list[Task], *, processes: int, model: str, device: str,
               record: Callable[[dict[str, Any]], None]) -> None:
    """Relax every task, in this process or in spawned workers, and ``record`` each row."""
    if not tasks:
        return
    if processes == 1 or len(tasks) == 1:
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
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(processes, len(tasks)), initializer=_init_worker,
                      initargs=(model, device)) as pool:
        for row in pool.imap_unordered(_relax_task, tasks, chunksize=1):
            record(row)


def _result_table(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a table of :data:`RESULT_COLUMNS`, missing text as ``None`` (not NaN)."""
    table = pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))
    for column in ("failure", "message", "structure_json"):
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table
