"""One function per workflow job of the density stage; the Snakemake scripts only call these.

Each takes plain paths and settings, so a user's own script (or a test) runs the same steps.
Only ``density_model`` relaxes, so only it imports the relaxation code (ASE's optimizers).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlip_transfer.core import flags
from mlip_transfer.core.files import write_csv_atomic
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.density import benchmark

logger = logging.getLogger("mlip_transfer.density.jobs")

PathLike = str | os.PathLike


def fetch_mp_density_structures(*, experimental_csv: PathLike, out: PathLike) -> list[dict]:
    """Fetch structures of the benchmark solids (ICSD-sourced materials) from the MP API, once.

    Args:
        experimental_csv: The experimental table; its ``system`` and ``structure`` (prototype)
            columns say which formulas to fetch and which space group each must have.
        out: The cache (gzip JSON when the name ends in .gz), missing solids listed in it.

    Returns:
        The documents found, one per solid.
    """
    table = pd.read_csv(experimental_csv, dtype=str)
    wanted = dict(zip(table["system"].str.strip(), table["structure"].str.strip().str.lower()))
    docs = benchmark.fetch_mp_structures(wanted)
    benchmark.save_mp_structures(out, docs, requested=list(wanted))
    logger.info("%d of %d solids found", len(docs), len(wanted))
    return docs


def _reference_solids(path: PathLike, density: Mapping[str, Any]) -> pd.DataFrame:
    """The solids to relax: the cached MP structures or the experimental table's prototypes."""
    if density["structures"] == "mp_api":
        reference = benchmark.mp_reference_table(path)
        if density["systems"]:
            reference = reference[reference["system"].isin(density["systems"])]
        return reference
    return benchmark.read_experimental(path, systems=density["systems"])


def density_model(
    *,
    label: str,
    model: PathLike,
    reference: PathLike,
    out_table: PathLike,
    out_relaxed: PathLike,
    density: Mapping[str, Any],
    processes: int = 1,
) -> pd.DataFrame:
    """Relax the strained benchmark solids with one model and compare densities with experiment.

    Args:
        label: Model label written into every row.
        model: A trained model file or a CHGNet model name.
        reference: The experimental CSV, or the MP cache when ``density["structures"]`` is
            ``"mp_api"``.
        out_table, out_relaxed: Where the density comparison and the relaxations go.
        density: The config's ``density`` block (``structures``, ``systems``, ``strain``,
            ``fmax``, ``max_steps``).
        processes: Spawned relaxation workers (1: in this process).

    Returns:
        The table written to ``out_table`` (:func:`mlip_transfer.density.benchmark.density_table`).
    """
    from mlip_transfer.transfer.relaxation import relax_structures

    solids = _reference_solids(reference, density)
    starts = {
        row.system: benchmark.strained(row.structure, density["strain"])
        for row in solids.itertuples(index=False)
    }
    relaxed = relax_structures(
        starts,
        model_path_or_name=model,
        fmax=density["fmax"],
        max_steps=density["max_steps"],
        processes=processes,
    )
    write_csv_atomic(out_relaxed, relaxed, index=False)
    table = benchmark.density_table(relaxed, solids, model=label)
    write_csv_atomic(out_table, table, index=False)
    logger.info("\n%s", table.drop(columns=["model"]).to_string())
    return table


def _density_flags(ratio: float, table: pd.DataFrame, strain: float | None) -> str:
    relaxed = table[~table["failed"].astype(bool)]
    return flags.flag_text([
        flags.relaxations_without_step(relaxed["n_steps"], what="density relaxations"),
        None if strain is None else flags.at_strained_start(ratio, strain=strain),
    ])


def _with_step0(summary: pd.DataFrame, step0_models: Mapping[str, str]) -> pd.DataFrame:
    """``step0_model``, ``step0_density_mae`` and ``step0_ratio_median`` beside each trained
    model's row (empty for models without a step 0 among the summary's)."""
    by_model = summary.set_index("model")
    step0 = [step0_models.get(model) for model in summary["model"]]
    present = [m if m in by_model.index else None for m in step0]
    summary["step0_model"] = [m or "" for m in present]
    for column in ("density_mae", "ratio_median"):
        summary[f"step0_{column}"] = [
            by_model.loc[m, column] if m else math.nan for m in present
        ]
    return summary


def density_summary(
    *,
    tables: Sequence[PathLike],
    provenance: PathLike,
    structures: str,
    out_table: PathLike,
    out_summary: PathLike,
    strain: float | None = None,
    step0_models: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Collect every model's densities: one long table and the MAE / ratio summary per model.

    A model's ``flags`` name relaxations that took no step, and a median ratio at the strained
    start's ``(1 + strain)^3`` (:mod:`mlip_transfer.core.flags`): such densities say nothing
    about the model.

    Args:
        tables: Each model's :func:`density_model` table.
        strain: The lattice strain of the starting structures (``density.strain``).
        provenance: The training dataset's ``provenance.json``, named in the summary.
        structures: Where the reference structures came from (``density.structures``).
        out_table, out_summary: Where the long table and the per-model summary go.
        step0_models: Trained model -> the model that is its step 0 (``1_scratch_step0``; the
            source model for the transfer methods, whose AtomRef does not change a
            relaxation): its MAE and median ratio go beside the trained row (``step0_*``).

    Returns:
        The summary written to ``out_summary``.
    """
    frames = [pd.read_csv(path) for path in tables]
    write_csv_atomic(out_table, pd.concat(frames, ignore_index=True), index=False)
    summary = pd.DataFrame([benchmark.density_summary(table) for table in frames])
    summary["flags"] = [_density_flags(row.ratio_median, table, strain)
                        for row, table in zip(summary.itertuples(), frames, strict=True)]
    summary = _with_step0(summary, step0_models or {})
    # Where the reference densities come from (MP's are DFT, not experiment), and what the
    # models were trained on.
    summary["training_data"] = DataSource.read(Path(provenance).parent).name
    summary["structures"] = structures
    summary["reference"] = benchmark.REFERENCES.get(structures, structures)
    write_csv_atomic(out_summary, summary, index=False)
    logger.info("\n%s", summary.to_string())
    return summary
