"""Before fine-tuning: does the source model's AtomRef match the target labels' energy scale?

The paper's finding (Method 4) is that a pretrained model must have its AtomRef replaced by one
on the target functional's scale before its GNN is fine-tuned; otherwise the first epochs
spend huge gradients undoing a ~10 eV/atom offset. :func:`diagnose` measures that offset on
the user's own target frames with the source model's energy predictions, and compares it with
what an Eq.-2 refit AtomRef and a residual-fitted shift (Eq. 3 estimated directly) would leave.

All MAEs are in-sample: the AtomRefs are fitted to the same frames they are scored on, as one
would fit them on the training split before fine-tuning.

With ``per_element`` set, the report also carries an
:class:`~mlip_transfer.energy_scale.element_report.ElementReport`: per element, bootstrap
intervals of both shifts, collinearity and settings-mismatch flags, and a recommendation. The
residual-fit shift is the same idea as MACE's ``--E0s estimated`` and DeePMD's ``dp change-bias``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Element

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import Frame, display_name
from mlip_transfer.energy_scale.atomref import AtomRefFit, fit_atomref, fit_residual_shift
from mlip_transfer.energy_scale.chgnet_atomref import ZERO_WEIGHT, model_atomref_vector
from mlip_transfer.energy_scale.compositions import composition_matrix
from mlip_transfer.energy_scale.correlation import pearson
from mlip_transfer.energy_scale.element_report import (
    ElementCriteria,
    ElementReport,
    element_report,
)

log = logging.getLogger(__name__)

# The source AtomRef "already matches" below this MAE, or within this factor of a refit's.
MATCH_MAE = 0.05  # eV/atom
MATCH_FACTOR = 1.5
# Recommend the residual fit over Eq. 2 when it leaves less than this fraction of Eq. 2's MAE.
RESIDUAL_BETTER = 0.75


@dataclass(frozen=True, kw_only=True)
class DiagnoseReport:
    """What the source model would see on the target frames, in eV/atom.

    Attributes:
        model: Label of the source model.
        functional: Functional id of the target frames (or None if unlabelled/mixed-free).
        n_frames, n_materials, n_elements: Size of the data diagnosed.
        elements: Elements present, by atomic number.
        n_covered: Frames whose elements the refit determines (MAEs after refit, and the
            referenced ρ, are computed on these).
        rho_raw: Pearson ρ, source prediction vs target label (None if undefined).
        rho_referenced: ρ after subtracting the source AtomRef from predictions and the refit
            target AtomRef from labels.
        mean_offset_source: Mean of label − prediction with the source AtomRef.
        mae_source: MAE with the source AtomRef as is.
        mae_refit: MAE with the Eq.-2 refit AtomRef swapped in.
        mae_residual: MAE with the source AtomRef plus the residual-fitted shift.
        shifts: The ``top`` elements by |refit − source|: element, count, source, refit,
            shift, residual_shift.
        missing: Element -> reason, for elements the refit cannot determine.
        source_missing: Elements in the data whose source AtomRef weight is ~0 (never fitted).
        refit: The Eq.-2 fit on the target labels.
        residual_shift: The residual fit (shift to add to the source AtomRef).
        recommendation: Plain-words advice.
        elements_report: The per-element report, when asked for (``per_element``).
    """

    model: str
    functional: str | None
    n_frames: int
    n_materials: int
    n_elements: int
    elements: list[str]
    n_covered: int
    rho_raw: float | None
    rho_referenced: float | None
    mean_offset_source: float
    mae_source: float
    mae_refit: float | None
    mae_residual: float | None
    shifts: list[dict[str, Any]]
    missing: dict[str, str]
    source_missing: list[str]
    refit: AtomRefFit = field(repr=False)
    residual_shift: AtomRefFit = field(repr=False)
    recommendation: str
    elements_report: ElementReport | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (fits as element -> eV/atom)."""
        record = {
            key: getattr(self, key)
            for key in (
                "model", "functional", "n_frames", "n_materials", "n_elements", "elements",
                "n_covered", "rho_raw", "rho_referenced", "mean_offset_source", "mae_source",
                "mae_refit", "mae_residual", "shifts", "missing", "source_missing",
                "recommendation",
            )
        }
        record["refit_atomref"] = dict(self.refit.energies)
        record["refit_rank"] = self.refit.rank
        record["residual_shift"] = dict(self.residual_shift.energies)
        if self.elements_report is not None:
            record["per_element"] = self.elements_report.to_dict()
        return _json_safe(record)

    def to_markdown(self) -> str:
        """A short report: sizes, correlations, MAEs, largest shifts, missing, advice."""
        target = display_name(self.functional) if self.functional else "target"
        lines = [
            f"# AtomRef diagnosis: {self.model} on {target} labels",
            "",
            f"{self.n_frames} frames, {self.n_materials} materials, {self.n_elements} elements "
            f"({self.n_covered} frames covered by the refit AtomRef).",
            "",
            "| quantity | value |",
            "|---|---|",
            f"| Pearson ρ, source prediction vs label | {_fmt(self.rho_raw, '.4f')} |",
            f"| Pearson ρ, after AtomRef referencing | {_fmt(self.rho_referenced, '.4f')} |",
            f"| mean offset, label − prediction (eV/atom) | {_fmt(self.mean_offset_source, '+.4f')} |",
            f"| energy MAE, source AtomRef (eV/atom) | {_fmt(self.mae_source, '.4f')} |",
            f"| energy MAE, refit AtomRef, Eq. 2 (eV/atom) | {_fmt(self.mae_refit, '.4f')} |",
            f"| energy MAE, residual-fitted shift (eV/atom) | {_fmt(self.mae_residual, '.4f')} |",
            "",
            f"MAEs after refitting and the referenced ρ are in-sample (fitted and scored on the "
            f"{self.n_covered} covered frames); the source-AtomRef MAE uses all frames.",
            "",
        ]
        if self.shifts:
            lines += [
                f"Largest reference shifts (refit − source), top {len(self.shifts)}:",
                "",
                "| element | frames | source | refit | refit − source | residual shift |",
                "|---|---|---|---|---|---|",
            ]
            for row in self.shifts:
                lines.append(
                    f"| {row['element']} | {row['count']} | {_fmt(row['source'], '.3f')} | "
                    f"{_fmt(row['refit'], '.3f')} | {_fmt(row['shift'], '+.3f')} | "
                    f"{_fmt(row['residual_shift'], '+.3f')} |"
                )
            lines.append("")
        if self.missing:
            lines.append("Elements the refit cannot determine:")
            lines += [f"- {el}: {why}" for el, why in self.missing.items()]
            lines.append("")
        if self.source_missing:
            lines.append(f"Elements without a source AtomRef (weight ~0): {', '.join(self.source_missing)}")
            lines.append("")
        lines += ["**Recommendation:** " + self.recommendation, ""]
        return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else float(value)
    return value


