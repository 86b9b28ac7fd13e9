"""Stability evaluation (failed relaxations, decomposition and formation energies) and Table 1.

The paper relaxes every material with every model and compares the model's hull with the
r2SCAN DFT hull. Here only the test-split materials are relaxed by each model
(:func:`mlip_transfer.transfer.relaxation.relax_structures`); the competing non-test materials enter the
model's hull with the model's *static* energies on the reference relaxed structures
(:func:`static_energies`). Deviation from the paper, made because relaxing every material with
every model is too slow on 2 CPU cores: a competitor's model energy lacks the (small, negative)
relaxation energy of the model's own minimum, which biases its hull slightly upward.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Structure
from tqdm import tqdm

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale import energies
from mlip_transfer.transfer.models import load_chgnet
from mlip_transfer.transfer.relaxation import FAILURE_REASONS, failure_counts

logger = logging.getLogger("mlip_transfer.transfer.evaluation")

COMPETITOR_DEVIATION = (
    "non-test competitors on the model's hull use the model's static energies on the reference "
    "relaxed structures (the paper relaxed every material with every model)"
)


# --------------------------------------------------------------------------- static energies


def static_energies(
    model: Any,
    structures: Mapping[str, Structure],
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, float]:
    """The model's energy per atom (eV/atom) of each structure as given, without relaxing.

    Used for the competing (non-test) materials of the model's hull; see the module docstring
    for why this deviates from the paper. Structures CHGNet cannot convert to a graph (an atom
    more than 6 Å from any neighbour) or predict get NaN, which the hull code skips.

    Args:
        model: A CHGNet instance, or a model file or name (see
            :func:`mlip_transfer.transfer.models.load_chgnet`).
        structures: Material id -> structure.
        batch_size: Prediction batch size (keep <= 16 on a 24 GB machine).
        progress: Show a progress bar over batches.

    Returns:
        Material id -> energy per atom, in the order of ``structures``.
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_chgnet(model)
    converter = model.graph_converter
    graphs, ids = [], []
    result = {str(mid): math.nan for mid in structures}
    for mid, structure in structures.items():
        try:
            graphs.append(converter(structure, graph_id=str(mid)))
            ids.append(str(mid))
        except Exception as exc:  # noqa: BLE001 - one bad structure gives NaN, not a crash
            logger.warning("no static energy for %s: %s: %s", mid, type(exc).__name__, exc)
    starts = range(0, len(graphs), batch_size)
    for start in tqdm(starts, desc="static energies", unit="batch", disable=not progress):
        chunk = graphs[start:start + batch_size]
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
            predictions = model.predict_graph(chunk, task="e", batch_size=batch_size)
        if isinstance(predictions, dict):
            predictions = [predictions]
        for mid, prediction in zip(ids[start:start + batch_size], predictions):
            result[mid] = float(np.asarray(prediction["e"]))
    return result


# --------------------------------------------------------------------------- stability


def _reference_rows(reference_materials: pd.DataFrame, functional: str | None) -> pd.DataFrame:
    table = reference_materials
    if "functional" in table.columns:
        if functional is not None:
            table = table[table["functional"] == functional]
        elif table["functional"].nunique() > 1:
            raise DataError(
                f"reference table holds functionals {sorted(table['functional'].unique())}; "
                "pass functional=",
                field="functional",
            )
    if table.empty:
        raise DataError(f"reference table has no rows for functional {functional!r}")
    table = table.assign(material_id=table["material_id"].astype(str))
    if table["material_id"].duplicated().any():
        raise DataError("material appears twice in the reference table",
                        record=table.loc[table["material_id"].duplicated(), "material_id"].iloc[0])
    return table


