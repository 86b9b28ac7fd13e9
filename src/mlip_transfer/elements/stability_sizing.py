"""How many MD runs of what length tell a failure rate from none, and what they cost.

The study's scratch models fail in 65 of 100 runs of 100 ps at 1200 K (35 stable); telling a
failure rate ``p`` from 0 with Wilson intervals that do not overlap takes
:func:`~mlip_transfer.claims.verdicts.runs_to_separate` runs per method. A run that is too short
cannot fail whatever its count, so the sizing also prices the runs at the study's length from
the measured cost of one MD step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlip_transfer.claims.verdicts import runs_to_separate, wilson_interval

# One MD step of the 64-atom Ge cell with the edge-path DimeNet++ (NOTES.md, issue 15), used
# when a run's records carry no timing.
DEFAULT_CORE_S_PER_STEP = 0.062
PAPER_DURATION_PS = 100.0


def measured_core_s_per_step(records: Sequence[Mapping[str, Any]], *, threads: int = 1) -> float | None:
    """Core-seconds per MD step from the runs' ``wall_s`` and ``steps`` (None without them)."""
    timed = [r for r in records if r.get("wall_s") is not None and r.get("steps")]
    if not timed:
        return None
    return threads * sum(float(r["wall_s"]) for r in timed) / sum(int(r["steps"]) for r in timed)


def stability_sizing(
    *, failure_rate: float, runs: int, duration_ps: float, timestep_fs: float,
    confidence: float = 0.95, core_s_per_step: float | None = None, methods: int = 2,
) -> dict[str, Any]:
    """The runs needed to tell ``failure_rate`` from 0, against what the config runs.

    Args:
        failure_rate: The failure rate to tell from none (per method).
        runs, duration_ps, timestep_fs: The configured runs per method and their length.
        confidence: Of the Wilson intervals.
        core_s_per_step: Measured cost of one MD step (default :data:`DEFAULT_CORE_S_PER_STEP`).
        methods: Methods run (scratch, transfer).

    Returns:
        ``needed_runs`` per method (None beyond 1000), whether the configured count reaches
        it (``enough_runs``) and whether the runs are as long as the study's
        (``paper_length``), the intervals of 0 and of the expected failures at the configured
        count, the core-hours of ``needed_runs`` runs of the study's length for all methods,
        of the configured runs, and a sentence saying it.
    """
    cost = DEFAULT_CORE_S_PER_STEP if core_s_per_step is None else float(core_s_per_step)
    needed = runs_to_separate(failure_rate, 0.0, confidence=confidence)
    steps_per_ps = 1000.0 / timestep_fs
    paper_core_h = (needed or math.nan) * methods * PAPER_DURATION_PS * steps_per_ps * cost / 3600
    config_core_h = runs * methods * duration_ps * steps_per_ps * cost / 3600
    enough = needed is not None and runs >= needed
    long_enough = duration_ps >= PAPER_DURATION_PS
    none = wilson_interval(0, runs, confidence=confidence)
    expected = wilson_interval(round(failure_rate * runs), runs, confidence=confidence)
    text = (
        f"Telling {100 * failure_rate:g} % failures from 0 % ({100 * confidence:g} % Wilson "
        f"intervals apart) needs {needed} runs per method; this run has {runs} of "
        f"{duration_ps:g} ps ({config_core_h:.2f} core-h at {1000 * cost:.0f} core-ms per step). "
        f"{needed} runs of the study's {PAPER_DURATION_PS:g} ps for {methods} methods would take "
        f"{paper_core_h:.1f} core-h."
    )
    if not (enough and long_enough):
        text += " So this run cannot show the study's failure rate: " + (
            "too few runs" if not enough else "") + (" and " if not enough and not long_enough else "") + (
            "runs too short to fail as the study's did" if not long_enough else "") + "."
    return {
        "failure_rate": failure_rate, "confidence": confidence, "needed_runs": needed,
        "runs": runs, "duration_ps": duration_ps, "enough_runs": enough,
        "paper_length": long_enough, "core_s_per_step": cost,
        "interval_if_none_fail": list(none), "interval_if_expected_fail": list(expected),
        "config_core_h": config_core_h, "paper_core_h": paper_core_h, "text": text,
    }
