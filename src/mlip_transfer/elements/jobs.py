"""One function per workflow job of the Si -> Ge stage; the Snakemake scripts only call these.

Each takes plain paths and settings, so a user's own script (or a test) runs the same steps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.provenance import STILLINGER_WEBER
from mlip_transfer.data.dataset import write_frames
from mlip_transfer.elements.data import group_by_temperature, load_frames, write_dataset
from mlip_transfer.elements.sampling import SamplingSettings, sample_frames
from mlip_transfer.elements.stillinger_weber import (
    diamond_cell,
    ground_state_check,
    sw_calculator,
)
from mlip_transfer.elements.structure import adf, curve_difference, rdf

# torch and torch_geometric (several seconds to import) are imported inside the jobs that need
# them, so the sampling and analysis jobs start quickly.

logger = logging.getLogger("mlip_transfer.elements.jobs")


def _json(path: str | Path, content: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(content, indent=2, sort_keys=True, default=str) + "\n")


def sample_set(
    *, out: str | Path, element: str, set_name: str, sizes: Mapping[float, int],
    sampling: Mapping[str, Any], seed: int,
) -> int:
    """Sample one set (``sizes``: frames per temperature) into a frames file; returns the count."""
    settings = SamplingSettings(**sampling)
    frames = [
        frame
        for temperature, n_frames in sorted(sizes.items())
        for frame in sample_frames(
            element=element, temperature=float(temperature), n_frames=int(n_frames),
            set_name=set_name, settings=settings, seed=seed,
        )
    ]
    return write_frames(out, frames)


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
    return summary


def _metrics(
    model: Any, frames_by_t: Mapping[float, list], *, label: Mapping[str, Any]
) -> pd.DataFrame:
    from mlip_transfer.elements.training import evaluate

    rows = []
    for temperature, frames in frames_by_t.items():
        errors = evaluate(model, frames)
        rows.append({**label, "temperature": temperature, **errors})
    return pd.DataFrame(rows)


def pretrain(
    *, data: str | Path, out_dir: str | Path, model_settings: Mapping[str, Any],
    training: Mapping[str, Any], seed: int, device: str, test_temperature: float,
) -> dict[str, Any]:
    """Pre-train the source (Si) model on its whole pool; test it on its test set."""
    from mlip_transfer.elements.dimenet import DimeNetSettings, save_model
    from mlip_transfer.elements.training import TrainSettings, start_model, train_force_matching

    out_dir = Path(out_dir)
    pool = load_frames(data, sets=["pool"])
    model, info = start_model("scratch", settings=DimeNetSettings(**model_settings), seed=seed)
    summary = train_force_matching(
        model=model, frames=pool, out_dir=out_dir, label="pretrain Si",
        settings=TrainSettings(**training, seed=seed, device=device),
    )
    save_model(model, out_dir / "model.pt", **info, element="Si", train_frames=len(pool))
    test = group_by_temperature(load_frames(data, sets=["test"], temperatures=[test_temperature]))
    metrics = _metrics(model, test, label={"method": "pretrained", "size": len(pool), "seed": seed})
    metrics.to_csv(out_dir / "metrics.csv", index=False)
    summary["test"] = metrics.to_dict("records")
    _json(out_dir / "summary.json", summary)
    return summary


def train_target(
    *, data: str | Path, out_dir: str | Path, method: str, size: int, seed: int,
    model_settings: Mapping[str, Any], training: Mapping[str, Any], device: str,
    test_temperatures: Sequence[float], source_model: str | Path | None = None,
) -> dict[str, Any]:
    """Train one Ge model (scratch or transfer) on a seeded subset of the pool and test it."""
    from mlip_transfer.elements.dimenet import DimeNetSettings, save_model
    from mlip_transfer.elements.training import TrainSettings, start_model, train_force_matching

    out_dir = Path(out_dir)
    pool = load_frames(data, sets=["pool"])
    if size > len(pool):
        raise DataError(f"asked for {size} training frames, the pool has {len(pool)}", file=str(data))
    order = np.random.default_rng([seed, 7919]).permutation(len(pool))
    chosen = [pool[k] for k in sorted(order[:size])]
    model, info = start_model(
        method, settings=DimeNetSettings(**model_settings), seed=seed, source_model=source_model
    )
    summary = train_force_matching(
        model=model, frames=chosen, out_dir=out_dir, label=f"{method} n={size} seed={seed}",
        settings=TrainSettings(**training, seed=seed, device=device),
    )
    save_model(model, out_dir / "model.pt", **info, element="Ge", size=size,
               train_frame_ids=[f.frame_id for f in chosen])
    test = group_by_temperature(load_frames(data, sets=["test"], temperatures=test_temperatures))
    missing = sorted(set(map(float, test_temperatures)) - set(test))
    if missing:
        raise DataError(f"no test frames at {missing} K", file=str(data), field="extra.temperature")
    metrics = _metrics(model, test, label={"method": method, "size": size, "seed": seed})
    metrics.to_csv(out_dir / "metrics.csv", index=False)
    summary.update(start=info, test=metrics.to_dict("records"))
    _json(out_dir / "summary.json", summary)
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
        records.append({k: v for k, v in result.items() if k != "frames"} | {"run": run})
    return records, frames


def _save_frames(path: str | Path, frames: list[np.ndarray], starts: list[Atoms]) -> None:
    n_atoms = len(starts[0])
    stacked = np.concatenate(frames) if frames else np.zeros((0, n_atoms, 3), np.float32)
    np.savez_compressed(path, positions=stacked, cell=starts[0].cell.array)


def stability(
    *, models: Mapping[int, tuple[str | Path, Sequence[int]]], data: str | Path,
    out_json: str | Path, out_frames: str | Path, method: str, md: Mapping[str, Any],
    repeats: int,
) -> list[dict[str, Any]]:
    """NVT runs with one method's learned Ge models (seed -> (model file, run ids)).

    Writes the per-run records and the frames of the stable runs; returns the records.
    """
    from mlip_transfer.elements.dimenet import load_model
    from mlip_transfer.elements.md import DimeNetCalculator, MDSettings

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
    return records


def structure(
    *, frames: Mapping[str, Sequence[str | Path]], reference: str | Path, rdf_max: float,
    rdf_bins: int, adf_cutoff: float, adf_bins: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """RDF and ADF per method (stable runs of all its models pooled) and the SW reference.

    Returns the curves (long table: method, kind, x, y) and per-method distances from the
    reference (integrated absolute difference) with the number of frames used.
    """
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ref = np.load(reference)
    groups["stillinger-weber"] = (ref["positions"], ref["cell"])
    for method, paths in frames.items():
        loaded = [np.load(p) for p in paths]
        positions = np.concatenate([item["positions"] for item in loaded])
        groups[method] = (positions, loaded[0]["cell"])
    curves, stats = [], {}
    reference_curves = None
    for method, (positions, cell) in groups.items():
        if len(positions) == 0:
            stats[method] = {"frames": 0, "rdf_difference": None, "adf_difference": None}
            continue
        r, g = rdf(positions, cell, r_max=rdf_max, bins=rdf_bins)
        theta, p = adf(positions, cell, cutoff=adf_cutoff, bins=adf_bins)
        curves += [{"method": method, "kind": "rdf", "x": x, "y": y} for x, y in zip(r, g)]
        curves += [{"method": method, "kind": "adf", "x": x, "y": y} for x, y in zip(theta, p)]
        if method == "stillinger-weber":
            reference_curves = (r, g, theta, p)
        stats[method] = {"frames": int(len(positions)), "rdf": (r, g), "adf": (theta, p)}
    if reference_curves is None:
        raise DataError("the Stillinger-Weber reference has no frames", file=str(reference))
    out = {}
    for method, item in stats.items():
        if item["frames"] == 0:
            out[method] = item
            continue
        r, g = item["rdf"]
        theta, p = item["adf"]
        out[method] = {
            "frames": item["frames"],
            "rdf_difference": curve_difference(r, g, reference_curves[1]),
            "adf_difference": curve_difference(theta, p, reference_curves[3]),
        }
    return pd.DataFrame(curves), out