def _safe_pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    try:
        return pearson(x, y)
    except DataError:  # fewer than 2 points or a constant input: undefined, reported as n/a
        return None


def predict_energy_per_atom(model: Any, frames: list[Frame], *, batch_size: int = 16) -> np.ndarray:
    """Energy per atom predicted by a CHGNet model for each frame (energy only)."""
    structures = [frame.to_structure() for frame in frames]
    with warnings.catch_warnings():  # chgnet's own harmless tensor-to-scalar notice
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
        result = model.predict_structure(structures, task="e", batch_size=batch_size)
    if isinstance(result, dict):  # chgnet returns a bare dict for a single structure
        result = [result]
    return np.array([float(np.asarray(r["e"]).reshape(-1)[0]) for r in result])


def _select(frames: list[Frame], functional: str | None, max_frames: int | None) -> list[Frame]:
    if functional is not None:
        frames = [f for f in frames if f.functional == functional]
        if not frames:
            raise DataError(f"no frames with functional {functional!r}", field="functional")
    else:
        names = sorted({f.functional for f in frames})
        if len(names) > 1:
            raise DataError(f"frames hold functionals {names}; pass functional=", field="functional")
    if not frames:
        raise DataError("no frames to diagnose")
    for frame in frames:
        if frame.energy is None:
            raise DataError("frame has no energy", record=frame.frame_id, field="energy")
    if max_frames is not None and len(frames) > max_frames:
        if max_frames < 1:
            raise DataError(f"max_frames must be positive, got {max_frames}", field="max_frames")
        # Evenly spaced over file order, so a subset still spans the materials.
        keep = np.unique(np.linspace(0, len(frames) - 1, max_frames).round().astype(int))
        frames = [frames[i] for i in keep]
    return frames


