"""One function per workflow job of the transfer stage (``train_method``, ``evaluate_model``,
``table1``); the Snakemake scripts only call these.

Each takes plain paths and settings, so a user's own script (or a test) runs the same steps.

Every job is a fresh process that calls one of these functions, so each function imports what
only it needs: ``train_method`` does not load the evaluation, relaxation and hull code,
``table1`` loads neither torch nor CHGNet (``tests/core/test_import_costs.py``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlip_transfer.core import flags
from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import write_csv_atomic, write_json_atomic, write_text_atomic
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import iter_frames, read_materials
from mlip_transfer.data.split import read_split
from mlip_transfer.transfer import retention as retention_table
from mlip_transfer.transfer import table1 as paper_table
from mlip_transfer.transfer.frames import (
    PAPER_ROWS,
    capped_test_materials,
    capped_validation,
    frames_by_split,
    seeded_subset,
)

if TYPE_CHECKING:
    import pandas as pd

    from mlip_transfer.data.dataset import Frame
    from mlip_transfer.transfer.trainer import TrainResult

logger = logging.getLogger("mlip_transfer.transfer.jobs")

PathLike = str | os.PathLike


def _trajectories(frames: Mapping[str, Sequence[Frame]]) -> dict[str, list[Frame]]:
    """Material id -> its frames of every split, in relaxation-step order."""
    by_material: dict[str, list[Frame]] = {}
    for group in frames.values():
        for frame in group:
            by_material.setdefault(frame.material_id, []).append(frame)
    return {m: sorted(fs, key=lambda f: f.extra.get("step", 0)) for m, fs in by_material.items()}


def evaluate_model(
    *,
    label: str,
    model: PathLike,
    frames: PathLike,
    materials: PathLike,
    split: PathLike,
    out_metrics: PathLike,
    out_relaxed: PathLike,
    out_hull: PathLike,
    evaluation: Mapping[str, Any],
    functional: str,
    device: str = "auto",
    processes: int = 1,
    out_predictions: PathLike | None = None,
    reference_relaxed: PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate one model on the test split: label errors, stability relaxations, hull errors.

    Each test material is relaxed from its first (perturbed) frame; the competitors on the
    model's hull are its static energies on the reference relaxed structures (the last frame of
    every material; see :data:`mlip_transfer.transfer.evaluation.COMPETITOR_DEVIATION`).

    Args:
        label: Model label (Table 1 row).
        model: A trained model file or a CHGNet model name.
        frames, materials, split: The dataset's frames, materials table and split.
        out_metrics, out_relaxed, out_hull: Where the metrics JSON, the relaxations and the
            per-material hull errors go.
        out_predictions: Where each test frame's predicted energy and its AtomRef part go
            (:func:`~mlip_transfer.transfer.metrics.energy_predictions`; the step-0 rows of
            Table 1 swap AtomRefs in the source model's); None: not written.
        evaluation: The config's ``evaluation`` block (``batch_size``, ``relax_fmax``,
            ``relax_max_steps``).
        functional: The target functional of the frames and the reference hull.
        device: Torch device (``"auto"``: the GPU when present). On a GPU the relaxations run
            in this process; on the CPU in ``processes`` spawned single-thread workers.
        processes: Relaxation workers on the CPU.
        reference_relaxed: The teacher's relaxations of the test materials under the same
            protocol (:func:`~mlip_transfer.transfer.reference_hull.relax_with_teacher`): the
            reference hull's test energies; None: the dataset's relaxed energies (DFT data).

    Returns:
        The metrics written to ``out_metrics``.
    """
    from mlip_transfer.core.device import resolve_device
    from mlip_transfer.transfer.evaluation import evaluate_stability, static_energies
    from mlip_transfer.transfer.metrics import energy_predictions, evaluate_errors
    from mlip_transfer.transfer.models import load_chgnet
    from mlip_transfer.transfer.relaxation import relax_structures

    torch_device = resolve_device(device)
    chgnet = load_chgnet(model, device=str(torch_device))
    logger.info("device %s", torch_device)
    by_split = frames_by_split(iter_frames(frames), read_split(split), functional=functional)
    trajectories = _trajectories(by_split)
    all_test_ids = {f.material_id for f in by_split["test"]}
    test_ids = capped_test_materials(all_test_ids, evaluation.get("max_test_materials"))
    chosen = set(test_ids)
    test_frames = [f for f in by_split["test"] if f.material_id in chosen]
    logger.info("%d of %d test materials (%d of %d frames)", len(test_ids), len(all_test_ids),
                len(test_frames), len(by_split["test"]))
    errors = evaluate_errors(chgnet, test_frames, batch_size=evaluation["batch_size"])
    logger.info("test errors: %s", errors)
    if out_predictions is not None:
        predictions = energy_predictions(chgnet, test_frames, batch_size=evaluation["batch_size"])
        write_csv_atomic(out_predictions, predictions, index=False)
    relaxed = relax_structures(
        {m: trajectories[m][0].to_structure() for m in test_ids},
        model_path_or_name=model,
        fmax=evaluation["relax_fmax"],
        max_steps=evaluation["relax_max_steps"],
        processes=1 if torch_device.type == "cuda" else processes,
        device=str(torch_device),
    )
    write_csv_atomic(out_relaxed, relaxed, index=False)
    finals = {m: fs[-1].to_structure() for m, fs in trajectories.items()}
    competitors = static_energies(chgnet, finals, batch_size=evaluation["batch_size"])
    reference, n_fair = read_materials(materials), 0
    if reference_relaxed is not None:
        import pandas as pd

        from mlip_transfer.transfer.reference_hull import fair_reference

        reference, n_fair = fair_reference(reference, pd.read_csv(reference_relaxed),
                                           functional=functional)
    summary, per_material = evaluate_stability(
        model_label=label,
        relaxed=relaxed,
        reference_materials=reference,
        test_ids=test_ids,
        competitor_energies=competitors,
        functional=functional,
    )
    write_csv_atomic(out_hull, per_material, index=False)
    metrics = {
        "model": label,
        "paper_row": PAPER_ROWS.get(label),
        "energy_mae_mev": errors["energy_mae_mev_per_atom"],
        "force_mae_mev": errors["force_mae_mev_per_a"],
        "stress_mae_gpa": errors["stress_mae_gpa"],
        "magmom_mae": errors["magmom_mae_mub"],
        "n_test_frames": errors["n_frames"],
        **summary,
        "n_relaxations_without_step": int((relaxed["n_steps"] == 0).sum()),
        "n_test_materials": len(all_test_ids),
        "n_reference_relaxed_by_teacher": n_fair,
    }
    write_json_atomic(out_metrics, metrics, default=str)
    return metrics


