"""One function per workflow job of the data stage (``workflow/rules/data.smk``).

Each takes plain paths and settings, so a user's own script (or a test) runs the same steps as
the Snakemake scripts, which only call these.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlip_transfer.core.files import atomic_path, write_json_atomic
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.core.registry import download, load_registry
from mlip_transfer.data.dataset import read_materials
from mlip_transfer.data.filters import FilterConfig
from mlip_transfer.data.loaders.mp_api import fetch_thermo_for_trajectory_file
from mlip_transfer.data.report import ParseReport
from mlip_transfer.data.split import split_materials, write_split
from mlip_transfer.data.summary import dataset_statistics, frame_table

logger = logging.getLogger("mlip_transfer.data.jobs")

REGISTRY = Path("resources/registry.yaml")


def download_registry_file(
    *, entry: str, out: str | Path, registry: str | Path = REGISTRY
) -> None:
    """Rules ``download_mp_r2scan`` and ``download_mptrj``: fetch one registry file to ``out``,
    kept only if its size and checksum verify."""
    download(load_registry(registry)[entry], out)


def fetch_mp_thermo(*, r2scan_json: str | Path, out: str | Path) -> Path:
    """Rule ``fetch_mp_thermo``: cache the MP thermo docs the trajectory file's materials need."""
    return fetch_thermo_for_trajectory_file(r2scan_json, out)


def build_default_dataset(
    *,
    wbm: str | Path,
    elements: str | Path,
    out_dir: str | Path,
    settings: Mapping[str, Any],
    processes: int,
) -> dict[str, Any]:
    """Rule ``build_default_dataset``: rebuild the surrogate default dataset into ``out_dir``.

    Args:
        wbm: WBM records (json.gz).
        elements: MatPES-PBE elemental references (json.gz).
        out_dir: Output folder.
        settings: :class:`~mlip_transfer.data.surrogate.BuildSettings` fields (config ``build``);
            ``processes`` replaces their ``processes``.
        processes: Worker processes (the rule's threads). They are spawned, which re-imports the
            calling script: call this only under ``if __name__ == "__main__":``.

    Returns:
        The build summary.
    """
    # Imported here: it pulls in pymatgen and, in the workers, CHGNet.
    from mlip_transfer.data.surrogate import BuildSettings, build_surrogate_dataset

    summary = build_surrogate_dataset(
        wbm_path=wbm,
        elemental_path=elements,
        out_dir=out_dir,
        settings=BuildSettings(**{**settings, "processes": processes}),
    )
    logger.info("built: %s", summary)
    return summary


def source_settings(
    source: str,
    *,
    default: Mapping[str, Any],
    mp: Mapping[str, Any],
    extxyz: Mapping[str, Any],
    default_folder: str | Path,
) -> dict[str, Any]:
    """The settings of the configured ``source`` (see :mod:`mlip_transfer.data.parse`)."""
    if source == "default":
        return {"path": default_folder, "max_materials": default.get("max_materials"),
                "teacher": default.get("teacher")}
    if source == "mp":
        return dict(mp)
    return dict(extxyz)


def parse_dataset(
    *,
    source: str,
    default: Mapping[str, Any],
    mp: Mapping[str, Any],
    extxyz: Mapping[str, Any],
    filters: Mapping[str, Any],
    default_folder: str | Path,
    out_dir: str | Path,
) -> ParseReport:
    """Rule ``parse_dataset``: parse the configured source into ``out_dir`` with the filters.

    Args:
        source: ``default``, ``mp`` or ``extxyz``.
        default, mp, extxyz: The config sections of the three sources.
        filters: The config's ``filters`` section.
        default_folder: The folder of the default dataset (shipped or rebuilt).
        out_dir: The dataset folder.

    Returns:
        The parse report (its summary is logged by the parse).
    """
    from mlip_transfer.data.parse import parse_dataset as parse_source  # only this job parses

    settings = source_settings(
        source, default=default, mp=mp, extxyz=extxyz, default_folder=default_folder
    )
    return parse_source(
        source=source,
        settings=settings,
        filters=FilterConfig.from_dict(filters),
        out_dir=out_dir,
    )


def _split_ids(
    material_ids: Sequence[str], materials: pd.DataFrame, settings: Mapping[str, Any]
) -> dict[str, str]:
    """The 8:1:1 split; elemental references may be forced into training."""
    forced = []
    if settings["elemental_references_in_train"]:
        references = set(materials.loc[materials["is_elemental_reference"], "material_id"])
        forced = sorted(references.intersection(material_ids))
    return split_materials(
        material_ids, fractions=tuple(settings["fractions"]), seed=settings["seed"],
        force_train=forced,
    )


def split_dataset(
    *,
    materials: str | Path,
    frames: str | Path,
    provenance: str | Path,
    split: str | Path,
    statistics: str | Path,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Rule ``split_dataset``: split the parsed dataset by material id and write its statistics.

    Args:
        materials, frames, provenance: The parsed dataset's files.
        split: The split CSV to write.
        statistics: The statistics JSON to write.
        settings: The config's ``split`` section (``fractions``, ``seed``,
            ``elemental_references_in_train``).

    Returns:
        The statistics.
    """
    table = read_materials(materials)
    frame_rows = frame_table(frames)
    # Only materials that kept frames are split.
    material_ids = sorted(frame_rows["material_id"].unique())
    assignment = _split_ids(material_ids, table, settings)
    with atomic_path(split) as tmp:
        write_split(tmp, assignment)
    frame_rows["split"] = frame_rows["material_id"].map(assignment)
    stats = {"data_source": DataSource.read(Path(provenance).parent).name}
    stats.update(dataset_statistics(frame_rows, table))
    write_json_atomic(statistics, stats, newline=False)  # as json.dump wrote it: no newline
    logger.info("split: %s", stats["materials_per_split"])
    return stats
