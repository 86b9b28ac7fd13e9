"""Does the ranking of the transfer methods survive a change of teacher?

Surrogate labels come from a pretrained potential (the "teacher"). A finding about the methods is
only worth reporting if it holds under more than one teacher: DIEP (independent of CHGNet) and
CHGNet-r2scan (a fine-tune of the source model, the circular case). This module reads the Table 1
of one run per teacher, ranks the trained methods on each metric under each teacher, computes
Kendall's τ between every pair of teachers, and checks each of the paper's pairwise orderings
(for example "M4 below M1 on energy") under every teacher.

A ranking of methods that training barely moved (Table 1 flags them) orders their starting
points, not what training made of them; the sentence says how many rows carry such a flag.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd
from scipy.stats import kendalltau

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import write_csv_atomic, write_json_atomic, write_text_atomic
from mlip_transfer.transfer.table1 import PAPER_TABLE1

# Table 1 columns ranked (lower is better), with their labels.
METRICS: dict[str, str] = {
    "energy_mae_mev": "energy",
    "force_mae_mev": "force",
    "stress_mae_gpa": "stress",
    "decomposition_energy_mae_mev": "decomposition energy",
    "formation_energy_mae_mev": "formation energy",
}
SHORT = {"method1": "M1", "method2": "M2", "method3": "M3", "method4": "M4"}


@dataclass(frozen=True, kw_only=True)
class TeacherRun:
    """One run's trained Table 1 rows and the r2SCAN teacher its labels came from."""

    teacher: str
    table: pd.DataFrame  # trained rows, indexed by model
    source: Path
    labels: str = ""  # the run's data banner (provenance ``labels``): surrogate or DFT


def read_run(run_dir: str | Path) -> TeacherRun:
    """The trained Table 1 rows of a run folder and its teacher (from ``data/provenance.json``).

    Raises:
        DataError: The run has no Table 1, no provenance, or no trained rows.
    """
    run_dir = Path(run_dir)
    table_path, provenance_path = run_dir / "evaluation" / "table1.csv", run_dir / "data" / "provenance.json"
    for path in (table_path, provenance_path):
        if not path.is_file():
            raise DataError(f"missing {path.name}: run the workflow with output_dir {run_dir} first",
                            file=str(path))
    provenance = json.loads(provenance_path.read_text())
    settings = provenance.get("parse", {}).get("settings", {})
    teacher = settings.get("teacher") or provenance.get("name")
    if not teacher:
        raise DataError("names no teacher (parse.settings.teacher) and no data name",
                        file=str(provenance_path), field="parse.settings.teacher")
    table = pd.read_csv(table_path)
    if "stage" not in table or "model" not in table:
        raise DataError("is not a Table 1 (no 'model' and 'stage' columns)", file=str(table_path))
    trained = table[table["stage"] == "trained"].set_index("model")
    if trained.empty:
        raise DataError("has no trained rows (stage == 'trained')", file=str(table_path), field="stage")
    labels = str(provenance.get("labels") or provenance.get("name") or "")
    return TeacherRun(teacher=str(teacher), table=trained, source=table_path, labels=labels)


def paper_orderings() -> list[tuple[str, str, str]]:
    """Every pairwise ordering Table 1 of the paper states: ``(metric, better, worse)`` by paper row."""
    orderings = []
    for metric in METRICS:
        values = {row: PAPER_TABLE1[row][metric] for row in SHORT if metric in PAPER_TABLE1[row]}
        for a, b in combinations(sorted(values), 2):
            if values[a] != values[b]:
                better, worse = (a, b) if values[a] < values[b] else (b, a)
                orderings.append((metric, better, worse))
    return orderings


def ranks(run: TeacherRun, models: Sequence[str]) -> pd.DataFrame:
    """Rank (1 = lowest error) of each model on each metric present in the run."""
    table = run.table.loc[list(models)]
    present = [m for m in METRICS if m in table and table[m].notna().any()]
    return table[present].rank(method="min")