def _recommend(
    *, mae_source: float, offset: float, mae_refit: float | None, mae_residual: float | None,
    missing: dict[str, str], n_covered: int, n_frames: int,
) -> str:
    candidates = [m for m in (mae_refit, mae_residual) if m is not None]
    best = min(candidates) if candidates else None
    if best is None:
        text = (
            f"no frame is covered by a refit AtomRef, so no refit can be scored; the source "
            f"AtomRef leaves a {mae_source:.3g} eV/atom offset. Add data that determine every "
            "element (e.g. elemental references) before fine-tuning."
        )
    elif mae_source <= MATCH_MAE or mae_source <= MATCH_FACTOR * best:
        text = (
            f"the source AtomRef already matches the target labels' energy scale "
            f"(MAE {mae_source:.3g} eV/atom; a refit would give {best:.3g}): fine-tune without "
            "replacing it."
        )
    else:
        text = (
            f"refit the AtomRef before fine-tuning: the source AtomRef leaves a "
            f"{mae_source:.3g} eV/atom offset (mean label − prediction {offset:+.3g}); "
            f"with a refit AtomRef (Eq. 2) it is {mae_refit:.3g} eV/atom"
        )
        if mae_residual is not None and mae_residual < RESIDUAL_BETTER * mae_refit:
            text += (
                f", and with the source AtomRef plus a shift fitted to the residual "
                f"(target − source prediction, Eq. 3) it is {mae_residual:.3g} eV/atom: prefer "
                "the residual fit, which is better conditioned on small data"
            )
        text += ". Freeze the new AtomRef and fine-tune the GNN (the paper's Method 4)."
    if missing:
        text += (
            f" {len(missing)} element(s) ({', '.join(missing)}) are not determined by these data "
            f"({n_frames - n_covered} of {n_frames} frames affected): add frames that determine "
            "them, or keep their source value knowingly."
        )
    return text


def _refit_errors(
    matrix: np.ndarray, elements: list[str], *, refit: AtomRefFit, shift: AtomRefFit,
    pred: np.ndarray, source_contrib: np.ndarray, label: np.ndarray,
) -> tuple[float | None, float | None, float | None]:
    """MAE with a refit AtomRef, MAE with the residual shift, and rho of the GNN part against
    the referenced labels, on the frames every element of which the refit covers (the rows
    given); all None when there are none.
    """
    if not len(matrix):
        return None, None, None
    refit_vec = np.array([refit.energies.get(el, np.nan) for el in elements])
    shift_vec = np.array([shift.energies.get(el, np.nan) for el in elements])
    # Missing columns are zero in every covered row; nan_to_num keeps 0 * NaN out.
    refit_contrib = matrix @ np.nan_to_num(refit_vec)
    gnn = pred - source_contrib
    mae_refit = float(np.mean(np.abs(gnn + refit_contrib - label)))
    mae_residual = float(np.mean(np.abs(pred + matrix @ np.nan_to_num(shift_vec) - label)))
    return mae_refit, mae_residual, _safe_pearson(gnn, label - refit_contrib)


def _shift_rows(
    elements: list[str], source: np.ndarray, *, refit: AtomRefFit, shift: AtomRefFit
) -> list[dict[str, Any]]:
    """One row per element (source, refit, their difference, residual shift), largest first."""
    rows = []
    for j, el in enumerate(elements):
        src = float(source[j]) if abs(source[j]) >= ZERO_WEIGHT else None
        new = refit.energies.get(el)
        rows.append({
            "element": el,
            "count": int(refit.counts.get(el, 0)),
            "source": src,
            "refit": new,
            "shift": None if src is None or new is None else new - src,
            "residual_shift": shift.energies.get(el),
        })
    rows.sort(key=lambda r: (r["shift"] is None, -abs(r["shift"] or 0.0), r["element"]))
    return rows


