"""Stress units of extended XYZ files, and a check that the declared unit is plausible.

The canonical stress is in GPa; files declare theirs with ``data.extxyz.stress_unit``. The sign
convention is ASE's (positive = tensile) whatever the unit: VASP's kBar values, which have the
opposite sign, must be negated before they are written to extended XYZ (ASE's own VASP readers
do both conversions, giving eV/Å³).

A unit cannot be read off the numbers for certain, but a wrong one is usually off by a large
factor (160 between eV/Å³ and GPa, 1600 between eV/Å³ and kBar): the median over a file's
frames of the largest stress component then lands far outside what DFT frames show. The check
warns (naming the file) when the declared unit gives an implausible median and another unit a
plausible one; a factor of 10 (GPa vs kBar) is usually too small to tell by size, but
:mod:`.strain_stress` tells it from the energies of strained frames where a file has them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from ase import units

# Unit -> factor to GPa. "eV/A3" is the spelling of earlier versions and stays accepted.
STRESS_UNITS = {"eV/A^3": 1.0 / units.GPa, "eV/A3": 1.0 / units.GPa, "GPa": 1.0, "kBar": 0.1}
# Median over a file's frames of max |stress component| that DFT training frames plausibly
# show, GPa: near-relaxed structures give ~0.01-1 GPa, strained or hot frames up to a few tens.
PLAUSIBLE_MEDIAN_GPA = (0.01, 50.0)

log = logging.getLogger("mlip_transfer.data.parse")


def _misfit(value_gpa: float) -> float:
    """How many decades ``value_gpa`` lies outside the plausible band (0 inside it)."""
    low, high = PLAUSIBLE_MEDIAN_GPA
    return max(0.0, math.log10(low / value_gpa), math.log10(value_gpa / high))


def stress_unit_warning(
    max_abs_gpa: Sequence[float], *, declared: str, file: str
) -> str | None:
    """A warning if the stresses of one file fit another unit better than ``declared``.

    Args:
        max_abs_gpa: Per frame, the largest |stress component| after conversion from
            ``declared`` to GPa.
        declared: The configured unit (a key of :data:`STRESS_UNITS`).
        file: The file, named in the warning.

    Returns:
        The warning text, or None if the declared unit is plausible (or there is no stress).
    """
    values = np.asarray(max_abs_gpa, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0 or float(np.median(values)) <= 0.0:
        return None
    median = float(np.median(values))
    if _misfit(median) == 0.0:
        return None
    raw = median / STRESS_UNITS[declared]  # the median as written in the file
    alternatives = {
        unit: raw * factor
        for unit, factor in STRESS_UNITS.items()
        if unit != "eV/A3" and factor != STRESS_UNITS[declared]
    }
    best = min(alternatives, key=lambda unit: _misfit(alternatives[unit]))
    if _misfit(alternatives[best]) >= _misfit(median):
        return None
    low, high = PLAUSIBLE_MEDIAN_GPA
    as_gpa = "" if declared == "GPa" else f" = {median:.4g} GPa"
    return (
        f"{file}: the median over {values.size} frames of the largest stress component is "
        f"{raw:.4g} {declared}{as_gpa}, outside the {low:g}-{high:g} GPa that DFT "
        f"frames plausibly show; read as {best} it would be {alternatives[best]:.4g} GPa. "
        f"Check data.extxyz.stress_unit (now {declared!r})."
    )


def warn_stress_unit(max_abs_gpa: Sequence[float], *, declared: str, file: str) -> str | None:
    """:func:`stress_unit_warning`, also logged as a warning."""
    message = stress_unit_warning(max_abs_gpa, declared=declared, file=file)
    if message:
        log.warning("%s", message)
    return message
