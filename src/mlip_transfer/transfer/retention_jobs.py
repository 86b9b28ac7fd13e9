"""Workflow jobs of the retention report (rules ``retention_reference`` and ``retention_model``);
the Snakemake scripts only call these. See :mod:`mlip_transfer.transfer.retention`."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlip_transfer.core.files import write_csv_atomic, write_json_atomic
from mlip_transfer.transfer.retention_settings import RetentionSettings

logger = logging.getLogger("mlip_transfer.transfer.retention_jobs")
PathLike = str | os.PathLike


def settings_from_config(
    evaluation: Mapping[str, Any], training: Mapping[str, Any]
) -> RetentionSettings:
    """:class:`RetentionSettings` of ``evaluation.retention``, seeded by ``training.seed``, at
    the evaluation's batch size."""
    return RetentionSettings.from_config(evaluation["retention"], seed=training["seed"],
                                         batch_size=evaluation["batch_size"])


def retention_reference(
    *,
    frames: PathLike,
    split: PathLike,
    provenance: PathLike,
    out_dir: PathLike,
    evaluation: Mapping[str, Any],
    training: Mapping[str, Any],
    threads: int = 1,
) -> dict[str, Path]:
    """Rule ``retention_reference``: the run's retention reference, written to ``out_dir``.

    The test materials are the evaluation's (``evaluation.max_test_materials``, the same for
    every model); their target-functional frames are relabelled by ``training.source_model``,
    their frames of ``evaluation.retention.source_functional`` kept with their own labels.

    Returns:
        The written files (:data:`~mlip_transfer.transfer.retention.REFERENCE_FILES`).
    """
    import torch

    from mlip_transfer.core.provenance import DataSource
    from mlip_transfer.data.dataset import iter_frames
    from mlip_transfer.data.split import read_split
    from mlip_transfer.transfer.frames import capped_test_materials, frames_by_split
    from mlip_transfer.transfer.models import load_chgnet
    from mlip_transfer.transfer.retention import build_reference

    torch.set_num_threads(threads)
    settings = settings_from_config(evaluation, training)
    every, by_material = list(iter_frames(frames)), read_split(split)
    target = frames_by_split(every, by_material, functional=training["functional"])["test"]
    chosen = set(capped_test_materials({f.material_id for f in target},
                                       evaluation.get("max_test_materials")))
    source = frames_by_split(every, by_material, functional=settings.source_functional)["test"]
    reference = build_reference(
        source_model=load_chgnet(training["source_model"]),
        source_name=training["source_model"],
        test_frames=[f for f in target if f.material_id in chosen],
        source_frames=[f for f in source if f.material_id in chosen],
        settings=settings,
        info={"target_functional": training["functional"],
              "data_banner": DataSource.read(Path(provenance).parent).banner},
    )
    return reference.write(out_dir)


def retention_model(
    *,
    label: str,
    model: PathLike,
    reference_dir: PathLike,
    out_json: PathLike,
    out_dimers: PathLike,
    out_md: PathLike,
    evaluation: Mapping[str, Any],
    training: Mapping[str, Any],
    threads: int = 1,
) -> dict[str, Any]:
    """Rule ``retention_model``: one model's retention report (``retention.json``, its dimer
    curves beside the source model's, its NVT runs).

    Args:
        label: The model's label (its Table 1 row).
        model: A trained model file or a chgnet model name.
        reference_dir: The run's reference (:func:`retention_reference`).
        out_json, out_dimers, out_md: Where the report goes.
        evaluation, training: The config's sections.
        threads: torch threads.
    """
    import torch

    from mlip_transfer.transfer.models import load_chgnet
    from mlip_transfer.transfer.retention import RetentionReference, retention_report

    torch.set_num_threads(threads)
    settings = settings_from_config(evaluation, training)
    summary, curves, md = retention_report(
        label=label, model=load_chgnet(model), reference=RetentionReference.read(reference_dir),
        settings=settings, is_source=str(model) == str(training["source_model"]),
    )
    write_csv_atomic(out_dimers, curves, index=False)
    write_csv_atomic(out_md, md, index=False)
    write_json_atomic(out_json, summary, default=str)
    return summary