def compare(runs: Sequence[TeacherRun], *, tolerance: float = 0.01) -> dict[str, Any]:
    """Rankings per teacher, Kendall's τ between teachers and the paper's orderings under each.

    Args:
        runs: At least two runs with different teachers.
        tolerance: Relative difference within which two methods tie (the claims table's
            ``claims.point_tolerance``): a tie neither holds nor breaks an ordering.

    Returns:
        ``rows`` (teacher, model, metric, value, rank), ``tau`` (per metric and teacher pair:
        τ, p-value, n), ``orderings`` (each paper ordering: holds per teacher) and ``sentence``.

    Raises:
        DataError: Fewer than two teachers, or no method common to all runs.
    """
    teachers = [run.teacher for run in runs]
    if len(set(teachers)) < 2:
        raise DataError(f"needs runs of at least two teachers, got {teachers}")
    models = [m for m in runs[0].table.index if all(m in run.table.index for run in runs[1:])]
    if len(models) < 2:
        raise DataError(f"fewer than two trained methods common to every run ({models})")
    rows = []
    for run in runs:
        for metric, column in ranks(run, models).items():
            for model, rank in column.items():
                rows.append({"teacher": run.teacher, "model": model, "metric": metric,
                             "value": float(run.table.at[model, metric]), "rank": int(rank)})
    tau = _taus(runs, models)
    orderings = _orderings(runs, tolerance)
    flagged = _flagged(runs)
    return {"teachers": teachers, "data": {run.teacher: run.labels for run in runs},
            "models": models, "rows": rows, "tau": tau,
            "orderings": orderings, "flagged": flagged,
            "tolerance": tolerance,
            "sentence": sentence(orderings, tau, flagged=flagged, teachers=teachers, tolerance=tolerance)}


