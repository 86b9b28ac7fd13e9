"""Table 1's before-training rows: every method's model at step 0, and the zero-shot model.

Methods 2, 3, 4 and 4r start from the source model's GNN and differ at step 0 only in their
AtomRef. The AtomRef term is linear in composition, so it cancels in forces, stresses,
magnetic moments, relaxations, decomposition and formation energies: at step 0 all of those
are the source model's, and only the energy MAE differs. It is computed exactly by swapping
the AtomRef in the source model's per-frame test predictions (:func:`swapped_energy_mae_mev`).
Method 1's step 0 (a random GNN) shares nothing with the source and is evaluated from its own
``model_step0.pt``. The zero-shot row is the source model with CHGNet's shipped MP-r2SCAN
AtomRef, untrained: what the paper's transfer starts from before any r2SCAN data.

No torch here: the rows are built from the files the evaluation and the trainings wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError

logger = logging.getLogger("mlip_transfer.transfer.step0")

STEP0_SUFFIX = "_step0"
ZERO_SHOT = "zero_shot_r2scan_atomref"
# Methods whose step-0 model is its own network (evaluated from model_step0.pt).
OWN_STEP0 = ("1_scratch",)
# Metrics that do not depend on the AtomRef (copied from the source model at step 0).
_ATOMREF_FREE = (
    "force_mae_mev", "stress_mae_gpa", "magmom_mae", "decomposition_energy_mae_mev",
    "formation_energy_mae_mev", "n_failed", "n_relaxed", "n_relaxations_without_step",
)
PREDICTION_COLUMNS = ("frame_id", "composition", "energy_label", "energy_pred", "energy_atomref")


def step0_label(method: str) -> str:
    """The Table 1 label of a method's step-0 row (``4_refit_atomref_step0``)."""
    return f"{method}{STEP0_SUFFIX}"


def _counts(composition: str, *, record: str) -> dict[str, int]:
    try:
        return {el: int(n) for el, n in (item.split(":") for item in composition.split())}
    except ValueError:
        raise DataError(f"composition {composition!r} is not 'El:n El:n'", record=record,
                        field="composition") from None


def swapped_energy_mae_mev(
    predictions: pd.DataFrame, atomref: Mapping[str, float], *, file: str | None = None
) -> tuple[float, list[str]]:
    """Energy MAE (meV/atom) of the predicting model with its AtomRef replaced by ``atomref``.

    Args:
        predictions: :func:`mlip_transfer.transfer.metrics.energy_predictions`'s table.
        atomref: Element -> eV/atom. An element it lacks counts 0 eV/atom, as a zero weight in
            a CHGNet composition model does; such elements are returned.
        file: Named in errors.

    Returns:
        ``(mae, elements_without_value)`` over frames with a label and a prediction.

    Raises:
        DataError: A column is missing, or no frame has both a label and a prediction.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions lack columns {missing}", file=file, field=missing[0])
    usable = predictions[np.isfinite(predictions["energy_label"])
                         & np.isfinite(predictions["energy_pred"])]
    if usable.empty:
        raise DataError("no frame has both an energy label and a prediction", file=file)
    lacking: set[str] = set()
    swapped = []
    for row in usable.itertuples(index=False):
        counts = _counts(row.composition, record=row.frame_id)
        lacking |= {el for el in counts if el not in atomref}
        new = sum(n * atomref.get(el, 0.0) for el, n in counts.items()) / sum(counts.values())
        swapped.append(row.energy_pred - row.energy_atomref + new)
    error = np.abs(np.asarray(swapped) - usable["energy_label"].to_numpy())
    return 1000.0 * float(error.mean()), sorted(lacking)


def _derived_row(label: str, stage: str, source: Mapping[str, Any], predictions: pd.DataFrame,
                 atomref: Mapping[str, float], *, what: str) -> dict[str, Any]:
    """A row with the source model's AtomRef-free metrics and the swapped-AtomRef energy MAE."""
    mae, lacking = swapped_energy_mae_mev(predictions, atomref)
    note = f"{what}; all but the energy MAE are {source['model']}'s"
    if lacking:
        note += f"; AtomRef has no value for {', '.join(lacking)} (taken as 0)"
        logger.warning("%s: AtomRef has no value for %s", label, ", ".join(lacking))
    row = {key: source.get(key) for key in _ATOMREF_FREE}
    return {"model": label, "paper_row": None, "stage": stage, "energy_mae_mev": mae,
            "n_test_frames": source.get("n_test_frames"), **row, "step0_note": note}


def step0_rows(
    *,
    methods: Sequence[str],
    atomrefs: Mapping[str, Mapping[str, float]],
    source_metrics: Mapping[str, Any],
    source_predictions: pd.DataFrame,
    own_metrics: Mapping[str, Mapping[str, Any]],
    zero_shot_atomref: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The step-0 row of each method, then the zero-shot row.

    Args:
        methods: The trained methods, in Table 1 order.
        atomrefs: Method -> its AtomRef at step 0 (``train_summary.json``'s
            ``model_info.atomref``).
        source_metrics, source_predictions: The source model's ``metrics.json`` and
            ``predictions.csv`` (evaluated untrained, with its own AtomRef).
        own_metrics: Step-0 label -> ``metrics.json`` of the methods in :data:`OWN_STEP0`.
        zero_shot_atomref: CHGNet's shipped MP-r2SCAN AtomRef (None: no zero-shot row).

    Raises:
        DataError: A method in :data:`OWN_STEP0` was not evaluated, or another has no AtomRef.
    """
    rows = []
    for method in methods:
        label = step0_label(method)
        if method in OWN_STEP0:
            if label not in own_metrics:
                raise DataError(f"{label} was not evaluated (its model_step0.pt)", record=label)
            rows.append({**own_metrics[label], "model": label, "paper_row": None,
                         "stage": "step 0", "step0_note": "its own model before training"})
            continue
        if method not in atomrefs:
            raise DataError(f"no step-0 AtomRef for {method}", record=method, field="atomref")
        rows.append(_derived_row(label, "step 0", source_metrics, source_predictions,
                                 atomrefs[method], what=f"{method}'s step-0 AtomRef on the "
                                 "source GNN"))
    if zero_shot_atomref is not None:
        rows.append(_derived_row(ZERO_SHOT, "zero-shot", source_metrics, source_predictions,
                                 zero_shot_atomref, what="shipped MP-r2SCAN AtomRef on the "
                                 "source GNN, untrained"))
    return rows
