"""Claims of the transfer stage (paper Table 1, Fig. 3a): which method wins on the test errors
and the hull energies, and the first-epoch gradients.

Every Table 1 claim reads the trained methods' rows only (``model`` in ``training.methods``,
stage ``trained`` where the table has a ``stage`` column). A row's ``flags``, and a value
within 1 % of the method's own step-0 row (``<method>_step0``, where the table has one), make
the claim ``not testable``: training did not change what the row reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlip_transfer.claims.readers import Origin, flag_list
from mlip_transfer.claims.verdicts import (
    HIGHER,
    LOWER,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    WITHIN,
    Claim,
    Sample,
    compare,
    verdict_of,
)
from mlip_transfer.core import flags as core_flags
from mlip_transfer.transfer.table1 import PAPER_TABLE1

STUDY = "cross-functional"
M1, M2, M3, M4 = "1_scratch", "2_trainable_gga_atomref", "3_frozen_gga_atomref", "4_refit_atomref"
SHORT = {M1: "M1", M2: "M2", M3: "M3", M4: "M4"}
UNITS = {"energy_mae_mev": "meV/atom", "force_mae_mev": "meV/Å", "stress_mae_gpa": "GPa",
         "decomposition_energy_mae_mev": "meV/atom", "formation_energy_mae_mev": "meV/atom"}
NAMES = {"energy_mae_mev": "energy", "force_mae_mev": "force", "stress_mae_gpa": "stress",
         "decomposition_energy_mae_mev": "decomposition energy",
         "formation_energy_mae_mev": "formation energy"}
# The paper's first epoch: 190,560 training structures in batches of 64; 50 epochs in all.
PAPER_EPOCH_STEPS = math.ceil(190_560 / 64)
PAPER_TRAINING_STEPS = 50 * PAPER_EPOCH_STEPS
PAPER_GRADIENT_RATIO = 10.0


@dataclass(frozen=True, kw_only=True)
class Table1Inputs:
    """What the Table 1 claims read.

    Attributes:
        rows: The trained methods' rows by method (:func:`~.readers.table1_rows`).
        step0: Each method's step-0 row, where Table 1 has one.
        steps: Optimiser steps each method trained for in this run (None: unknown).
        source: The Table 1 file.
        origin: Its data.
        tolerance: Relative difference under which two one-seed values count as equal.
    """

    rows: Mapping[str, Mapping]
    step0: Mapping[str, Mapping] = field(default_factory=dict)
    steps: int | None = None
    source: str = ""
    origin: Origin
    tolerance: float = 0.01


def _value(inputs: Table1Inputs, method: str, metric: str) -> Sample:
    return Sample(value=float(inputs.rows[method].get(metric, math.nan)))


def _flags(inputs: Table1Inputs, methods: Sequence[str], metrics: Sequence[str]) -> list[str]:
    """The inputs' flags: each row's own, and values their step-0 row already had."""
    raised = []
    for method in methods:
        raised += [f"{SHORT.get(method, method)}: {text}"
                   for text in flag_list(inputs.rows[method].get("flags"))]
        before = inputs.step0.get(method)
        for metric in metrics if before else ():
            flag = core_flags.not_trained(float(before.get(metric, math.nan)),
                                          float(inputs.rows[method].get(metric, math.nan)),
                                          metric=f"test {NAMES[metric]} MAE against step 0",
                                          unit=UNITS[metric])
            if flag:
                raised.append(f"{SHORT.get(method, method)}: {flag.message}")
    return raised


def training_budget(steps: int | None) -> str:
    """What a flagged Table 1 claim needs: trainings that move the validation error."""
    run = f"this run trained {steps:,} optimiser steps per method" if steps else \
        "this run's trainings did not"
    return (f"trainings that change the errors by ≥ 1 % ({run}; the paper: 50 epochs of "
            f"{PAPER_EPOCH_STEPS:,} steps = {PAPER_TRAINING_STEPS:,})")


def _numbers(inputs: Table1Inputs, methods: Sequence[str], metric: str) -> str:
    cells = ", ".join(f"{SHORT[m]} {_value(inputs, m, metric).value:.4g}" for m in methods)
    return f"{NAMES[metric]} {cells} {UNITS[metric]}"


def _paper(methods: Sequence[str], metrics: Sequence[str]) -> str:
    parts = []
    for metric in metrics:
        cells = [f"{SHORT[m]} {PAPER_TABLE1[f'method{SHORT[m][1]}'][metric]:g}" for m in methods
                 if metric in PAPER_TABLE1[f"method{SHORT[m][1]}"]]
        if cells:
            parts.append(f"{NAMES[metric]} {', '.join(cells)} {UNITS[metric]}")
    return "Table 1: " + "; ".join(parts) if parts else "Table 1 (text)"


def _checked(inputs: Table1Inputs, base: dict, methods: Sequence[str],
             metrics: Sequence[str]) -> Claim | None:
    """The not-testable row for missing methods or flagged inputs, else None."""
    missing = [SHORT[m] for m in methods if m not in inputs.rows]
    if missing:
        return Claim(**base, this_run=f"{', '.join(missing)} not trained in this run",
                     verdict=NOT_TESTABLE,
                     needs=f"training.methods to include {', '.join(missing)}")
    raised = _flags(inputs, methods, metrics)
    if raised:
        text = "; ".join(_numbers(inputs, methods, metric) for metric in metrics)
        return Claim(**base, this_run=text + " (flagged: not the methods' results)",
                     verdict=NOT_TESTABLE, needs=training_budget(inputs.steps),
                     flags=tuple(raised))
    return None


def _spread_needs(verdict: str) -> str:
    return ("a difference beyond the spread: more seeds (one per method here)"
            if verdict == NOT_TESTABLE else "")


def _base(inputs: Table1Inputs, claim_id: str, claim: str, paper: str) -> dict[str, Any]:
    return {"id": claim_id, "study": STUDY, "claim": claim, "paper": paper,
            "sources": (inputs.source,), "data": inputs.origin.data,
            "teacher": inputs.origin.teacher}


def m4_beats_m1(inputs: Table1Inputs) -> Claim:
    """Method 4 has lower test energy, force and stress MAEs than Method 1 (Table 1)."""
    metrics = ("energy_mae_mev", "force_mae_mev", "stress_mae_gpa")
    base = _base(inputs, "m4_beats_m1", "TL with the r2SCAN AtomRef (M4) beats scratch (M1) on "
                 "energy, force and stress", _paper((M1, M4), metrics))
    if (refused := _checked(inputs, base, (M1, M4), metrics)) is not None:
        return refused
    orders = [compare(_value(inputs, M4, m), _value(inputs, M1, m), tolerance=inputs.tolerance).order
              for m in metrics]
    verdict = verdict_of(orders, want=[LOWER] * len(metrics))
    text = "; ".join(f"{_numbers(inputs, (M1, M4), m)} (M4 {o})" for m, o in zip(metrics, orders))
    return Claim(**base, this_run=text + "; one seed per method, no spread", verdict=verdict,
                 needs=_spread_needs(verdict))


def m2_m3_negative_transfer(inputs: Table1Inputs, *, similar: float) -> Claim:
    """Methods 2 and 3 are similar (within ``similar``, relative) and worse than Method 1 on
    forces (negative transfer)."""
    metric = "force_mae_mev"
    base = _base(inputs, "m2_m3_negative_transfer", "M2 ≈ M3, both worse than scratch (M1) on "
                 "forces (negative transfer)", "Table 1 (text): M2 and M3 similar on all "
                 "metrics, worse than M1's 45 meV/Å")
    if (refused := _checked(inputs, base, (M1, M2, M3), (metric,))) is not None:
        return refused
    m1, m2, m3 = (_value(inputs, m, metric) for m in (M1, M2, M3))
    alike = compare(m2, m3, tolerance=similar).order == WITHIN
    orders = [compare(m, m1, tolerance=inputs.tolerance).order for m in (m2, m3)]
    verdict = verdict_of(orders, want=[HIGHER, HIGHER]) if alike else NOT_REPRODUCED
    gap = abs(m2.value - m3.value) / max(m2.value, m3.value)
    text = (f"{_numbers(inputs, (M1, M2, M3), metric)}; M2 and M3 differ by {100 * gap:.1f} % "
            f"({'within' if alike else 'beyond'} {100 * similar:g} %); one seed per method")
    return Claim(**base, this_run=text, verdict=verdict, needs=_spread_needs(verdict))


def m4_best_on(inputs: Table1Inputs, metric: str) -> Claim:
    """Method 4 has the lowest ``metric`` (decomposition or formation energy MAE) of M1-M4."""
    methods = (M1, M2, M3, M4)
    base = _base(inputs, f"m4_best_{metric.split('_')[0]}",
                 f"M4 gives the lowest {NAMES[metric]} MAE of the four methods",
                 _paper(methods, (metric,)))
    if (refused := _checked(inputs, base, methods, (metric,))) is not None:
        return refused
    best = _value(inputs, M4, metric)
    orders = [compare(best, _value(inputs, m, metric), tolerance=inputs.tolerance).order
              for m in (M1, M2, M3)]
    verdict = verdict_of(orders, want=[LOWER] * 3)
    return Claim(**base, this_run=f"{_numbers(inputs, methods, metric)}; one seed per method",
                 verdict=verdict, needs=_spread_needs(verdict))


def gradient_claim(
    *, ratios: Mapping[str, float] | None, window: int | None, sources: Sequence[str],
    origin: Origin, ablation: str = "",
) -> Claim:
    """Method 3's first-epoch gradients are at least 10x Method 4's on every Fig. 3a layer.

    ``ratios``: per layer, the median over the recorded steps of M3's gradient norm over M4's
    (:func:`mlip_transfer.plots.transfer.gradient_ratio`); ``window``: the optimiser steps
    they were recorded over (``training.gradient_steps``). Testable over a window as long as
    the paper's first epoch (190,560 frames in batches of 64). ``ablation``: the gradient
    ablation's computed sentence (``ablation.json``), appended to what the run shows.
    """
    base = {"id": "gradient_ratio", "study": STUDY, "sources": tuple(sources),
            "data": origin.data, "teacher": origin.teacher,
            "claim": "Without refitting the AtomRef (M3) first-epoch gradients are at least an "
                     "order of magnitude larger than with it (M4)",
            "paper": f"Fig. 3a: M3/M4 ≥ {PAPER_GRADIENT_RATIO:g}x on 8 layers, first epoch "
                     f"({PAPER_EPOCH_STEPS:,} steps)"}
    finite = {k: v for k, v in (ratios or {}).items() if math.isfinite(v)}
    if not finite:
        return Claim(**base, this_run="no first-epoch gradients of both M3 and M4",
                     verdict=NOT_TESTABLE, needs="training.methods to include M3 and M4")
    values = sorted(finite.values())
    text = (", ".join(f"{k} {v:.2f}" for k, v in finite.items())
            + f"; min {values[0]:.2f}x, median {values[len(values) // 2]:.2f}x over the first "
            f"{window or '?'} optimiser steps (median over recorded steps per layer)"
            + (f". Gradient ablation: {ablation}" if ablation else ""))
    if not window or window < PAPER_EPOCH_STEPS:
        return Claim(**base, this_run=text, verdict=NOT_TESTABLE,
                     needs=f"gradients over ≥ {PAPER_EPOCH_STEPS:,} optimiser steps, the "
                           f"paper's first epoch (this run: {window or 'unknown'})")
    verdict = REPRODUCED if values[0] >= PAPER_GRADIENT_RATIO else NOT_REPRODUCED
    return Claim(**base, this_run=text, verdict=verdict)
