"""Jobs of the data-budget estimate; the Snakemake scripts and ``mlip-transfer data-budget`` only
call these.

Every point is trained with the recipe of the full-size training (``train_method``): the
``training`` section's epochs, batch size, learning-rate schedule, loss and device; the same
capped validation frames (:func:`~mlip_transfer.transfer.frames.capped_validation`); a seeded
subset of the training split that, for the training seed, is contained in the full-size one
(:func:`~mlip_transfer.transfer.frames.seeded_subset`); and the AtomRef fitted as the full-size
training fits it (``data_budget.atomref_frames: all``: taken from the full-size training's
``train_summary.json`` where the run has one, so Method 4r's source predictions on the whole
split are made once). Only the subset size differs, so the line read at N_full predicts the
last validation row of ``training/{method}/history.csv``. Unlike ``train_method``, a point
validates only after its last epoch (the same last-epoch number; validation draws no random
numbers, so the training is the same) and records no gradients.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlip_transfer.budget import estimate, report
from mlip_transfer.budget.settings import DataBudgetSettings
from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import write_csv_atomic, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from mlip_transfer.data.dataset import Frame

logger = logging.getLogger("mlip_transfer.budget.jobs")
POINTS_FILE, JSON_FILE, MARKDOWN_FILE = "data_budget_points.csv", "data_budget.json", "data_budget.md"
# Methods whose starting AtomRef is fitted to the training frames (Methods 2 and 3 keep the
# source's).
ATOMREF_FITTED = ("1_scratch", "4_refit_atomref", "4r_residual_atomref")


def full_size(train_frames: Sequence[Frame], training: Mapping[str, Any]) -> int:
    """N_full: the training frames ``train_method`` trains on (``max_train_frames`` caps)."""
    cap = training.get("max_train_frames")
    return len(train_frames) if cap is None else min(len(train_frames), int(cap))


def train_point(
    *,
    train_frames: Sequence[Frame],
    val_frames: Sequence[Frame],
    method: str,
    size: int,
    seed: int,
    out_dir: str | Path,
    training: Mapping[str, Any],
    atomref_frames: str = "all",
    atomref: Mapping[str, float] | None = None,
    source_model: Any = None,
) -> dict[str, Any]:
    """Train ``method`` on ``size`` frames of ``train_frames`` (seeded subset) with the
    full-size recipe; the last epoch's validation MAEs (meV) and the steps taken.

    Args:
        train_frames: The whole training split (the subset is drawn from it).
        val_frames: The capped validation frames of the run.
        method, size, seed: The point.
        out_dir: The training's folder (``history.csv``, ``steps.csv``, model).
        training: The config's ``training`` section (the recipe).
        atomref_frames: ``all`` (AtomRef on ``train_frames``, as ``train_method``) or ``subset``.
        atomref: With ``all``: the AtomRef already fitted on ``train_frames`` (element ->
            eV/atom; the full-size training's, or :func:`full_atomref`'s), written over the
            subset's fit. The AtomRef is the only part of a starting model that depends on
            the frames, so the start is the same as a fit on every frame, without Method 4r's
            source predictions on the whole split (minutes on the default data).
        source_model: A loaded source CHGNet to copy (in-process runs); None: load by name.
    """
    from mlip_transfer.energy_scale.chgnet_atomref import read_model_atomref, set_model_atomref
    from mlip_transfer.transfer.frames import seeded_subset
    from mlip_transfer.transfer.methods import build_model
    from mlip_transfer.transfer.settings import TrainSettings
    from mlip_transfer.transfer.trainer import train

    subset = seeded_subset(train_frames, size, seed=seed)
    given = atomref is not None and atomref_frames == "all"
    model, info = build_model(
        method, train_frames=subset if given or atomref_frames == "subset" else train_frames,
        source_model_name=training["source_model"], seed=seed,
        **({"source_model": source_model} if source_model is not None else {}),
    )
    if given and method in ATOMREF_FITTED:
        set_model_atomref(model, atomref)
        info["atomref"] = read_model_atomref(model)
        info["atomref_start"] = (f"the AtomRef {method} fits on all {len(train_frames)} "
                                 "training frames (the full-size training's), frozen")
    # Only the last epoch counts: no validation before training, none between epochs.
    settings = TrainSettings.from_config(training, seed=seed, validate_every=None,
                                         keep_checkpoints=1, validate_before=False)
    result = train(model=model, train_frames=subset, val_frames=val_frames, method=method,
                   out_dir=Path(out_dir), settings=settings, gradients=None, info=info,
                   progress=False)
    val = result.history[result.history["split"] == "val"].sort_values("epoch").iloc[-1]
    steps = Path(out_dir) / "steps.csv"
    return {
        "method": method, "size": len(subset), "seed": seed, "epochs": settings.epochs,
        "steps_taken": len(pd.read_csv(steps)) if steps.is_file() else None,
        "n_val_frames": len(val_frames), "atomref_frames": atomref_frames,
        "energy_mae_mev_per_atom": 1000 * float(val["energy_mae"]),
        "force_mae_mev_per_a": 1000 * float(val["force_mae"]),
    }


def data_budget_point(
    *,
    frames: str | Path,
    split: str | Path,
    method: str,
    fraction: float,
    seed: int,
    out_dir: str | Path,
    result: str | Path,
    training: Mapping[str, Any],
    data_budget: Mapping[str, Any],
    threads: int = 1,
    summary: str | Path | None = None,
) -> dict[str, Any]:
    """Rule ``data_budget_point``: one small fine-tune of the learning curve.

    The size is ``fraction`` of N_full (:func:`full_size`), as
    :meth:`DataBudgetSettings.sizes` caps it; the record (with ``n_full``) goes to ``result``.
    ``summary``: the full-size training's ``train_summary.json``, whose AtomRef (fitted on the
    same training split) the point starts from (``atomref_frames: all``); None: fit it here.

    Raises:
        DataError: ``summary``'s AtomRef was fitted on another number of training frames.
    """
    import torch

    from mlip_transfer.data.dataset import iter_frames
    from mlip_transfer.data.split import read_split
    from mlip_transfer.transfer.frames import capped_validation, frames_by_split

    torch.set_num_threads(threads)
    settings = DataBudgetSettings.from_config(data_budget)
    grouped = frames_by_split(iter_frames(frames), read_split(split),
                              functional=training["functional"])
    n_full = full_size(grouped["train"], training)
    sizes = settings.sizes(n_full)
    if fraction not in sizes:
        raise DataError(f"fraction {fraction} is not among data_budget.fractions {sorted(sizes)}",
                        field="fraction")
    atomref = None
    if summary is not None and settings.atomref_frames == "all":
        info = json.loads(Path(summary).read_text())["model_info"]
        if info.get("n_atomref_frames") != len(grouped["train"]):
            raise DataError(f"AtomRef fitted on {info.get('n_atomref_frames')} frames, the training "
                            f"split holds {len(grouped['train'])}", file=str(summary),
                            field="model_info.n_atomref_frames")
        atomref = info["atomref"]
    record = train_point(
        train_frames=grouped["train"], val_frames=capped_validation(grouped["val"], training),
        method=method, size=sizes[fraction], seed=seed, out_dir=out_dir, training=training,
        atomref_frames=settings.atomref_frames, atomref=atomref,
    )
    record |= {"fraction": fraction, "n_full": n_full}
    write_json_atomic(result, record)
    logger.info("result: %s", record)
    return record


def measured_full_size(histories: Sequence[str | Path]) -> dict[str, dict[str, float]]:
    """Method (the folder's name) -> last validation row of its full-size ``history.csv`` (meV)."""
    measured = {}
    for path in histories:
        val = pd.read_csv(path).query("split == 'val'").sort_values("epoch")
        if val.empty:
            raise DataError("no validation row", file=str(path), field="split")
        last = val.iloc[-1]
        measured[Path(path).parent.name] = {"energy": 1000 * float(last["energy_mae"]),
                                            "force": 1000 * float(last["force_mae"])}
    return measured


def full_size_flags(histories: Sequence[str | Path]) -> dict[str, dict[str, str]]:
    """Method -> target -> the "not trained at this budget" flag of its full-size training ("" if
    training moved the validation error; Table 1 flags the same rows from the same files)."""
    from mlip_transfer.core import flags

    raised: dict[str, dict[str, str]] = {}
    for path in histories:
        found = flags.history_not_trained(path, what="the full-size training's validation")
        if found is not None:
            raised[Path(path).parent.name] = {
                target: flags.flag_text([flag]) for target, flag in found.items()
            }
    return raised


def recipe_sentence(training: Mapping[str, Any]) -> str:
    """The recipe every point (and the full-size training) shares, in one sentence."""
    return (f"Every point: {training['epochs']} epochs, batch {training['batch_size']}, lr "
            f"{training['learning_rate']} cosine to {training['final_learning_rate']}, "
            f"{training['criterion']} loss, the same validation frames as the full-size training.")


def write_report(
    points: pd.DataFrame,
    *,
    n_full: int,
    settings: DataBudgetSettings,
    out_dir: str | Path,
    measured: Mapping[str, Mapping[str, float]] | None = None,
    flags: Mapping[str, Mapping[str, str]] | None = None,
    banner: str = "",
    recipe: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit, extrapolate and write ``data_budget.{json,md}`` and the points table in ``out_dir``
    (``flags``: :func:`full_size_flags`, shown beside the measured errors)."""
    out = Path(out_dir)
    summary = estimate.summarize(points, n_full=n_full, methods=settings.methods,
                                 confidence=settings.confidence, measured=measured)
    summary["full_size_flags"] = dict(flags or {})
    summary |= {"data_banner": banner, "recipe": recipe, "settings": {
        "fractions": list(settings.fractions), "max_size": settings.max_size,
        "seeds": list(settings.seeds), "atomref_frames": settings.atomref_frames}, **(extra or {})}
    summary["sentence"] = report.sentence(summary)
    write_csv_atomic(out / POINTS_FILE, points, index=False)
    write_json_atomic(out / JSON_FILE, summary, default=str)  # standard JSON: NaN -> null
    write_text_atomic(out / MARKDOWN_FILE, report.markdown(summary, banner=banner, recipe=recipe))
    logger.info("%s", summary["sentence"])
    return summary


def data_budget_report(
    *,
    results: Sequence[str | Path],
    histories: Sequence[str | Path],
    provenance: str | Path,
    out_dir: str | Path,
    training: Mapping[str, Any],
    data_budget: Mapping[str, Any],
) -> dict[str, Any]:
    """Rule ``data_budget``: collect the points, extrapolate to N_full, set the measured
    full-size errors (the trained methods' ``history.csv``) beside the estimates.

    Raises:
        DataError: Points made for different full sizes (a result from an older run).
    """
    from mlip_transfer.core.provenance import DataSource

    records = [json.loads(Path(path).read_text()) for path in results]
    sizes = {r["n_full"] for r in records}
    if len(sizes) != 1:
        raise DataError(f"data-budget points were made for full sizes {sorted(sizes)}; rerun them",
                        field="n_full")
    points = pd.DataFrame(records).sort_values(["method", "size", "seed"]).reset_index(drop=True)
    source = DataSource.read(Path(provenance).parent)
    return write_report(points, n_full=sizes.pop(), settings=DataBudgetSettings.from_config(data_budget),
                        out_dir=out_dir, measured=measured_full_size(histories),
                        flags=full_size_flags(histories),
                        banner=source.banner, recipe=recipe_sentence(training),
                        extra={"data_source": source.name})


def run_local(
    *,
    frames: Sequence[Frame],
    split: Mapping[str, str],
    settings: DataBudgetSettings,
    training: Mapping[str, Any],
    out_dir: str | Path,
    measure_full: bool = False,
    banner: str = "",
) -> dict[str, Any]:
    """``mlip-transfer data-budget``: every point in this process, one after the other, then
    the report in ``out_dir`` (trainings under ``out_dir/trainings``).

    Args:
        frames: The user's frames (other functionals than ``training["functional"]`` ignored).
        split: Material id -> ``train`` / ``val`` / ``test``.
        settings, training: The estimate's settings and the training recipe.
        out_dir: Output folder.
        measure_full: Also train every method on the full size with the same recipe, and set
            its validation error beside the estimate (costs more than all points together).
        banner: Data banner at the top of the report.

    Raises:
        DataError: No validation frames, or too few training frames.
    """
    from mlip_transfer.transfer.frames import capped_validation, frames_by_split
    from mlip_transfer.transfer.models import load_chgnet

    grouped = frames_by_split(frames, split, functional=training["functional"])
    if not grouped["val"]:
        raise DataError(f"no {training['functional']} validation frames: the estimate validates "
                        "every point on the validation split", field="split")
    val = capped_validation(grouped["val"], training)
    n_full = full_size(grouped["train"], training)
    sizes = settings.sizes(n_full)
    source = load_chgnet(training["source_model"])
    trainings = Path(out_dir) / "trainings"
    records, measured = [], {}
    for method in settings.methods:
        atomref = None
        if settings.atomref_frames == "all" and method in ATOMREF_FITTED:
            from mlip_transfer.transfer.methods import build_model

            # One fit on every training frame per method, shared by all its points.
            atomref = build_model(method, train_frames=grouped["train"],
                                  source_model=source)[1]["atomref"]
        for fraction, size in sizes.items():
            for seed in settings.seeds:
                logger.info("%s: %d of %d frames, seed %d", method, size, n_full, seed)
                record = train_point(train_frames=grouped["train"], val_frames=val, method=method,
                                     size=size, seed=seed, training=training, source_model=source,
                                     out_dir=trainings / method / f"n{size}_seed{seed}",
                                     atomref_frames=settings.atomref_frames, atomref=atomref)
                records.append(record | {"fraction": fraction, "n_full": n_full})
        if measure_full:
            seed = training["seed"]
            full = train_point(train_frames=grouped["train"], val_frames=val, method=method,
                               size=n_full, seed=seed, training=training, source_model=source,
                               out_dir=trainings / method / "full", atomref_frames="all",
                               atomref=atomref)
            measured[method] = {"energy": full["energy_mae_mev_per_atom"],
                                "force": full["force_mae_mev_per_a"]}
    points = pd.DataFrame(records).sort_values(["method", "size", "seed"]).reset_index(drop=True)
    return write_report(points, n_full=n_full, settings=settings, out_dir=out_dir,
                        measured=measured, banner=banner, recipe=recipe_sentence(training))
