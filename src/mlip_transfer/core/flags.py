"""Automatic flags: results that training or relaxation did not change, so that no table reports
them as a method's result without saying so.

Each check returns a :class:`Flag` or ``None``. Tables carry the flags' messages in a ``flags``
column (:func:`flag_text`), and their markdown and figures show them beside the numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Relative change below which a validation error counts as unchanged by training.
UNTRAINED_TOLERANCE = 0.01
# How close (relative) a density ratio may come to the strained start's before it is flagged.
STRAINED_START_TOLERANCE = 0.01


@dataclass(frozen=True)
class Flag:
    """One flag: a short code for machines and a sentence for readers."""

    code: str
    message: str


def not_trained(
    before: float, after: float, *, metric: str, unit: str = "",
    tolerance: float = UNTRAINED_TOLERANCE,
) -> Flag | None:
    """Flag a validation error that changed by less than ``tolerance`` (relative) in training.

    Args:
        before, after: The error before the first and after the last optimiser step.
        metric: What the error is (``validation energy MAE``).
        unit: Its unit, for the message.
        tolerance: Relative change that counts as a change (default 1 %).
    """
    if not (math.isfinite(before) and math.isfinite(after)) or before == 0:
        return None
    change = abs(after - before) / abs(before)
    if change >= tolerance:
        return None
    return Flag("not_trained", f"not trained at this budget: {metric} changed {100 * change:.2f} % "
                f"({before:.4g} → {after:.4g}{' ' + unit if unit else ''})")


# What a training's history.csv holds per validation row: target, column, unit.
HISTORY_TARGETS = (("energy", "energy_mae", "eV/atom"), ("force", "force_mae", "eV/Å"))


def history_not_trained(
    history: str | os.PathLike, *, what: str = "validation"
) -> dict[str, Flag | None] | None:
    """Per target (energy, force), :func:`not_trained` of a CHGNet training's ``history.csv``:
    the validation error before the first step (epoch 0) against the one after the last.

    Args:
        history: The ``history.csv`` the trainer writes.
        what: How the messages name the error (``validation`` -> "validation energy MAE").

    Returns:
        ``{"energy": flag or None, "force": flag or None}``; None where the history has no
        validation before training to compare with.
    """
    import pandas as pd  # only here: core imports no pandas otherwise

    val = pd.read_csv(history).query("split == 'val'").sort_values("epoch")
    if len(val) < 2 or val["epoch"].iloc[0] != 0:
        return None
    first, last = val.iloc[0], val.iloc[-1]
    return {target: not_trained(float(first[column]), float(last[column]),
                                metric=f"{what} {target} MAE", unit=unit)
            for target, column, unit in HISTORY_TARGETS}


def relaxations_without_step(n_steps: Iterable[int], *, what: str = "relaxations") -> Flag | None:
    """Flag relaxations that took no optimiser step (their result is the starting structure)."""
    steps = [int(n) for n in n_steps]
    idle = sum(n == 0 for n in steps)
    if not idle:
        return None
    return Flag("no_relaxation_step", f"{idle} of {len(steps)} {what} took no step: their "
                "result is the starting structure")


def at_strained_start(
    ratio: float, *, strain: float, tolerance: float = STRAINED_START_TOLERANCE
) -> Flag | None:
    """Flag a density ratio (experimental / predicted, as the density stage defines it) within
    ``tolerance`` of ``(1 + strain)^3``, the ratio of a relaxation that never moved from its
    isotropically strained start.

    A lattice scaled by ``1 + strain`` has density ``(1 + strain)^-3`` times the reference's, so
    experimental / predicted is ``(1 + strain)^3`` there (0.729 for the paper's -10 %).
    """
    start = (1.0 + strain) ** 3
    if not math.isfinite(ratio) or abs(ratio - start) > tolerance * start:
        return None
    return Flag("density_at_strained_start", f"density ratio {ratio:.3f} is within "
                f"{100 * tolerance:g} % of the strained start's {start:.3f} "
                f"((1 {strain:+g})^3): the relaxation did not move the cell")


def indistinguishable(
    a: Sequence[float], b: Sequence[float], *, names: tuple[str, str], metric: str
) -> Flag | None:
    """Flag two methods whose mean errors differ by no more than their seeds' spread.

    The spread of each method is the range (max - min) of its seeds' values; with a single seed
    per method there is no spread to compare with, and nothing is flagged.
    """
    a = [v for v in a if math.isfinite(v)]
    b = [v for v in b if math.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        return None
    gap = abs(sum(a) / len(a) - sum(b) / len(b))
    spread = max(max(a) - min(a), max(b) - min(b))
    if gap > spread:
        return None
    return Flag("indistinguishable", f"{names[0]} and {names[1]} are indistinguishable on "
                f"{metric}: their means differ by {gap:.3g}, within the seeds' spread {spread:.3g}")


SEPARATOR = "; "  # between the messages of one ``flags`` cell


def flag_text(flags: Iterable[Flag | None]) -> str:
    """The messages of the raised flags, joined by :data:`SEPARATOR` (empty when none is)."""
    return SEPARATOR.join(flag.message for flag in flags if flag is not None)
