"""Stability evaluation: failed relaxations, decomposition and formation energies of one model.

Table 1, which collects these per model, is :mod:`mlip_transfer.transfer.table1`.

The paper relaxes every material with every model and compares the model's hull with the
r2SCAN DFT hull. Here only the test-split materials are relaxed by each model
(:func:`mlip_transfer.transfer.relaxation.relax_structures`); the competing non-test materials
enter the model's hull with the model's *static* energies on the reference relaxed structures
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
from mlip_transfer.energy_scale import hull_errors
from mlip_transfer.transfer.models import load_chgnet
from mlip_transfer.transfer.relaxation.outcomes import FAILURE_REASONS, failure_counts

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
    :func:`mlip_transfer.energy_scale.hull_errors.decomposition_energy_errors`.

    Competitor energies are meant to be the model's static energies on the reference relaxed
    structures (:func:`static_energies`), a deviation from the paper, which relaxed every
    material with every model (see the module docstring). They may include test ids: a
    failed test relaxation then still has the model's static energy on the hull (as a
    competitor, not scored); without one, the failed material is left out of both hulls.

    Args:
        model_label: Name of the model (Table 1 row).
        relaxed: :func:`mlip_transfer.transfer.relaxation.relax_structures` output for (at
            least) the test materials.
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
    rows = _test_relaxations(relaxed, tests, formulas)

    model_energies = {str(k): float(v) for k, v in competitor_energies.items()}
    ok = rows[~rows["failed"].astype(bool)]
    model_energies.update({mid: float(e) for mid, e in ok["energy_per_atom"].items()})
    targets = [mid for mid in ok.index if len(Composition(formulas[mid]).elements) > 1]
    decomposition = hull_errors.decomposition_energy_errors(
        model_energies, reference_energies, materials=formulas, targets=targets
    )
    formation_test = hull_errors.formation_energy_errors(
        model_energies, reference_energies, materials=formulas, targets=targets
    )
    formation_all = hull_errors.formation_energy_errors(
        model_energies, reference_energies, materials=formulas
    )
    summary = _stability_summary(model_label, rows, decomposition=decomposition,
                                 formation_test=formation_test, formation_all=formation_all)
    per_material = _per_material_table(
        model_label, rows, formulas=formulas, reference_energies=reference_energies,
        hull_tables=(decomposition.table, formation_test.table),
    )
    _log_summary(summary)
    return summary, per_material


def _test_relaxations(relaxed: pd.DataFrame, tests: list[str],
                      formulas: Mapping[str, str]) -> pd.DataFrame:
    """The relaxation rows of the test ids, indexed by id, in their order (each id checked)."""
    unknown = [mid for mid in tests if mid not in formulas]
    if unknown:
        raise DataError(f"{len(unknown)} test ids are not in the reference table",
                        record=unknown[0])
    rows = relaxed.assign(material_id=relaxed["material_id"].astype(str)).set_index("material_id")
    missing = [mid for mid in tests if mid not in rows.index]
    if missing:
        raise DataError(f"{len(missing)} test ids have no relaxation", record=missing[0])
    return rows.loc[tests]


def _stability_summary(
    model_label: str,
    rows: pd.DataFrame,
    *,
    decomposition: hull_errors.HullErrors,
    formation_test: hull_errors.HullErrors,
    formation_all: hull_errors.HullErrors,
) -> dict[str, Any]:
    """The summary dict of :func:`evaluate_stability` from the test rows and the hull errors."""
    counts = failure_counts(rows.reset_index())
    table = decomposition.table
    return {
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


def _per_material_table(
    model_label: str,
    rows: pd.DataFrame,
    *,
    formulas: Mapping[str, str],
    reference_energies: Mapping[str, float],
    hull_tables: Sequence[pd.DataFrame],
) -> pd.DataFrame:
    """One row per test id: relaxation outcome, both energies, then the hull tables' columns."""
    tests = list(rows.index)
    per_material = pd.DataFrame({
        "material_id": tests,
        "formula": [formulas[mid] for mid in tests],
        "failure": [rows.loc[mid, "failure"] for mid in tests],
        "failed": [bool(rows.loc[mid, "failed"]) for mid in tests],
        "converged": [bool(rows.loc[mid, "converged"]) for mid in tests],
        "energy_per_atom_model": [float(rows.loc[mid, "energy_per_atom"]) for mid in tests],
        "energy_per_atom_reference": [reference_energies[mid] for mid in tests],
    })
    for table in hull_tables:
        per_material = per_material.merge(table.drop(columns="formula"), on="material_id",
                                          how="left")
    per_material.insert(1, "model", model_label)
    return per_material


def _log_summary(summary: Mapping[str, Any]) -> None:
    logger.info(
        "%s: %d/%d relaxations failed; decomposition-energy MAE %.2f meV/atom (n=%d), "
        "formation-energy MAE %.2f meV/atom (test, n=%d), %.2f (all, n=%d)",
        summary["model"], summary["n_failed"], summary["n_relaxed"],
        summary["decomposition_energy_mae_mev"], summary["n_decomposition"],
        summary["formation_energy_mae_test_mev"], summary["n_formation_test"],
        summary["formation_energy_mae_mev"], summary["n_formation"],
    )
