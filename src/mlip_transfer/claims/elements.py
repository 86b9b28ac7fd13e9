"""Claims of the Si -> Ge study (Röcken & Zavadlav): data efficiency, MD stability,
temperature transferability and the structural penalty of transfer.

Errors are compared with the spread over seeds (mean, min, max of the stage's tables); the
stability counts with Wilson intervals of the failure rates, and a run too small or too short
to separate the study's 65 % scratch failures from none is ``not testable``. Every claim first
checks that training shaped the Ge models (:func:`untrained`: the scratch learning curve falls
with N); where it did not, the claim is flagged and ``not testable``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlip_transfer.claims.readers import Origin
from mlip_transfer.claims.verdicts import (
    HIGHER,
    LOWER,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    SEEDS,
    Claim,
    Sample,
    compare,
    rate_sample,
    runs_to_separate,
    verdict_of,
)
from mlip_transfer.elements.experiments import PAPER

STUDY = "cross-element"
FORCE = "force_mae_mev_per_a"
# The study's stability test: transfer 100/100 stable, scratch 35/100 (PAPER.md).
PAPER_FAILURE = {"scratch": 0.65, "transfer": 0.0}


@dataclass(frozen=True, kw_only=True)
class ElementInputs:
    """What the Si -> Ge claims read.

    Attributes:
        efficiency: ``data_efficiency.csv`` (method, size, seed statistics).
        temperature: ``temperature.csv`` (method, size, temperature, seed statistics).
        stability: ``stability_structure.json``.
        settings: The config's ``elements`` section.
        sources: The files.
        origin: The Ge data's origin.
        tolerance: Relative difference under which one-seed values count as equal.
        confidence: Of the failure-rate intervals.
    """

    efficiency: pd.DataFrame | None
    temperature: pd.DataFrame | None
    stability: Mapping[str, Any] | None
    settings: Mapping[str, Any]
    sources: Sequence[str] = ()
    origin: Origin
    tolerance: float = 0.01
    confidence: float = 0.95


def _sample(row: Mapping[str, Any], column: str = FORCE) -> Sample:
    n = int(row.get("n_seeds", 1) or 1)
    if n < 2:
        return Sample(value=float(row[f"{column}_mean"]))
    return Sample(value=float(row[f"{column}_mean"]), low=float(row[f"{column}_min"]),
                  high=float(row[f"{column}_max"]), n=n, kind=SEEDS)


def _at(table: pd.DataFrame, method: str, size: int, **where: float) -> Sample | None:
    rows = table[(table["method"] == method) & (table["size"] == size)]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    return _sample(rows.iloc[0]) if len(rows) else None


def _base(inputs: ElementInputs, claim_id: str, claim: str, paper: str) -> dict[str, Any]:
    return {"id": claim_id, "study": STUDY, "claim": claim, "paper": paper,
            "sources": tuple(inputs.sources), "data": inputs.origin.data,
            "teacher": inputs.origin.teacher}


def _scratch_sizes(inputs: ElementInputs) -> list[int]:
    table = inputs.efficiency
    if table is None:
        return []
    return sorted(int(s) for s in table.loc[table["method"] == "scratch", "size"].unique())


def untrained(inputs: ElementInputs) -> str | None:
    """Why the Ge models' errors are not what their training data made of them, or None.

    The scratch learning curve must fall with N beyond the seeds' spread (smallest against
    largest size); a flat curve, or a single size, means the fixed number of updates, not the
    data, set the errors, and no Ge comparison is a method's result.
    """
    sizes = _scratch_sizes(inputs)
    steps = inputs.settings["finetune"]["max_steps"]
    if len(sizes) < 2:
        return (f"one Ge training size ({', '.join(map(str, sizes)) or 'none'}): nothing shows "
                f"that {steps} updates trained the models on their data")
    small, large = (_at(inputs.efficiency, "scratch", s) for s in (sizes[0], sizes[-1]))
    if compare(large, small, tolerance=inputs.tolerance).order == LOWER:
        return None
    return (f"not trained at this budget: scratch force MAE {small.text()} at {sizes[0]} "
            f"frames, {large.text()} at {sizes[-1]}, the curve does not fall with N beyond the "
            f"seed spread (at most {steps} updates per training: the optimiser, not the data, "
            "may set the errors)")


TRAINING_NEEDS = ("Ge trainings that converge at every size (elements.finetune; issue 15), so "
                  "that scratch errors fall with N (elements.data_efficiency.sizes)")


def unconverged(inputs: ElementInputs, sizes: Sequence[int] | None = None) -> str | None:
    """Which Ge trainings (at ``sizes``; all without) hit max_steps still improving, or None.

    Reads the ``not_converged`` column of the data-efficiency table (trainings that the
    validation stop did not end); a table without it (fixed-length trainings) gives None.
    """
    table = inputs.efficiency
    if table is None or "not_converged" not in table.columns:
        return None
    if sizes is not None:
        table = table[table["size"].isin([int(s) for s in sizes])]
    open_rows = table[table["not_converged"] > 0]
    if open_rows.empty:
        return None
    cap = inputs.settings["finetune"]["max_steps"]
    listed = ", ".join(f"{r['method']} n={int(r['size'])}: {int(r['not_converged'])} of "
                       f"{int(r['n_seeds'])}" for _, r in open_rows.iterrows())
    return (f"Ge trainings not converged (still improving at max_steps {cap}): {listed}")


CONVERGENCE_NEEDS = ("a larger elements.finetune.max_steps (or patience reached sooner), so every "
                     "training ends on its validation stop")


def _refused(inputs: ElementInputs, base: dict[str, Any], this_run: str,
             sizes: Sequence[int] | None = None) -> Claim | None:
    """The not-testable row of a Ge claim whose models training did not shape (or whose
    trainings at ``sizes`` did not converge), else None."""
    why = untrained(inputs)
    if why is not None:
        return Claim(**base, this_run=this_run, verdict=NOT_TESTABLE, flags=(why,),
                     needs=TRAINING_NEEDS)
    why = unconverged(inputs, sizes)
    if why is not None:
        return Claim(**base, this_run=this_run, verdict=NOT_TESTABLE, flags=(why,),
                     needs=CONVERGENCE_NEEDS)
    return None


def data_efficiency(inputs: ElementInputs) -> Claim:
    """Transfer with 10 Ge frames has a lower force error than scratch with 50.

    Without a scratch model at exactly 50 frames: transfer beating scratch at the next larger
    size also beats it at 50 (the scratch curve falls with N, which is checked first), and
    transfer losing to scratch at the next smaller size also loses at 50.
    """
    base = _base(inputs, "ge_data_efficiency", "Transfer with 10 Ge samples beats scratch with 50",
                 f"Röcken & Zavadlav: {PAPER['data_efficiency']}")
    table = inputs.efficiency
    sizes = _scratch_sizes(inputs)
    transfer = None if table is None else _at(table, "transfer", 10)
    if transfer is None or len(sizes) < 2:
        return Claim(**base, this_run="no transfer model at 10 frames or fewer than two scratch "
                     "sizes", verdict=NOT_TESTABLE,
                     needs="elements.data_efficiency.sizes with 10, 50 and a larger size")
    if (refused := _refused(inputs, base, f"transfer at 10: {transfer.text()} meV/Å")) is not None:
        return refused
    above = min((s for s in sizes if s >= 50), default=None)
    below = max((s for s in sizes if 10 < s <= 50), default=None)
    parts, verdict = [f"transfer at 10: {transfer.text()} meV/Å"], NOT_TESTABLE
    if above is not None:
        order = compare(transfer, _at(table, "scratch", above), tolerance=inputs.tolerance).order
        parts.append(f"scratch at {above}: {_at(table, 'scratch', above).text()} ({order})")
        verdict = REPRODUCED if order == LOWER else NOT_REPRODUCED if (order == HIGHER and above == 50) else verdict
    if verdict == NOT_TESTABLE and below is not None and below != above:
        order = compare(transfer, _at(table, "scratch", below), tolerance=inputs.tolerance).order
        parts.append(f"scratch at {below}: {_at(table, 'scratch', below).text()} ({order})")
        verdict = NOT_REPRODUCED if order == HIGHER else verdict
    needs = ("more seeds: the difference is within the seed spread" if above == 50
             else "a scratch model at 50 frames, or more seeds")
    return Claim(**base, this_run="; ".join(parts) + " (force MAE, mean [min, max] over seeds)",
                 verdict=verdict, needs=needs if verdict == NOT_TESTABLE else "")


def stability(inputs: ElementInputs) -> Claim:
    """At 10 training frames, scratch models fail in MD more often than transfer models."""
    paper = PAPER["stability"]
    base = _base(inputs, "ge_stability", "At 10 samples transfer runs stay stable where scratch "
                 "runs fail", f"{paper['stable']['transfer']}/{paper['runs']} stable (transfer) vs "
                 f"{paper['stable']['scratch']}/{paper['runs']} (scratch), {paper['runs']} NVT runs "
                 f"of {paper['duration_ps']} ps at {paper['temperature']} K")
    rows = {r["method"]: r for r in (inputs.stability or {}).get("stability", [])}
    if not {"scratch", "transfer"} <= set(rows):
        return Claim(**base, this_run="no stability runs of both methods", verdict=NOT_TESTABLE,
                     needs="the elements_stability_structure rule's output")
    md = inputs.stability.get("stability_settings") or inputs.settings["stability"]
    rates = {m: rate_sample(int(rows[m]["unstable"]), int(rows[m]["runs"]),
                            confidence=inputs.confidence) for m in ("scratch", "transfer")}
    runs = min(int(rows[m]["runs"]) for m in rates)
    text = ("unstable " + ", ".join(f"{m} {rows[m]['unstable']}/{rows[m]['runs']} (rate "
                                    f"{rates[m].text(2)})" for m in rates)
            + f"; {runs} runs of {md['duration_ps']:g} ps at {md['temperature']:g} K, models "
              f"trained on {md['train_size']} frames ({100 * inputs.confidence:g} % Wilson intervals)")
    needed = runs_to_separate(PAPER_FAILURE["scratch"], PAPER_FAILURE["transfer"],
                              confidence=inputs.confidence)
    if (refused := _refused(inputs, base, text, sizes=[md["train_size"]])) is not None:
        return refused
    if int(md["train_size"]) != paper["train_size"]:
        return Claim(**base, this_run=text, verdict=NOT_TESTABLE,
                     needs=f"elements.stability.train_size: {paper['train_size']}, the study's")
    order = compare(rates["scratch"], rates["transfer"], tolerance=0).order
    powered = runs >= (needed or math.inf) and md["duration_ps"] >= paper["duration_ps"]
    verdict = {HIGHER: REPRODUCED, LOWER: NOT_REPRODUCED}.get(order, NOT_REPRODUCED if powered else NOT_TESTABLE)
    return Claim(**base, this_run=text, verdict=verdict, needs="" if verdict != NOT_TESTABLE else
                 f"≥ {needed} runs per method of ≥ {paper['duration_ps']} ps, enough to separate "
                 "65 % failures from none (elements.stability.runs, duration_ps)")


def temperature_transfer(inputs: ElementInputs) -> Claim:
    """Trained at one temperature, transfer has lower force errors than scratch at every test
    temperature (the smallest training size of the temperature test)."""
    base = _base(inputs, "ge_temperature", "Trained at one temperature, transfer keeps lower "
                 "force errors than scratch across temperatures", f"Röcken & Zavadlav: lower "
                 f"errors over {PAPER['temperatures']}")
    table = inputs.temperature
    sizes = [] if table is None else sorted(set(table.loc[table["method"] == "transfer", "size"])
                                            & set(table.loc[table["method"] == "scratch", "size"]))
    if not sizes:
        return Claim(**base, this_run="no temperature test of both methods", verdict=NOT_TESTABLE,
                     needs="the elements_tables rule's temperature.csv")
    size = int(sizes[0])
    temperatures = sorted(table.loc[table["size"] == size, "temperature"].unique())
    pairs = {t: (_at(table, "transfer", size, temperature=t), _at(table, "scratch", size, temperature=t))
             for t in temperatures}
    pairs = {t: p for t, p in pairs.items() if None not in p}
    text = f"trained on {size} frames: " + "; ".join(
        f"{t:g} K transfer {a.text()} vs scratch {b.text()}" for t, (a, b) in pairs.items()
    ) + " meV/Å (force MAE, mean [min, max] over seeds)"
    if (refused := _refused(inputs, base, text, sizes=[size])) is not None:
        return refused
    orders = [compare(a, b, tolerance=inputs.tolerance).order for a, b in pairs.values()]
    verdict = verdict_of(orders, want=[LOWER] * len(orders))
    return Claim(**base, this_run=text, verdict=verdict, needs="more seeds: differences within "
                 "the seed spread" if verdict == NOT_TESTABLE else "")


def _distance(entry: Mapping[str, Any], kind: str) -> Sample:
    seeds = entry.get(f"{kind}_difference_seeds")
    if seeds:
        return Sample.of(seeds)
    value = entry.get(f"{kind}_difference")
    return Sample(value=math.nan if value is None else float(value))


def structure(inputs: ElementInputs) -> Claim:
    """Transfer's RDF and ADF are further from the Stillinger-Weber reference than scratch's."""
    base = _base(inputs, "ge_structure", "Transfer is worse than scratch on RDF and ADF despite "
                 "lower force errors", f"Röcken & Zavadlav: {PAPER['structure']}")
    shapes = (inputs.stability or {}).get("structure") or {}
    if any(not (shapes.get(m) or {}).get("frames") for m in ("scratch", "transfer")):
        return Claim(**base, this_run="no structure frames of both methods", verdict=NOT_TESTABLE,
                     needs="stable MD runs of both methods (elements.stability)")
    distances = {kind: (_distance(shapes["transfer"], kind), _distance(shapes["scratch"], kind))
                 for kind in ("rdf", "adf")}
    one_seed = all(not s.has_spread for pair in distances.values() for s in pair)
    text = "; ".join(f"{k.upper()} distance from SW: transfer {a.text()} vs scratch {b.text()}"
                     for k, (a, b) in distances.items())
    text += " (integrated |Δ|; seeds pooled, no spread)" if one_seed else " (over seeds)"
    sizes = [inputs.settings["stability"]["train_size"]]
    if (refused := _refused(inputs, base, text, sizes=sizes)) is not None:
        return refused
    orders = [compare(a, b, tolerance=inputs.tolerance).order for a, b in distances.values()]
    verdict = verdict_of(orders, want=[HIGHER, HIGHER])
    needs = ("a difference beyond the spread: per-seed RDF/ADF distances, longer MD runs"
             if verdict == NOT_TESTABLE else "")
    return Claim(**base, this_run=text, verdict=verdict, needs=needs)
