"""The data-budget estimate as text: ``data_budget.md`` (the JSON is the summary itself)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlip_transfer.budget.estimate import UNITS


def _number(value: Any) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{float(value):.4g}"


def _interval(row: Mapping[str, Any]) -> str:
    if row["low"] is None or not math.isfinite(float(row["low"])):
        return "none (fewer than 3 points)"
    return f"[{_number(row['low'])}, {_number(row['high'])}]"


def _measured(row: Mapping[str, Any]) -> str:
    if row["measured"] is None or not math.isfinite(float(row["measured"])):
        return "not trained"
    inside = row["measured_inside"]
    where = "" if inside is None else (" (inside)" if inside else " (**outside**)")
    return f"{_number(row['measured'])}{where}, estimate {100 * row['relative_error']:+.0f} %"


def _flags(row: Mapping[str, Any], full_size: str) -> str:
    """A flat curve (its slope's interval holds 0) and the full-size training's own flag."""
    raised = []
    if row.get("flat"):
        raised.append(f"flat curve: slope interval [{_number(row['slope_low'])}, "
                      f"{_number(row['slope_high'])}] holds 0, so at this recipe the data hardly "
                      "move the error")
    if full_size:
        raised.append(full_size)
    return "; ".join(raised)


def sentence(summary: Mapping[str, Any]) -> str:
    """One line per transfer method: the better use of the data at N_full, per target."""
    parts = []
    for target, entry in summary["targets"].items():
        for method, answer in entry["verdicts"].items():
            parts.append(f"{target}: {method} vs {summary['scratch_method']}: "
                         f"**{answer['better']}** ({answer['why']})")
    return "; ".join(parts) if parts else "no verdict: Scratch (1_scratch) has no learning curve"


def markdown(summary: Mapping[str, Any], *, banner: str = "", recipe: str = "") -> str:
    """``data_budget.md``: the estimate per method and target beside the measured full-size
    error, the verdicts, and the plain statement that it is an extrapolation."""
    pct = round(100 * summary["confidence"])
    lines = [
        "# Data-budget estimate: validation error at the full training size",
        "",
        *([f"**{banner}**", ""] if banner else []),
        f"**{summary['note']}**",
        "",
        f"Full training size N_full = {summary['n_full']} frames. Interval: {pct} % "
        f"{summary['interval']}. {recipe}".rstrip(),
        "",
        (f"| target | method | sizes fitted | slope | R² | estimate at N_full | {pct} % interval "
         "| N_full / largest size | measured at N_full | flags |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    full_size = summary.get("full_size_flags", {})
    for target, entry in summary["targets"].items():
        for method, row in entry["estimates"].items():
            if row is None:
                lines.append(f"| {target} | {method} | fewer than 2 | | | | | | | |")
                continue
            lines.append(
                f"| {target} ({UNITS[target]}) | {method} | {', '.join(map(str, row['sizes']))} "
                f"| {_number(row['slope'])} | {_number(row['r2'])} | {_number(row['predicted'])} "
                f"| {_interval(row)} | {row['extrapolation_factor']:.3g} | {_measured(row)} "
                f"| {_flags(row, full_size.get(method, {}).get(target, ''))} |"
            )
    lines += ["", f"Better use of the data at N_full: {sentence(summary)}.", ""]
    if any(full_size.get(m, {}).get(t) for t in summary["targets"] for m in full_size):
        lines += ["A flagged full-size training is not a method's result: at this budget the "
                  "estimate describes a model that training barely moved.", ""]
    return "\n".join(lines)
