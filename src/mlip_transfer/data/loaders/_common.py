"""Helpers shared by the loaders: number and array parsing with located errors, drop handling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.report import ParseReport

ON_INVALID = ("raise", "drop")
# Bare NaN/Infinity tokens are quoted by the MP loader's stream filter (ijson rejects them);
# they come back here as strings and are turned into the float they stand for.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def drop_invalid(
    error: DataError,
    *,
    on_invalid: str,
    report: ParseReport | None,
    file: str,
    frame_id: str,
    material_id: str | None,
) -> None:
    """Handle a malformed frame: re-raise ``error`` (``on_invalid="raise"``) or record the
    frame as dropped (reason ``invalid``) with the error's field and reason."""
    if on_invalid == "raise":
        raise error
    report.drop(
        reason="invalid",
        file=file,
        frame_id=frame_id,
        material_id=material_id,
        field=error.field,
        detail=error.reason,
    )


def check_on_invalid(on_invalid: str, report: ParseReport | None) -> None:
    """Raise ConfigError on an unknown ``on_invalid`` or a ``"drop"`` without a report."""
    if on_invalid not in ON_INVALID:
        raise ConfigError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
    if on_invalid == "drop" and report is None:
        raise ConfigError('on_invalid="drop" needs a ParseReport to record the dropped frames')


def number(value: Any, *, file: str, record: str, field: str) -> float | None:
    """A finite float, or None for a missing value; anything else raises a located DataError."""
    if value is None:
        return None
    if isinstance(value, str) and value in _NON_FINITE:
        value = _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"expected a number, got {value!r}", file=file, record=record, field=field)
    if not math.isfinite(float(value)):
        raise DataError(f"value is {value} (not finite)", file=file, record=record, field=field)
    return float(value)


def array(value: Any, *, file: str, record: str, field: str) -> np.ndarray | None:
    """A float array (shape not checked here), or None for a missing value."""
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"not a numeric array ({exc})", file=file, record=record, field=field
        ) from exc


def relocate(error: DataError, *, file: str, fields: dict[str, str]) -> DataError:
    """Re-issue a canonical-validation error under the source file's own field names."""
    field = fields.get(error.field, error.field) if error.field else error.field
    return DataError(error.reason, file=file, record=error.record, field=field)
