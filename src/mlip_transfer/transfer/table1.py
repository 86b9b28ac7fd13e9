"""Table 1 of the paper: every model's errors and stability, and the paper's own numbers.

Each model's row comes from its ``metrics.json`` (test-split MAEs and
:func:`mlip_transfer.transfer.evaluation.evaluate_stability`); :func:`table1_markdown` sets
each value beside the paper's for the same row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError

# Column of Table 1 -> (header, decimals of our values).
TABLE1_METRICS: dict[str, tuple[str, int]] = {
    "energy_mae_mev": ("Energy MAE (meV/atom)", 2),
    "force_mae_mev": ("Force MAE (meV/Å)", 2),
    "stress_mae_gpa": ("Stress MAE (GPa)", 3),
    "magmom_mae": ("Magmom MAE (μB)", 3),
    "decomposition_energy_mae_mev": ("Decomposition-energy MAE (meV/atom)", 2),
    "formation_energy_mae_mev": ("Formation-energy MAE (meV/atom)", 2),
}
# ``stage``: trained, step 0 (the same model before training) or untrained (a reference model,
# the zero-shot model). ``flags``: what training or relaxation did not change
# (:mod:`mlip_transfer.core.flags`). ``step0_note``: how a before-training row was computed.
# The retention report (issue 18; :mod:`mlip_transfer.transfer.retention`): error on the source
# functional, dimer walls lost, NVT runs stable. Header and decimals of the markdown's columns;
# the rest are in the CSV only (the raw energy MAE mostly restates the change of energy scale).
RETENTION_METRICS: dict[str, tuple[str, int]] = {
    "source_relative_energy_mae_mev": ("Source-fn. relative energy MAE (meV/atom)", 2),
    "source_force_mae_mev": ("Source-fn. force MAE (meV/Å)", 2),
}
RETENTION_COLUMNS = (
    "source_energy_mae_mev", "source_relative_energy_mae_mev", "source_force_mae_mev",
    "source_frames_energy_mae_mev", "source_frames_relative_energy_mae_mev",
    "source_frames_force_mae_mev", "dimer_walls_lost", "n_dimer_elements", "nvt_stable",
    "n_nvt_runs",
)
TABLE1_COLUMNS = ("model", "paper_row", "stage", *TABLE1_METRICS, "n_failed", "n_relaxed",
                  "flags", "step0_note", *RETENTION_COLUMNS)

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
        record["flags"] = values.get("flags") or ""
        record["stage"] = values.get("stage") or ""
        record["step0_note"] = values.get("step0_note") or ""
        records.append(record)
    table = pd.DataFrame(records, columns=list(TABLE1_COLUMNS))
    for column in (*TABLE1_METRICS, "n_failed", "n_relaxed", *RETENTION_COLUMNS):
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


def _count(n: Any, total: Any) -> str:
    """``n/total``, blank where either is missing."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (n, total)):
        return ""
    return f"{int(n)}/{int(total)}"


def table1_markdown(df: pd.DataFrame, paper: Mapping[str, Mapping[str, Any]] = PAPER_TABLE1) -> str:
    """Table 1 as markdown, each metric beside the paper's value for the same row.

    Paper cells the paper does not report, and our cells we did not compute, are blank.
    """
    headers = ["Model", "Stage", "Paper row"]
    for header, _ in TABLE1_METRICS.values():
        headers += [header, "paper"]
    headers += ["Failed relaxations", "paper"]
    retention = "n_dimer_elements" in df and bool(df["n_dimer_elements"].notna().any())
    if retention:
        headers += [header for header, _ in RETENTION_METRICS.values()]
        headers += ["Dimer walls lost", "NVT stable"]
    headers += ["Flags"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in df.itertuples(index=False):
        key = row.paper_row if isinstance(row.paper_row, str) else None
        reported = paper.get(key, {}) if key else {}
        stage = getattr(row, "stage", "") or ""
        cells = [str(row.model), str(stage), str(reported.get("label", key or "")) if key else ""]
        for column, (_, decimals) in TABLE1_METRICS.items():
            cells += [_fmt(getattr(row, column), decimals), _paper_fmt(reported.get(column))]
        failed = (
            f"{int(row.n_failed):,}/{int(row.n_relaxed):,}"
            if np.isfinite(row.n_failed) and np.isfinite(row.n_relaxed) else ""
        )
        cells += [failed, _paper_fmt(reported.get("failed_relaxations"))]
        if retention:
            cells += [_fmt(getattr(row, column), decimals)
                      for column, (_, decimals) in RETENTION_METRICS.items()]
            cells += [_count(row.dimer_walls_lost, row.n_dimer_elements),
                      _count(row.nvt_stable, row.n_nvt_runs)]
        cells += [str(row.flags)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Paper: Huang et al. 2025 (Table 1 and text); a blank paper cell is a value the paper "
        "does not report. Our MAEs are on this run's test split, so they are not expected to "
        "match the paper's scale. A flagged row is not a method's result: training or "
        "relaxation did not change what it reports."
    )
    if "stage" in df and (df["stage"] == "step 0").any():
        lines.append("")
        lines.append(
            "Step-0 rows are each model before its first optimiser step: what training changed "
            "is the difference to the row above. Methods 2, 3, 4 and 4r start from the source "
            "model's GNN and differ only in their AtomRef, which is linear in composition and "
            "cancels in forces, stresses, magmoms, relaxations and hull energies: those cells "
            "are the source model's, and the energy MAE swaps the AtomRef in its test "
            "predictions. The zero-shot row is the source model with CHGNet's shipped "
            "MP-r2SCAN AtomRef, untrained."
        )
    return "\n".join(lines) + "\n"