def _training_sentence(training: Mapping[str, Any]) -> str:
    """How the models of Table 1 were trained, in one sentence of the markdown header."""
    frames = (
        f", at most {training['max_train_frames']} training frames"
        if training["max_train_frames"]
        else ", every training frame"
    )
    scale = (
        "" if training["epochs"] >= 50 else " (scaled down from the paper's 50 epochs, batch 64)"
    )
    return (
        f"Training: {training['epochs']} epochs, batch {training['batch_size']}, lr "
        f"{training['learning_rate']} cosine to {training['final_learning_rate']}, loss "
        f"{training['criterion']} {training['loss_ratios']}{frames}{scale}."
    )


def _relaxation_sentence(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Header lines: how many test materials were relaxed (when not all), and where the
    reference hull's test energies come from (the teacher under the same protocol)."""
    lines = []
    counts = {(row.get("n_relaxed"), row.get("n_test_materials")) for row in rows
              if row.get("n_test_materials")}
    partial = sorted((n, total) for n, total in counts if n is not None and n < total)
    if partial:
        n, total = partial[0]
        lines += [(f"Test set: {n} of the {total} test materials "
                   "(`evaluation.max_test_materials`, the same materials for every model): their "
                   "frames for the errors, their relaxations for the stability columns."), ""]
    fair = max((row.get("n_reference_relaxed_by_teacher") or 0 for row in rows), default=0)
    if fair:
        lines += [(f"Reference hull: {fair} test materials relaxed by the labels' teacher "
                   "under the models' protocol (`transfer/reference_hull.py`), the rest at the "
                   "dataset's relaxed energies."), ""]
    return lines


def _flags(metrics: Mapping[str, Any], history: PathLike | None) -> str:
    """The flags of one Table 1 row: validation errors training did not move (from the trained
    model's ``history.csv``: epoch 0 against the last epoch), and relaxations without a step."""
    raised = []
    found = None if history is None else flags.history_not_trained(history)
    if found is not None:
        raised += found.values()
    idle, relaxed = metrics.get("n_relaxations_without_step"), metrics.get("n_relaxed")
    if idle and relaxed:
        raised.append(flags.relaxations_without_step([0] * idle + [1] * (int(relaxed) - idle),
                                                     what="test relaxations"))
    return flags.flag_text(raised)


def _stage(label: str, methods: Sequence[str]) -> str:
    return "trained" if label in methods else "untrained"


def _with_step0_rows(
    rows: list[dict[str, Any]],
    *,
    methods: Sequence[str],
    step0: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """``rows`` with each trained method's step-0 row after it, and the zero-shot row last.

    ``step0``: ``source`` (the label of the source model's row), ``predictions`` (its
    ``predictions.csv``), ``summaries`` (each method's ``train_summary.json``) and ``atomrefs``
    (the energy-scale stage's AtomRef table, for the shipped MP-r2SCAN AtomRef; optional).
    """
    import pandas as pd

    from mlip_transfer.transfer import step0 as before_training

    by_label = {row["model"]: row for row in rows}
    if step0["source"] not in by_label:
        raise DataError(f"the source model's row {step0['source']!r} is not among the metrics",
                        record=step0["source"])
    atomrefs = {}
    for path in step0["summaries"]:
        summary = json.loads(Path(path).read_text())
        atomrefs[summary["method"]] = summary["model_info"]["atomref"]
    zero_shot = None
    if step0.get("atomrefs"):
        from mlip_transfer.energy_scale.refits import read_atomref_table

        zero_shot = read_atomref_table(step0["atomrefs"]).get(("r2scan", "shipped"))
    derived = before_training.step0_rows(
        methods=[m for m in methods if m in by_label],
        atomrefs=atomrefs,
        source_metrics=by_label[step0["source"]],
        source_predictions=pd.read_csv(step0["predictions"]),
        own_metrics=by_label,
        zero_shot_atomref=zero_shot,
    )
    own = {before_training.step0_label(m) for m in before_training.OWN_STEP0}
    kept = [row for row in rows if row["model"] not in own]
    ordered: list[dict[str, Any]] = []
    for row in kept:
        ordered.append(row)
        ordered += [d for d in derived if d["model"] == before_training.step0_label(row["model"])]
    return ordered + [d for d in derived if d["stage"] == "zero-shot"]


def table1(
    *,
    metrics: Sequence[PathLike],
    provenance: PathLike,
    training: Mapping[str, Any],
    out_csv: PathLike,
    out_markdown: PathLike,
    histories: Sequence[PathLike] = (),
    step0: Mapping[str, Any] | None = None,
    retention: Sequence[PathLike] = (),
) -> pd.DataFrame:
    """Collect every model's metrics into Table 1: CSV, and markdown beside the paper's numbers.

    Args:
        metrics: The ``metrics.json`` of each model (:func:`evaluate_model`), in row order.
        histories: The ``history.csv`` of each trained method (its folder is named after the
            method): the rows of models that training did not change are flagged.
        provenance: The dataset's ``provenance.json`` (its banner and caveat head the markdown).
        training: The config's ``training`` block, summarised under the banner.
        out_csv, out_markdown: Where the table goes.
        step0: Inputs of the before-training rows (:func:`_with_step0_rows`); None: none.
        retention: The ``retention.json`` of models with a retention report
            (:mod:`mlip_transfer.transfer.retention`): their rows gain its columns.

    Returns:
        The table written to ``out_csv``.
    """
    rows = [json.loads(Path(path).read_text()) for path in metrics]
    by_method = {Path(path).parent.name: path for path in histories}
    # The trained methods: the config's list, else those with a training history.
    methods = training.get("methods") or list(by_method)
    for row in rows:
        row["flags"] = _flags(row, by_method.get(row["model"]))
        row["stage"] = _stage(row["model"], methods)
    if step0 is not None:
        rows = _with_step0_rows(rows, methods=methods, step0=step0)
    reports = [json.loads(Path(path).read_text()) for path in retention]
    table = paper_table.table1(
        rows + retention_table.table1_rows(reports, {row["model"] for row in rows}))
    write_csv_atomic(out_csv, table, index=False)
    source = DataSource.read(Path(provenance).parent)
    header = [
        "# Table 1: test-split errors and stability of each model",
        "",
        f"**{source.banner}.** {source.caveat}",
        "",
        _training_sentence(training),
        "",
        *_relaxation_sentence(rows),
        *retention_table.table1_sentence(reports),
    ]
    markdown = "\n".join([*header, ""]) + paper_table.table1_markdown(table) + "\n"
    write_text_atomic(out_markdown, markdown)
    logger.info("\n%s", table.to_string())
    return table


def train_method(
    *,
    frames: str | Path,
    split: str | Path,
    method: str,
    out_dir: str | Path,
    training: Mapping[str, Any],
    threads: int = 1,
) -> TrainResult:
    """Train one transfer method (1-4, 4r) from the source CHGNet on the target training split.

    Args:
        frames, split: The dataset's frames file and split table.
        method: One of :data:`~mlip_transfer.transfer.methods.METHODS`.
        out_dir: Where :func:`~mlip_transfer.transfer.trainer.train` writes (and resumes).
        training: The config's ``training`` section.
        threads: torch threads.
    """
    import torch

    from mlip_transfer.transfer.gradients import GradientRecorder
    from mlip_transfer.transfer.methods import build_model
    from mlip_transfer.transfer.settings import TrainSettings
    from mlip_transfer.transfer.trainer import train

    torch.set_num_threads(threads)
    grouped = frames_by_split(iter_frames(frames), read_split(split),
                              functional=training["functional"])
    # The AtomRef fits (Methods 1, 4, 4r) use the whole training split, as the paper's do; only
    # the GNN trains on the capped subset.
    subset = grouped["train"]
    if training["max_train_frames"] is not None:
        subset = seeded_subset(subset, training["max_train_frames"], seed=training["seed"])
    validation = capped_validation(grouped["val"], training)
    logger.info("%d training frames (AtomRef fits: all %d), %d of %d validation frames",
                len(subset), len(grouped["train"]), len(validation), len(grouped["val"]))
    settings = TrainSettings.from_config(training)
    model, info = build_model(
        method,
        train_frames=grouped["train"],
        source_model_name=training["source_model"],
        seed=training["seed"],
    )
    info["n_atomref_frames"], info["n_train_frames"] = len(grouped["train"]), len(subset)
    logger.info("start: %s", json.dumps(info, default=str)[:2000])
    return train(
        model=model,
        train_frames=subset,
        val_frames=validation,
        method=method,
        out_dir=Path(out_dir),
        settings=settings,
        gradients=GradientRecorder(max_steps=training.get("gradient_steps")),  # Fig. 3a
        info=info,
    )


def gradient_ablation(
    *,
    frames: PathLike,
    split: PathLike,
    summaries: Sequence[PathLike],
    out_table: PathLike,
    out_summary: PathLike,
    training: Mapping[str, Any],
    ablation: Mapping[str, Any],
    threads: int = 1,
) -> dict[str, Any]:
    """Rule ``gradient_ablation``: which setting gives the paper's ≥ 10x gradient ratio.

    Writes every variant's gradient statistics (``out_table``) and the ratios, the numbers
    behind the answer and its sentence (``out_summary``); see
    :mod:`mlip_transfer.transfer.ablation`. ``summaries``: the trainings' ``train_summary.json``
    (their AtomRefs; a folder is named after its method).
    """
    import pandas as pd
    import torch

    from mlip_transfer.transfer import ablation as variants
    from mlip_transfer.transfer import ablation_summary
    from mlip_transfer.transfer.graphs import shared_graph_cache
    from mlip_transfer.transfer.models import load_chgnet

    torch.set_num_threads(threads)
    settings = variants.AblationSettings.from_config(ablation, training=training)
    train = frames_by_split(iter_frames(frames), read_split(split),
                            functional=training["functional"])["train"]
    source = load_chgnet(training["source_model"])
    by_method = {Path(p).parent.name: json.loads(Path(p).read_text()) for p in summaries}
    atomrefs = variants.ablation_atomrefs(source, train, by_method)
    cache = shared_graph_cache(source.graph_converter)
    table = pd.concat([variants.static_gradients(source, atomrefs, train, settings, cache=cache),
                       variants.dynamic_gradients(source, atomrefs, train, settings, cache=cache)],
                      ignore_index=True)
    write_csv_atomic(out_table, table, index=False)
    ratios = ablation_summary.ratios(table)
    setting = ablation_summary.training_setting(training)
    per_step = ablation_summary.dynamic_ratio_per_step(table)
    result = {**ablation_summary.answer(ratios, setting=setting, per_step=per_step), "ratios": ratios.to_dict("records"),
              "atomrefs": sorted(atomrefs), "settings": {
                  "batches": settings.batches, "batch_sizes": list(settings.batch_sizes),
                  "dynamic_steps": settings.dynamic_steps, "n_train_frames": len(train)}}
    write_json_atomic(out_summary, result, default=str)
    logger.info("%s", result["sentence"])
    return result