def diagnose(
    *,
    model: Any,
    frames: Iterable[Frame],
    functional: str | None = None,
    batch_size: int = 16,
    max_frames: int | None = None,
    top: int = 10,
    model_label: str | None = None,
    per_element: ElementCriteria | None = None,
    expected_shift: Mapping[str, float] | None = None,
    expected_label: str | None = None,
) -> DiagnoseReport:
    """Compare the source model's energy scale with the target labels.

    Args:
        model: A CHGNet model (the source, e.g. ``CHGNet.load()``).
        frames: Canonical frames with target energies.
        functional: Use only frames of this functional; required if several are present.
        batch_size: Prediction batch size.
        max_frames: Diagnose at most this many frames (evenly spaced over the input order).
        top: How many elements to list by |refit − source|.
        model_label: Name of the model in the report (default: its ``version`` attribute).
        per_element: Also build the per-element report with these settings (None: skip it).
        expected_shift: Element -> shift expected between the two functionals (e.g. MatPES
            r2SCAN − PBE ground states), for the per-element settings-mismatch flag.
        expected_label: Where ``expected_shift`` comes from, for the report.

    Raises:
        DataError: No frames, a frame without energy, or an ambiguous functional.
    """
    frames = _select(list(frames), functional, max_frames)
    ids = [f.frame_id for f in frames]
    label = np.array([f.energy_per_atom for f in frames], dtype=float)
    start = time.perf_counter()
    log.info("predicting energies of %d frames with %s", len(frames), model_label or "the source model")
    pred = predict_energy_per_atom(model, frames, batch_size=batch_size)
    log.info("predicted in %.0f s", time.perf_counter() - start)
    compositions = [f.species for f in frames]
    matrix, elements = composition_matrix(compositions, records=ids)
    weights = model_atomref_vector(model)
    source = np.array([weights[Element(el).Z - 1] for el in elements])
    source_contrib = matrix @ source  # exactly what the model adds (zeros included)

    refit = fit_atomref(compositions, label, records=ids)
    shift = fit_residual_shift(compositions, label, pred, records=ids)
    covered = np.array([all(el in refit.energies for el in set(c)) for c in compositions])
    mae_refit, mae_residual, rho_ref = _refit_errors(
        matrix[covered], elements, refit=refit, shift=shift, pred=pred[covered],
        source_contrib=source_contrib[covered], label=label[covered],
    )
    rows = _shift_rows(elements, source, refit=refit, shift=shift)
    mae_source = float(np.mean(np.abs(pred - label)))
    offset = float(np.mean(label - pred))
    missing = {el: refit.reasons[el] for el in refit.missing}
    elements_report = None
    if per_element is not None:
        elements_report = element_report(
            matrix=matrix, elements=elements, atoms=matrix * np.array([len(c) for c in compositions])[:, None],
            labels=label, predictions=pred, source=source, groups=[f.material_id for f in frames],
            expected=expected_shift, expected_label=expected_label, criteria=per_element,
        )  # fmt: skip
    return DiagnoseReport(
        model=model_label or f"CHGNet {getattr(model, 'version', None) or 'model'}",
        functional=functional if functional is not None else frames[0].functional,
        n_frames=len(frames),
        n_materials=len({f.material_id for f in frames}),
        n_elements=len(elements),
        elements=elements,
        n_covered=int(covered.sum()),
        rho_raw=_safe_pearson(pred, label),
        rho_referenced=rho_ref,
        mean_offset_source=offset,
        mae_source=mae_source,
        mae_refit=mae_refit,
        mae_residual=mae_residual,
        shifts=rows[: max(top, 0)],
        missing=missing,
        source_missing=[el for j, el in enumerate(elements) if abs(source[j]) < ZERO_WEIGHT],
        refit=refit,
        residual_shift=shift,
        recommendation=_recommend(
            mae_source=mae_source, offset=offset, mae_refit=mae_refit, mae_residual=mae_residual,
            missing=missing, n_covered=int(covered.sum()), n_frames=len(frames),
        ),
        elements_report=elements_report,
    )