def _taus(runs: Sequence[TeacherRun], models: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for metric in METRICS:
        for a, b in combinations(runs, 2):
            if metric not in a.table or metric not in b.table:
                continue
            x, y = a.table.loc[list(models), metric], b.table.loc[list(models), metric]
            keep = x.notna() & y.notna()
            if keep.sum() < 2:
                continue
            result = kendalltau(x[keep], y[keep])
            out.append({"metric": metric, "teachers": [a.teacher, b.teacher], "n": int(keep.sum()),
                        "tau": float(result.statistic), "p_value": float(result.pvalue)})
    return out


def _value(run: TeacherRun, paper_row: str, metric: str) -> float | None:
    """The run's value of ``metric`` for the method in the paper's ``paper_row`` (None if absent)."""
    if "paper_row" not in run.table or metric not in run.table:
        return None
    values = run.table.loc[run.table["paper_row"] == paper_row, metric].dropna()
    return float(values.iloc[0]) if len(values) else None


def _orderings(runs: Sequence[TeacherRun], tolerance: float) -> list[dict[str, Any]]:
    """Each paper ordering per teacher: ``holds`` (None where a value is missing) and ``tie``
    (the two values within ``tolerance`` of each other, relative: not an ordering either way)."""
    out = []
    for metric, better, worse in paper_orderings():
        holds, tie = {}, {}
        for run in runs:
            low, high = _value(run, better, metric), _value(run, worse, metric)
            missing = low is None or high is None
            tie[run.teacher] = not missing and abs(high - low) <= tolerance * max(abs(low), abs(high))
            holds[run.teacher] = None if missing else bool(low < high and not tie[run.teacher])
        out.append({"metric": metric, "better": SHORT[better], "worse": SHORT[worse],
                    "paper": f"{SHORT[better]} < {SHORT[worse]} on {METRICS[metric]}",
                    "holds": holds, "tie": tie})
    return out


def _flagged(runs: Sequence[TeacherRun]) -> dict[str, int]:
    if not all("flags" in run.table for run in runs):
        return {run.teacher: 0 for run in runs}
    return {run.teacher: int(run.table["flags"].astype("string").fillna("").str.strip().ne("").sum())
            for run in runs}


def sentence(orderings: Sequence[Mapping[str, Any]], tau: Sequence[Mapping[str, Any]], *,
             flagged: Mapping[str, int], teachers: Sequence[str], tolerance: float = 0.01) -> str:
    """Which of the paper's orderings hold under every teacher, computed from the comparison."""
    tested = [o for o in orderings if all(v is not None for v in o["holds"].values())]
    every = [o["paper"] for o in tested if all(o["holds"].values())]
    none_ = [o["paper"] for o in tested
             if not any(o["holds"].values()) and not all(o.get("tie", {}).values() or [False])]
    some = [o for o in tested if any(o["holds"].values()) and not all(o["holds"].values())]
    parts = [(f"Of the paper's {len(orderings)} pairwise Table 1 orderings, {len(tested)} are "
              f"measured under all of {', '.join(teachers)}")]
    parts.append(f"hold under every teacher: {', '.join(every) if every else 'none'}")
    parts.append(f"hold under none: {', '.join(none_) if none_ else 'none'}")
    if some:
        parts.append("depend on the teacher: " + "; ".join(
            f"{o['paper']} (holds under {', '.join(t for t, h in o['holds'].items() if h)})" for o in some))
    ties = [o for o in tested if any(o.get("tie", {}).values())]
    if ties:
        parts.append(f"within {100 * tolerance:g} % (a tie, not an ordering): " + "; ".join(
            f"{o['paper']} under {', '.join(t for t, h in o['tie'].items() if h)}" for o in ties))
    text = "; ".join(parts) + "."
    by_metric = {t["metric"]: t for t in tau if t["metric"] in ("energy_mae_mev", "force_mae_mev")}
    if by_metric:
        text += " Kendall's τ between the teachers' rankings: " + ", ".join(
            f"{METRICS[m]} {t['tau']:.2f} (n = {t['n']})" for m, t in by_metric.items()) + "."
    if any(flagged.values()):
        text += (" Flagged rows (training barely moved them, so their rank is their starting "
                 "point's): " + ", ".join(f"{t} {n}" for t, n in flagged.items()) + ".")
    return text


def markdown(result: Mapping[str, Any]) -> str:
    """The comparison as markdown: values and ranks per teacher, τ, the paper's orderings."""
    rows = pd.DataFrame(result["rows"])
    lines = ["# Method ranking per r2SCAN teacher", ""]
    lines += [f"**Data ({teacher}):** {labels}" for teacher, labels in result.get("data", {}).items()]
    lines += ["", result["sentence"], ""]
    for metric, label in METRICS.items():
        part = rows[rows["metric"] == metric]
        if part.empty:
            continue
        wide = part.pivot(index="model", columns="teacher", values=["value", "rank"])
        header = ["model"] + [f"{label} ({t})" for t in result["teachers"]] + [f"rank ({t})" for t in result["teachers"]]
        lines += [f"## {label}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for model in result["models"]:
            values = [f"{wide.at[model, ('value', t)]:.4g}" for t in result["teachers"]]
            rank = [str(int(wide.at[model, ("rank", t)])) for t in result["teachers"]]
            lines.append("| " + " | ".join([model, *values, *rank]) + " |")
        lines.append("")
    lines += ["## The paper's orderings", "", "| ordering | " + " | ".join(result["teachers"]) + " |",
              "|---|" + "---|" * len(result["teachers"])]
    for o in result["orderings"]:
        cells = ["n/a" if h is None else "tie" if o["tie"][t] else "holds" if h else "fails"
                 for t, h in o["holds"].items()]
        lines.append("| " + " | ".join([o["paper"], *cells]) + " |")
    return "\n".join(lines) + "\n"


def rank_teachers(run_dirs: Sequence[str | Path], *, out_dir: str | Path,
                  tolerance: float = 0.01) -> dict[str, Any]:
    """Compare the runs of several teachers; writes ``method_ranking.{csv,json,md}`` in ``out_dir``."""
    runs = [read_run(path) for path in run_dirs]
    result = compare(runs, tolerance=tolerance)
    result["sources"] = [str(run.source) for run in runs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out_dir / "method_ranking.csv", pd.DataFrame(result["rows"]), index=False)
    write_json_atomic(out_dir / "method_ranking.json", result)
    write_text_atomic(out_dir / "method_ranking.md", markdown(result))
    return result