def evaluate_stability(
    *,
    model_label: str,
    relaxed: pd.DataFrame,
    reference_materials: pd.DataFrame,
    test_ids: Iterable[str],
    competitor_energies: Mapping[str, float],
    functional: str | None = None,
    energy_column: str = "relaxed_energy_per_atom",
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Failed relaxations, decomposition-energy MAE and formation-energy MAE of one model.

    The model's energies: its relaxed energy for every test material whose relaxation did not
    fail (unconverged ones kept, as flagged by the relaxation), and ``competitor_energies`` for
    the rest. The reference energies: ``energy_column`` of ``reference_materials``. Both hulls
    are built from the same materials (those with a finite energy on both sides); see
    :func:`mlip_transfer.energy_scale.energies.decomposition_energy_errors`.

    Competitor energies are meant to be the model's static energies on the reference relaxed
    structures (:func:`static_energies`), a deviation from the paper, which relaxed every
    material with every model (see the module docstring). They may include test ids: a
    failed test relaxation then still has the model's static energy on the hull (as a
    competitor, not scored); without one, the failed material is left out of both hulls.

    Args:
        model_label: Name of the model (Table 1 row).
        relaxed: :func:`mlip_transfer.transfer.relaxation.relax_structures` output for (at least) the
            test materials.
        reference_materials: Canonical materials table (``dataset.MATERIAL_COLUMNS``) of the
            target functional, or of several with ``functional`` naming the target.
        test_ids: Test-split material ids. Decomposition energies are scored on those with more
            than one element whose relaxation did not fail.
        competitor_energies: Material id -> the model's energy per atom for non-test materials
            (elemental references included).
        functional: The target functional's rows of ``reference_materials`` (e.g. ``"r2scan"``).
        energy_column: Reference energy-per-atom column.

    Returns:
        ``(summary, per_material)``. ``summary`` keys: ``model``, ``n_relaxed``, ``n_failed``,
        ``failed_<reason>`` for each of ``relaxation.FAILURE_REASONS``, ``n_unconverged``,
        ``decomposition_energy_mae_mev`` and ``n_decomposition`` (test materials),
        ``stability_agreement`` (fraction of them on the same side of both hulls),
        ``formation_energy_mae_test_mev`` / ``n_formation_test`` (test materials),
        ``formation_energy_mae_mev`` / ``n_formation`` (every compound with energies on both
        sides, test relaxed plus competitors static: the paper's "all ids" set), and
        ``deviation``. ``per_material``: one row per test id with its relaxation outcome,
        both energies, decomposition and formation energies and their errors (eV/atom).

    Raises:
        DataError: A test id has no relaxation row or no reference row, the reference table is
            ambiguous, or an element lacks a reference on either side.
    """
    reference = _reference_rows(reference_materials, functional)
    reference_energies = dict(zip(reference["material_id"], reference[energy_column].astype(float)))
    formulas = dict(zip(reference["material_id"], reference["formula"].astype(str)))
    tests = list(dict.fromkeys(str(mid) for mid in test_ids))
    unknown = [mid for mid in tests if mid not in formulas]
    if unknown:
        raise DataError(f"{len(unknown)} test ids are not in the reference table",
                        record=unknown[0])
    rows = relaxed.assign(material_id=relaxed["material_id"].astype(str)).set_index("material_id")
    missing = [mid for mid in tests if mid not in rows.index]
    if missing:
        raise DataError(f"{len(missing)} test ids have no relaxation", record=missing[0])
    rows = rows.loc[tests]

    model_energies = {str(k): float(v) for k, v in competitor_energies.items()}
    ok = rows[~rows["failed"].astype(bool)]
    model_energies.update({mid: float(e) for mid, e in ok["energy_per_atom"].items()})
    targets = [mid for mid in ok.index if len(Composition(formulas[mid]).elements) > 1]

    decomposition = energies.decomposition_energy_errors(
        model_energies, reference_energies, materials=formulas, targets=targets
    )
    formation_test = energies.formation_energy_errors(
        model_energies, reference_energies, materials=formulas, targets=targets
    )
    formation_all = energies.formation_energy_errors(
        model_energies, reference_energies, materials=formulas
    )
    counts = failure_counts(rows.reset_index())
    table = decomposition.table
    summary: dict[str, Any] = {
        "model": model_label,
        "n_relaxed": len(rows),
        "n_failed": int(rows["failed"].astype(bool).sum()),
        **{f"failed_{reason}": counts[reason] for reason in FAILURE_REASONS},
        "n_unconverged": counts["not_converged"],
        "decomposition_energy_mae_mev": decomposition.mae_mev,
        "n_decomposition": len(table),
        "stability_agreement": (
            float((table["stable_model"] == table["stable_reference"]).mean())
            if len(table) else math.nan
        ),
        "formation_energy_mae_test_mev": formation_test.mae_mev,
        "n_formation_test": len(formation_test.table),
        "formation_energy_mae_mev": formation_all.mae_mev,
        "n_formation": len(formation_all.table),
        "deviation": COMPETITOR_DEVIATION,
    }

    per_material = pd.DataFrame({
        "material_id": tests,
        "formula": [formulas[mid] for mid in tests],
        "failure": [rows.loc[mid, "failure"] for mid in tests],
        "failed": [bool(rows.loc[mid, "failed"]) for mid in tests],
        "converged": [bool(rows.loc[mid, "converged"]) for mid in tests],
        "energy_per_atom_model": [float(rows.loc[mid, "energy_per_atom"]) for mid in tests],
        "energy_per_atom_reference": [reference_energies[mid] for mid in tests],
    })
    per_material = per_material.merge(table.drop(columns="formula"), on="material_id", how="left")
    per_material = per_material.merge(formation_test.table.drop(columns="formula"),
                                      on="material_id", how="left")
    per_material.insert(1, "model", model_label)
    logger.info(
        "%s: %d/%d relaxations failed; decomposition-energy MAE %.2f meV/atom (n=%d), "
        "formation-energy MAE %.2f meV/atom (test, n=%d), %.2f (all, n=%d)",
        model_label, summary["n_failed"], summary["n_relaxed"],
        summary["decomposition_energy_mae_mev"], summary["n_decomposition"],
        summary["formation_energy_mae_test_mev"], summary["n_formation_test"],
        summary["formation_energy_mae_mev"], summary["n_formation"],
    )
    return summary, per_material


# --------------------------------------------------------------------------- Table 1

# Column of Table 1 -> (header, decimals of our values).
TABLE1_METRICS: dict[str, tuple[str, int]] = {
    "energy_mae_mev": ("Energy MAE (meV/atom)", 2),
    "force_mae_mev": ("Force MAE (meV/Å)", 2),
    "stress_mae_gpa": ("Stress MAE (GPa)", 3),
    "magmom_mae": ("Magmom MAE (μB)", 3),
    "decomposition_energy_mae_mev": ("Decomposition-energy MAE (meV/atom)", 2),
    "formation_energy_mae_mev": ("Formation-energy MAE (meV/atom)", 2),
}
TABLE1_COLUMNS = ("model", "paper_row", *TABLE1_METRICS, "n_failed", "n_relaxed")

# Huang et al. 2025 (Table 1, abstract, text), exactly as printed; rows and cells the paper does
# not report are absent, never filled in. "failed_relaxations" is (failed, relaxed).
PAPER_TABLE1: dict[str, dict[str, Any]] = {
    "method1": {"label": "M1 scratch", "energy_mae_mev": 27, "force_mae_mev": 45,
                "stress_mae_gpa": 0.239, "decomposition_energy_mae_mev": 37.44},
    "method2": {"label": "M2 TL, trainable GGA AtomRef", "decomposition_energy_mae_mev": 41.22,
                "formation_energy_mae_mev": 52.43, "failed_relaxations": (40, 34927)},
    "method3": {"label": "M3 TL, frozen GGA AtomRef", "decomposition_energy_mae_mev": 38.54,
                "failed_relaxations": (30, 34927)},
    "method4": {"label": "M4 TL, r2SCAN AtomRef", "energy_mae_mev": 17, "force_mae_mev": 38,
                "decomposition_energy_mae_mev": 23.66, "formation_energy_mae_mev": 29.38},
    "r2scan_reference": {"label": 'CHGNet "r2scan" (paper\'s M4 weights)',
                         "energy_mae_mev": 16.76, "force_mae_mev": 38.46,
                         "stress_mae_gpa": 0.167, "magmom_mae": 0.023},
    "gga_pretrained": {"label": "CHGNet v0.3.0 (GGA/GGA+U)"},
}

_ALIASES = {
    "method1": ("m1", "method1", "scratch", "1"),
    "method2": ("m2", "method2", "2"),
    "method3": ("m3", "method3", "3"),
    "method4": ("m4", "method4", "4"),
    "r2scan_reference": ("r2scan", "r2scanreference", "chgnetr2scan", "r2scanref"),
    "gga_pretrained": ("gga", "ggapretrained", "pretrained", "030", "v030", "chgnet030",
                       "chgnetv030", "source"),
}


def paper_row(label: str) -> str | None:
    """The :data:`PAPER_TABLE1` row of a model label (``"M4"``, ``"method_4"``, ``"r2scan"``).

    Case, spaces, dots, hyphens and underscores are ignored; labels such as ``"method4_residual"``
    (a variant, not the paper's method) match nothing and get ``None``.
    """
    key = "".join(ch for ch in str(label).lower() if ch.isalnum())
    for row, aliases in _ALIASES.items():
        if key in aliases:
            return row
    return None


def table1(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Table 1 from per-model dicts, merged by their ``model`` key.

    Each dict has ``model`` (the row label) and any of the keys of :data:`TABLE1_METRICS`,
    ``n_failed`` and ``n_relaxed`` (from :func:`evaluate_stability`, or from the test-MAE
    module's ``energy_mae_mev``, ``force_mae_mev``, ``stress_mae_gpa``, ``magmom_mae``); other
    keys are ignored. Dicts with the same ``model`` are merged (a later value wins). An optional
    ``paper_row`` key names the :data:`PAPER_TABLE1` row; otherwise :func:`paper_row` guesses it
    from the label.

    Returns:
        One row per model in first-seen order, columns :data:`TABLE1_COLUMNS`; missing values
        are NaN (``paper_row`` None).
    """
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "model" not in row:
            raise DataError("a Table 1 row has no 'model' key", field="model")
        label = str(row["model"])
        target = merged.setdefault(label, {"model": label})
        target.update({k: v for k, v in row.items() if k in TABLE1_COLUMNS and v is not None})
    records = []
    for label, values in merged.items():
        record = {column: values.get(column, math.nan) for column in TABLE1_COLUMNS}
        record["paper_row"] = values.get("paper_row") or paper_row(label)
        records.append(record)
    table = pd.DataFrame(records, columns=list(TABLE1_COLUMNS))
    for column in (*TABLE1_METRICS, "n_failed", "n_relaxed"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    table["paper_row"] = table["paper_row"].astype(object).where(table["paper_row"].notna(), None)
    return table


def _fmt(value: Any, decimals: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{float(value):.{decimals}f}"


def _paper_fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return f"{value[0]:,}/{value[1]:,}"
    return f"{value:g}"


def table1_markdown(df: pd.DataFrame, paper: Mapping[str, Mapping[str, Any]] = PAPER_TABLE1) -> str:
    """Table 1 as markdown, each metric beside the paper's value for the same row.

    Paper cells the paper does not report, and our cells we did not compute, are blank.
    """
    headers = ["Model", "Paper row"]
    for header, _ in TABLE1_METRICS.values():
        headers += [header, "paper"]
    headers += ["Failed relaxations", "paper"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in df.itertuples(index=False):
        key = row.paper_row if isinstance(row.paper_row, str) else None
        reported = paper.get(key, {}) if key else {}
        cells = [str(row.model), str(reported.get("label", key or "")) if key else ""]
        for column, (_, decimals) in TABLE1_METRICS.items():
            cells += [_fmt(getattr(row, column), decimals), _paper_fmt(reported.get(column))]
        failed = (
            f"{int(row.n_failed):,}/{int(row.n_relaxed):,}"
            if np.isfinite(row.n_failed) and np.isfinite(row.n_relaxed) else ""
        )
        cells += [failed, _paper_fmt(reported.get("failed_relaxations"))]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Paper: Huang et al. 2025 (Table 1 and text); a blank paper cell is a value the paper "
        "does not report. Our MAEs are on this run's test split, so they are not expected to "
        "match the paper's scale."
    )
    return "\n".join(lines) + "\n"
