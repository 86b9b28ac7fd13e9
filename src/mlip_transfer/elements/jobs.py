"""One function per workflow job of the Si -> Ge stage; the Snakemake scripts only call these.

Each takes plain paths and settings, so a user's own script (or a test) runs the same steps.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from mlip_transfer.core.allocator import keep_freed_memory
from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import (
    atomic_path,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)
from mlip_transfer.core.provenance import STILLINGER_WEBER, DataSource
from mlip_transfer.data.dataset import write_frames
from mlip_transfer.elements import experiments as X
from mlip_transfer.elements.data import group_by_temperature, load_frames, write_dataset
from mlip_transfer.elements.stillinger_weber import (
    diamond_cell,
    ground_state_check,
    sw_calculator,
)
from mlip_transfer.elements.structure import compare_structures

# torch and torch_geometric (several seconds to import) are imported inside the jobs that need
# them, so the sampling and analysis jobs start quickly.

logger = logging.getLogger("mlip_transfer.elements.jobs")


def _json(path: str | Path, content: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, content, sort_keys=True, default=str)


def _torch_threads(threads: int | None) -> None:
    """torch's CPU threads, and an allocator that keeps the memory each update frees."""
    keep_freed_memory()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _log_stable(records: Sequence[Mapping[str, Any]]) -> None:
    logger.info("%d of %d runs stable", sum(r["stable"] for r in records), len(records))


def sample_set(
    *, out: str | Path, element: str, set_name: str, sizes: Mapping[float, int],
    sampling: Mapping[str, Any], seed: int,
) -> int:
    """Sample one set (``sizes``: frames per temperature) into a frames file; returns the count."""
    # Here, not at the top: sampling loads ase.constraints and ase.md (seconds), which the
    # training and table jobs of this module never use.
    from mlip_transfer.elements.sampling import SamplingSettings, sample_frames

    settings = SamplingSettings(**sampling)
    frames = [
        frame
        for temperature, n_frames in sorted(sizes.items())
        for frame in sample_frames(
            element=element, temperature=float(temperature), n_frames=int(n_frames),
            set_name=set_name, settings=settings, seed=seed,
        )
    ]
    with atomic_path(out) as tmp:
        count = write_frames(tmp, frames)
    logger.info("%d frames written to %s", count, out)
    return count


