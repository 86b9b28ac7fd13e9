"""Jobs of the scaling-law stage (paper Fig. 6); the Snakemake scripts only call these."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mlip_transfer.core.files import write_csv_atomic, write_json_atomic
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.scaling.laws import collect_results, schedule_for_size, summarize

logger = logging.getLogger("mlip_transfer.scaling.jobs")


def scaling_point(
    *,
    frames: str | Path,
    split: str | Path,
    method: str,
    size: int,
    seed: int,
    out_dir: str | Path,
    result: str | Path,
    history: str | Path,
    training: Mapping[str, Any],
    scaling: Mapping[str, Any],
    threads: int = 1,
) -> dict[str, Any]:
    """One scaling-law job: train a method on a seeded subset of the training split.

    Records the validation errors after the last epoch (size 0: the untrained starting model,
    the paper's zero point) in ``result`` (JSON), with the steps taken and the training loss at
    the start and end of the learning curve (``steps.csv`` in ``out_dir``: every step);
    ``history`` is the training's history (size 0: one validation row).

    Args:
        frames, split: The dataset's frames file and split table.
        method, size, seed: The job (the subset of ``size`` frames is chosen by ``seed``).
        out_dir: The training's folder (holds ``history``).
        training, scaling: The config's ``training`` and ``scaling`` sections.
        threads: torch threads.

    Returns:
        The record written to ``result``.
    """
    import torch

    from mlip_transfer.data.dataset import iter_frames
    from mlip_transfer.data.split import read_split
    from mlip_transfer.transfer.frames import capped_validation, frames_by_split, seeded_subset
    from mlip_transfer.transfer.methods import build_model

    torch.set_num_threads(threads)
    grouped = frames_by_split(
        iter_frames(frames), read_split(split), functional=training["functional"]
    )
    grouped["val"] = capped_validation(grouped["val"], training)
    subset = seeded_subset(grouped["train"], size, seed=seed)
    if size > len(grouped["train"]):
        logger.warning("size %d exceeds the %d training frames: all are used", size, len(subset))
    atomref_frames = grouped["train"] if scaling["atomref_frames"] == "all" else subset
    model, info = build_model(
        method, train_frames=atomref_frames, source_model_name=training["source_model"], seed=seed
    )
    epochs, steps = schedule_for_size(len(subset), scaling=scaling,
                                      batch_size=training["batch_size"])
    if epochs == 0:
        energy, force = _zero_point(model, grouped["val"], history, training["batch_size"])
    else:
        energy, force = _train_point(
            model, info, subset, grouped["val"], method=method, out_dir=Path(out_dir),
            settings=training, epochs=epochs, seed=seed,
            max_steps=steps if scaling.get("steps") else None,
        )
    record = {
        "method": method,
        "size": size,
        "n_train_frames": len(subset),
        "seed": seed,
        "epochs": epochs,
        "steps": steps,
        "n_val_frames": len(grouped["val"]),
        "atomref_frames": scaling["atomref_frames"],
        "energy_mae_mev_per_atom": energy,
        "force_mae_mev_per_a": force,
        **_learning_curve(Path(out_dir) / "steps.csv" if epochs else None),
    }
    write_json_atomic(result, record)
    logger.info("result: %s", record)
    return record


def _learning_curve(steps_csv: Path | None, window: int = 3) -> dict[str, Any]:
    """The job's learning curve in brief: optimiser steps taken and the mean training loss of
    the first and last ``window`` steps (``steps.csv`` holds every step; none for size 0)."""
    if steps_csv is None or not steps_csv.is_file():
        return {"steps_taken": 0, "train_loss_start": None, "train_loss_end": None}
    loss = pd.read_csv(steps_csv)["loss"]
    return {"steps_taken": len(loss), "train_loss_start": float(loss.head(window).mean()),
            "train_loss_end": float(loss.tail(window).mean())}


def _zero_point(
    model: Any, val_frames: list, history: str | Path, batch_size: int
) -> tuple[float, float]:
    """Validation energy and force MAE (meV) of the untrained model; one history row."""
    from mlip_transfer.transfer.metrics import evaluate_errors

    errors = evaluate_errors(model, val_frames, batch_size=batch_size)
    energy, force = errors["energy_mae_mev_per_atom"], errors["force_mae_mev_per_a"]
    row = {"epoch": 0, "split": "val", "energy_mae": energy / 1000, "force_mae": force / 1000}
    write_csv_atomic(history, pd.DataFrame([row]), index=False)
    return energy, force


def _train_point(
    model: Any,
    info: dict[str, Any],
    subset: list,
    val_frames: list,
    *,
    method: str,
    out_dir: Path,
    settings: Mapping[str, Any],
    epochs: int,
    seed: int,
    max_steps: int | None = None,
) -> tuple[float, float]:
    """Train; the last epoch's validation energy and force MAE (meV): no model selection."""
    from mlip_transfer.transfer.settings import TrainSettings
    from mlip_transfer.transfer.trainer import train

    result = train(
        model=model,
        train_frames=subset,
        val_frames=val_frames,
        method=method,
        out_dir=out_dir,
        # Only the last epoch counts (no model selection), and no gradients are recorded.
        settings=TrainSettings.from_config(
            settings, epochs=epochs, seed=seed, keep_checkpoints=1, validate_every=None,
            max_steps=max_steps,
        ),
        gradients=None,
        info=info,
    )
    val = result.history[result.history["split"] == "val"].sort_values("epoch").iloc[-1]
    return 1000 * float(val["energy_mae"]), 1000 * float(val["force_mae"])


def seed_spread_flags(
    results: pd.DataFrame, *, scratch: str, transfer: Iterable[str]
) -> list[dict[str, Any]]:
    """Sizes at which a transfer method and Scratch are indistinguishable within their seeds'
    spread (:func:`mlip_transfer.core.flags.indistinguishable`), per target; one seed per size
    gives no spread and no flag."""
    from mlip_transfer.core import flags

    raised = []
    columns = {"energy": "energy_mae_mev_per_atom", "force": "force_mae_mev_per_a"}
    for method in transfer:
        for size in sorted(set(results["size"]) - {0}):
            for target, column in columns.items():
                values = {m: results.loc[(results["method"] == m) & (results["size"] == size),
                                         column].tolist() for m in (scratch, method)}
                flag = flags.indistinguishable(values[scratch], values[method],
                                               names=(scratch, method), metric=f"{target} MAE")
                if flag:
                    raised.append({"method": method, "size": int(size), "target": target,
                                   "code": flag.code, "message": flag.message})
    return raised


def scaling_fit(
    *,
    results: Iterable[str | Path],
    provenance: str | Path,
    table: str | Path,
    fits: str | Path,
    scaling: Mapping[str, Any],
) -> dict[str, Any]:
    """Collect the scaling-law jobs and fit error against training-set size (paper Fig. 6).

    Args:
        results: The ``result.json`` of every :func:`scaling_point` job.
        provenance: The dataset's ``provenance.json`` (its data source is named in the fits).
        table, fits: Output CSV of all points and JSON of the fits.
        scaling: The config's ``scaling`` section.

    Returns:
        The content written to ``fits``.
    """
    collected = collect_results(json.loads(Path(path).read_text()) for path in results)
    write_csv_atomic(table, collected, index=False)
    methods = scaling["methods"]
    summary = summarize(
        collected,
        scratch_method=methods[0],
        transfer_methods=methods[1:],
        threshold=scaling["fit_threshold"],
    )
    summary["flags"] = seed_spread_flags(collected, scratch=methods[0], transfer=methods[1:])
    source = DataSource.read(Path(provenance).parent)
    summary["data_source"], summary["data_banner"] = source.name, source.banner
    # Standard JSON: a fit that could not be made (too few points) is null, not NaN.
    write_json_atomic(fits, summary, default=str)
    logger.info("\n%s", collected.to_string())
    for target, entry in summary["targets"].items():
        logger.info("%s fits: %s; crossover %s", target, entry["fits"], entry.get("crossover"))
    return summary
