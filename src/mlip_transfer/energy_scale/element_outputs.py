"""The per-element report as files: markdown for people, JSON and CSV for programs, a figure.

``write_element_report(report, out_dir)`` writes ``elements.md``, ``elements.json`` (standard
JSON: null, never NaN), ``elements.csv`` (one row per element) and ``elements.png`` (periodic
table of the recommendations and of the deviations from the expected shift).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from mlip_transfer.core.files import atomic_path, open_atomic, write_json_atomic, write_text_atomic
from mlip_transfer.energy_scale.element_report import ADD_DATA, CHECK_DFT, ENOUGH, ElementReport

OUTPUT_NAMES = ("elements.md", "elements.json", "elements.csv", "elements.png")


def _fmt(value: float | None, spec: str = "+.3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f" [{low:+.3f}, {high:+.3f}]"


def element_table(report: ElementReport) -> pd.DataFrame:
    """One row per element; list columns joined with ``;`` so the CSV stays flat."""
    table = pd.DataFrame([asdict(row) for row in report.rows])
    for column in ("partners", "reasons"):
        table[column] = table[column].map("; ".join)
    return table


def element_markdown(report: ElementReport) -> str:
    """The per-element table with a summary of the recommendations."""
    crit = report.criteria
    counts = report.counts
    lines = [
        "## Per element: how well these data determine each reference shift",
        "",
        (
            f"{len(report.rows)} elements: {counts[ENOUGH]} {ENOUGH}, {counts[ADD_DATA]} "
            f"{ADD_DATA}, {counts[CHECK_DFT]} {CHECK_DFT} ({counts['collinear']} collinear, "
            f"{counts['mismatch']} likely settings mismatches)."
        ),
        "",
        (
            f"Shifts in eV/atom with {crit.confidence:.0%} bootstrap intervals "
            f"({crit.n_resamples} resamples of {crit.resample}, seed {crit.seed}). Eq. 2: AtomRef "
            "refit on the labels minus the source model's AtomRef; residual: per-element fit of "
            "label − source prediction (as MACE's `--E0s estimated`, DeePMD's `dp change-bias`)."
        ),
    ]
    if report.expected_label:
        lines.append(
            f"Expected shift: {report.expected_label}; deviation = residual − expected (median "
            f"{_fmt(report.median_deviation)}, scale {_fmt(report.mad_deviation, '.3f')}); flagged "
            f"beyond {crit.mismatch_z:g} scales and {crit.mismatch_floor:g} eV/atom from the median."
        )
    lines += [
        "",
        (
            "| element | frames | atoms | Eq. 2 shift | residual shift | collinear with | "
            "expected | deviation | recommendation |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        advice = row.recommendation + (f" ({'; '.join(row.reasons)})" if row.reasons else "")
        lines.append(
            f"| {row.element} | {row.n_frames} | {row.n_atoms} | "
            f"{_fmt(row.eq2_shift)}{_interval(row.eq2_low, row.eq2_high)} | "
            f"{_fmt(row.residual_shift)}{_interval(row.residual_low, row.residual_high)} | "
            f"{', '.join(row.partners) if row.collinear else ''} | {_fmt(row.expected_shift)} | "
            f"{_fmt(row.deviation)} | {advice} |"
        )
    return "\n".join(lines) + "\n"


def write_element_report(report: ElementReport, out_dir: str | Path, *, title: str = "") -> dict[str, Path]:
    """Write the four files into ``out_dir`` (created); returns name -> path."""
    from mlip_transfer.plots.element_flags import element_flags_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in OUTPUT_NAMES}
    write_text_atomic(paths["elements.md"], element_markdown(report))
    write_json_atomic(paths["elements.json"], report.to_dict())
    with open_atomic(paths["elements.csv"], "w", encoding="utf-8") as handle:
        element_table(report).to_csv(handle, index=False)
    figure = element_flags_figure(report, title=title)
    with atomic_path(paths["elements.png"]) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(figure)
    return paths