def assemble_dataset(
    *, parts: Sequence[str | Path], folder: str | Path, element: str, sampling: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge sampled parts into the element's canonical dataset with provenance and summary."""
    frames = [frame for part in parts for frame in load_frames(part)]
    check = ground_state_check(element, repeats=sampling["cell_repeats"])
    if not check["ok"]:
        raise RuntimeError(f"Stillinger-Weber ground state of {element} is not -2 eps: {check}")
    index = write_dataset(folder, frames, element=element, ground_state_energy=check["energy_per_atom"])
    counts = (
        index.groupby(["set", "temperature"]).size().rename("frames").reset_index().to_dict("records")
    )
    summary = {"element": element, "frames": len(frames), "sets": counts, "ground_state": check}
    STILLINGER_WEBER.write(folder, element=element, sampling=dict(sampling), ground_state=check)
    _json(Path(folder) / "summary.json", summary)
    logger.info("%s", summary)
    return summary


def _train(
    *, method: str, frames: Sequence[Any], out_dir: Path, label: str,
    model_settings: Mapping[str, Any], training: Mapping[str, Any], seed: int, device: str,
    threads: int | None, source_model: str | Path | None = None, val_frames: Sequence[Any] = (),
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Start a model (``method``) and train it by force matching: (model, start info, summary)."""
    from mlip_transfer.elements.dimenet import DimeNetSettings
    from mlip_transfer.elements.training import TrainSettings, start_model, train_force_matching

    _torch_threads(threads)
    model, info = start_model(
        method, settings=DimeNetSettings(**model_settings), seed=seed, source_model=source_model
    )
    summary = train_force_matching(
        model=model, frames=frames, out_dir=out_dir, label=label,
        settings=TrainSettings(**training, seed=seed, device=device), val_frames=val_frames,
    )
    return model, info, summary


def _test(
    model: Any, frames_by_t: Mapping[float, list], *, label: Mapping[str, Any], out_dir: Path,
    summary: dict[str, Any], **extra: Any,
) -> None:
    """Test errors per temperature into ``metrics.csv``; ``summary`` (with them) into JSON."""
    from mlip_transfer.elements.training import evaluate

    rows = []
    for temperature, frames in frames_by_t.items():
        errors = evaluate(model, frames)
        rows.append({**label, "temperature": temperature, **errors})
    metrics = pd.DataFrame(rows)
    write_csv_atomic(out_dir / "metrics.csv", metrics, index=False)
    summary.update(extra, test=metrics.to_dict("records"))
    _json(out_dir / "summary.json", summary)


def pretrain(
    *, data: str | Path, out_dir: str | Path, model_settings: Mapping[str, Any],
    training: Mapping[str, Any], seed: int, device: str, test_temperature: float,
    threads: int | None = None,
) -> dict[str, Any]:
    """Pre-train the source (Si) model on its whole pool; test it on its test set.

    ``threads``: torch's CPU threads (default: torch's own choice).
    """
    from mlip_transfer.elements.dimenet import save_model

    out_dir = Path(out_dir)
    pool = load_frames(data, sets=["pool"])
    model, info, summary = _train(
        method="scratch", frames=pool, out_dir=out_dir, label="pretrain Si",
        model_settings=model_settings, training=training, seed=seed, device=device,
        threads=threads,
    )
    save_model(model, out_dir / "model.pt", **info, element="Si", train_frames=len(pool))
    test = group_by_temperature(load_frames(data, sets=["test"], temperatures=[test_temperature]))
    label = {"method": "pretrained", "size": len(pool), "seed": seed}
    _test(model, test, label=label, out_dir=out_dir, summary=summary)
    logger.info("pretrained: %s", {k: summary[k] for k in ("frames", "steps", "wall_s", "test")})
    return summary


def train_target(
    *, data: str | Path, out_dir: str | Path, method: str, size: int, seed: int,
    model_settings: Mapping[str, Any], training: Mapping[str, Any], device: str,
    test_temperatures: Sequence[float], source_model: str | Path | None = None,
    threads: int | None = None, validation_size: int = 0,
) -> dict[str, Any]:
    """Train one Ge model (scratch or transfer) on a seeded subset of the pool and test it.

    ``validation_size`` frames of the pool (the same for every model, never training frames;
    :func:`~mlip_transfer.elements.convergence.validation_split`) decide when it stops.
    ``threads``: torch's CPU threads (default: torch's own choice).
    """
    from mlip_transfer.elements.convergence import validation_split
    from mlip_transfer.elements.dimenet import save_model

    out_dir = Path(out_dir)
    pool = load_frames(data, sets=["pool"])
    try:
        train_ids, val_ids = validation_split(
            len(pool), size=size, validation_size=validation_size, seed=seed
        )
    except DataError as error:
        raise DataError(str(error), file=str(data)) from None
    chosen, held = [pool[k] for k in train_ids], [pool[k] for k in val_ids]
    model, info, summary = _train(
        method=method, frames=chosen, out_dir=out_dir, label=f"{method} n={size} seed={seed}",
        model_settings=model_settings, training=training, seed=seed, device=device,
        threads=threads, source_model=source_model, val_frames=held,
    )
    save_model(model, out_dir / "model.pt", **info, element="Ge", size=size,
               train_frame_ids=[f.frame_id for f in chosen],
               validation_frame_ids=[f.frame_id for f in held])
    test = group_by_temperature(load_frames(data, sets=["test"], temperatures=test_temperatures))
    missing = sorted(set(map(float, test_temperatures)) - set(test))
    if missing:
        raise DataError(f"no test frames at {missing} K", file=str(data), field="extra.temperature")
    label = {"method": method, "size": size, "seed": seed, "steps": summary["steps"],
             "best_step": summary["best_step"], "stopped_early": summary["stopped_early"]}
    _test(model, test, label=label, out_dir=out_dir, summary=summary, start=info)
    logger.info("trained in %.1f s; test errors: %s", summary["wall_s"], summary["test"])
    return summary


def _start_structures(data: str | Path, temperature: float, element: str, repeats: int) -> list[Atoms]:
    """Reference frames at the MD temperature (any set), else the perfect crystal."""
    frames = load_frames(data, temperatures=[temperature])
    if not frames:
        return [diamond_cell(element, repeats=repeats)]
    return [
        Atoms(f.species, scaled_positions=f.frac_coords, cell=f.lattice, pbc=True) for f in frames
    ]


def _run_many(
    *, calculator_factory: Any, starts: list[Atoms], run_ids: Sequence[int], md: Any,
    label: str, seed: int,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    from mlip_transfer.elements.md import run_nvt

    records, frames = [], []
    for run in run_ids:
        started = time.perf_counter()
        result = run_nvt(
            atoms=starts[run % len(starts)], calculator=calculator_factory(), settings=md,
            seed=seed * 100_003 + run, label=f"{label} run {run}", progress=True,
        )
        logger.info(
            "%s run %d: %s%s after %d steps (max T %.0f K)", label, run,
            "stable" if result["stable"] else "UNSTABLE ",
            result["reason"], result["steps"], result["max_temperature"],
        )
        if result["stable"]:
            frames.append(result["frames"])
        records.append({k: v for k, v in result.items() if k != "frames"}
                       | {"run": run, "wall_s": time.perf_counter() - started})
    return records, frames


def _save_frames(path: str | Path, frames: list[np.ndarray], starts: list[Atoms]) -> None:
    n_atoms = len(starts[0])
    stacked = np.concatenate(frames) if frames else np.zeros((0, n_atoms, 3), np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle: no ".npz" appended
        np.savez_compressed(handle, positions=stacked, cell=starts[0].cell.array)


def stability(
    *, models: Mapping[int, tuple[str | Path, Sequence[int]]], data: str | Path,
    out_json: str | Path, out_frames: str | Path, method: str, md: Mapping[str, Any],
    repeats: int, threads: int | None = None,
) -> list[dict[str, Any]]:
    """NVT runs with one method's learned Ge models (seed -> (model file, run ids)).

    Writes the per-run records and the frames of the stable runs; returns the records.
    ``threads``: torch's CPU threads (default: torch's own choice).
    """
    from mlip_transfer.elements.dimenet import load_model
    from mlip_transfer.elements.md import DimeNetCalculator, MDSettings

    _torch_threads(threads)
    settings = MDSettings.from_config(dict(md))
    starts = _start_structures(data, settings.temperature, "Ge", repeats)
    records, frames = [], []
    for seed, (path, run_ids) in models.items():
        model, info = load_model(path)
        seed_records, seed_frames = _run_many(
            calculator_factory=lambda: DimeNetCalculator(model=model), starts=starts,
            run_ids=run_ids, md=settings, label=f"{method} seed {seed}", seed=seed,
        )
        for record in seed_records:
            record.update(method=method, seed=seed, train_size=info.get("size"))
        records += seed_records
        frames += seed_frames
    _json(out_json, {"settings": asdict(settings), "runs": records})
    _save_frames(out_frames, frames, starts)
    _log_stable(records)
    return records


def reference_md(
    *, data: str | Path, out_json: str | Path, out_frames: str | Path, runs: int,
    md: Mapping[str, Any], repeats: int, seed: int,
) -> list[dict[str, Any]]:
    """The same NVT runs with the Stillinger-Weber Ge potential itself (the structure reference)."""
    from mlip_transfer.elements.md import MDSettings

    settings = MDSettings.from_config(dict(md))
    starts = _start_structures(data, settings.temperature, "Ge", repeats)
    records, frames = _run_many(
        calculator_factory=lambda: sw_calculator("Ge"), starts=starts, run_ids=range(runs),
        md=settings, label="Stillinger-Weber", seed=seed + 10**6,
    )
    for record in records:
        record.update(method="stillinger-weber", seed=seed)
    _json(out_json, {"settings": asdict(settings), "runs": records})
    _save_frames(out_frames, frames, starts)
    _log_stable(records)
    return records


def tables(
    *, metrics: Sequence[str | Path], pretrained: str | Path, data_dir: str | Path,
    settings: Mapping[str, Any], out_metrics: str | Path, out_efficiency: str | Path,
    out_temperature: str | Path, out_markdown: str | Path, curves: Sequence[str | Path] = (),
    out_curves: str | Path | None = None,
) -> pd.DataFrame:
    """Collect the Ge models' test errors: the data-efficiency and temperature tables.

    Args:
        metrics: The ``metrics.csv`` of every trained Ge model.
        pretrained: The Si pre-training ``summary.json``.
        data_dir: The Ge dataset folder (its provenance names the data source).
        settings: The ``elements`` configuration.
        out_metrics, out_efficiency, out_temperature: Output CSVs: all metrics, test errors
            against training-set size, and against test temperature.
        out_markdown: Output page of the data-efficiency table with its context.
        curves, out_curves: Each training's ``curve.csv`` (in ``<method>/n<size>_s<seed>/``)
            and the output CSV of all of them with method, size and seed.

    Returns:
        The data-efficiency table.
    """
    table = X.read_metrics(metrics)
    write_csv_atomic(out_metrics, table, index=False)
    if out_curves is not None:
        write_csv_atomic(out_curves, X.learning_curves(curves), index=False)
    efficiency = X.data_efficiency(table, temperature=settings["train_temperature"])
    write_csv_atomic(out_efficiency, efficiency, index=False)
    temperature = X.temperature_transfer(table, sizes=settings["temperature"]["sizes"])
    write_csv_atomic(out_temperature, temperature, index=False)
    source = DataSource.read(data_dir)
    si = json.loads(Path(pretrained).read_text())
    text = [
        "# Si -> Ge transfer: Ge test errors against training-set size",
        "",
        f"**{source.banner}.** {source.caveat}",
        "",
        X.scale_statement(settings),
        "",
        f"Test set: {settings['test_size']} Ge frames at {settings['train_temperature']:g} K (the "
        "training temperature) from trajectories not used for training; force MAE over force "
        "components, energy MAE per atom; mean ± sample standard deviation over seeds.",
        "",
        X.data_efficiency_markdown(efficiency),
        f"Si pre-training: {si['frames']} frames, {si['steps']} steps; Si test "
        + ", ".join(
            f"{row['temperature']:g} K force MAE {row['force_mae_mev_per_a']:.1f} meV/Å"
            for row in si["test"]
        )
        + ".",
        "",
        f"The study: {X.PAPER['data_efficiency']}.",
    ]
    write_text_atomic(out_markdown, "\n".join(text) + "\n")
    logger.info("\n%s", efficiency.to_string())
    return efficiency


RUN_FIELDS = ("method", "seed", "run", "stable", "reason", "failed_at_ps", "steps", "max_temperature",
              "wall_s")


def _sizing(md: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The runs the stability test would need (:func:`.stability_sizing.stability_sizing`)."""
    from mlip_transfer.elements.stability_sizing import measured_core_s_per_step, stability_sizing

    sizing = stability_sizing(
        failure_rate=md["detect_failure_rate"], confidence=md["confidence"],
        runs=min(Counter(r["method"] for r in records).values()), duration_ps=md["duration_ps"],
        timestep_fs=md["timestep_fs"], core_s_per_step=measured_core_s_per_step(records),
    )
    logger.info("%s", sizing["text"])
    return sizing


def stability_structure(
    *, runs: Sequence[str | Path], frames: Sequence[str | Path], reference_runs: str | Path,
    reference_frames: str | Path, settings: Mapping[str, Any], out_stability: str | Path,
    out_curves: str | Path, out_summary: str | Path,
) -> dict[str, Any]:
    """Count unstable runs per method, and compare RDF/ADF of the stable runs with SW.

    Args:
        runs: The run records of every :func:`stability` job.
        frames: Their frames, named ``<method>_s<seed>.npz`` (the seeds of a method are pooled).
        reference_runs, reference_frames: The same of :func:`reference_md`.
        settings: The ``elements`` configuration.
        out_stability: Output CSV of unstable runs per method.
        out_curves: Output CSV of the RDF/ADF curves
            (:func:`~mlip_transfer.elements.structure.compare_structures`).
        out_summary: Output JSON of both with their settings and the paper's values.

    Returns:
        The content of ``out_summary``.
    """
    records = [r for path in runs for r in json.loads(Path(path).read_text())["runs"]]
    table = X.stability_table(records)
    write_csv_atomic(out_stability, table, index=False)
    reference = json.loads(Path(reference_runs).read_text())["runs"]
    by_method: dict[str, list[str | Path]] = {}
    for path in frames:
        by_method.setdefault(Path(path).stem.rsplit("_s", 1)[0], []).append(path)
    shape = settings["structure"]
    curves, distances = compare_structures(
        frames=by_method, reference=reference_frames, rdf_max=shape["rdf_max"],
        rdf_bins=shape["rdf_bins"], adf_cutoff=shape["adf_cutoff"], adf_bins=shape["adf_bins"],
    )
    write_csv_atomic(out_curves, curves, index=False)
    summary = {
        "sizing": _sizing(settings["stability"], records),
        "data_source": "stillinger-weber",
        "scale": X.scale_statement(settings),
        "train_temperature": settings["train_temperature"],
        "stability": table.to_dict("records"),
        "runs": [{k: r.get(k) for k in RUN_FIELDS} for r in records],
        "stability_settings": settings["stability"],
        "reference_runs_stable": sum(r["stable"] for r in reference),
        "reference_runs": len(reference),
        "structure": distances,
        "paper": X.PAPER["stability"] | {"structure": X.PAPER["structure"]},
    }
    write_json_atomic(out_summary, summary, default=str)
    logger.info("\n%s\n%s", table.to_string(), distances)
    return summary
