"""The result files a claims table reads, and which data and teacher they came from.

Readers are lenient about absence: a stage the run did not make (a method it did not train, a
model it did not evaluate) gives ``None`` or no row, and the claim says so instead of failing.
They are strict about content: a file that is there but unreadable raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlip_transfer.core.flags import SEPARATOR
from mlip_transfer.core.provenance import PROVENANCE_FILE, DataSource
from mlip_transfer.transfer.step0 import STEP0_SUFFIX

# The GGA/GGA+U teacher of the surrogate default dataset (data/surrogate/teacher_models.py).
GGA_TEACHER = "chgnet-0.3.0"


@dataclass(frozen=True)
class Origin:
    """Which data a row's inputs came from.

    Attributes:
        data: The data banner (``Data: surrogate-default (SURROGATE labels ...)``).
        teacher: What made the labels.
        caveat: What a reader must keep in mind (from the provenance).
        is_dft: Whether the labels are DFT.
    """

    data: str
    teacher: str
    caveat: str = ""
    is_dft: bool = False


def _teacher(record: dict[str, Any], source: DataSource) -> str:
    if source.name == "stillinger-weber":
        return ("Stillinger-Weber potential (Si: Stillinger & Weber 1985; Ge: Ding & Andersen "
                "1986), not DFT")
    if source.is_dft:
        return "none: DFT labels"
    settings = (record.get("parse") or {}).get("settings") or {}
    r2scan = settings.get("teacher")
    if not r2scan:
        match = re.search(r"r2SCAN from ([\w.-]+)", source.labels)
        r2scan = match.group(1) if match else None
    if source.name == "surrogate-default" and r2scan:
        return f"GGA/GGA+U: {GGA_TEACHER}; r2SCAN: {r2scan} (pretrained potentials, not DFT)"
    return source.labels or source.description


def origin(data_dir: str | Path) -> Origin:
    """The :class:`Origin` of a dataset folder (its ``provenance.json``)."""
    source = DataSource.read(data_dir)
    record = json.loads((Path(data_dir) / PROVENANCE_FILE).read_text())
    return Origin(data=source.banner, teacher=_teacher(record, source), caveat=source.caveat,
                  is_dft=source.is_dft)


def read_json(path: str | Path | None) -> Any:
    """A JSON file's content, or None when ``path`` is None or absent."""
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def read_csv(path: str | Path | None) -> pd.DataFrame | None:
    """A CSV file as a table, or None when ``path`` is None or absent."""
    if path is None or not Path(path).is_file():
        return None
    return pd.read_csv(path, keep_default_na=True)


def flag_list(text: Any) -> list[str]:
    """The flags of a ``flags`` cell (messages joined by "; "), as a list; empty cells none."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return [part.strip() for part in str(text).split(SEPARATOR) if part.strip()]


def table1_rows(table: pd.DataFrame | None, methods: Sequence[str]) -> dict[str, dict]:
    """Trained methods' Table 1 rows by model.

    A row counts when its ``model`` is one of ``methods`` and, where the table has a ``stage``
    column, its stage is ``trained`` (or blank). Step-0 and zero-shot rows are left out.
    """
    if table is None:
        return {}
    rows = {}
    for row in table.to_dict("records"):
        stage = row.get("stage")
        if isinstance(stage, str) and stage.strip() and stage.strip() != "trained":
            continue
        if row.get("model") in methods:
            rows[row["model"]] = row
    return rows


def step0_rows(table: pd.DataFrame | None, methods: Sequence[str]) -> dict[str, dict]:
    """The before-training Table 1 row of each method (``<method>_step0``), where present."""
    if table is None:
        return {}
    by_model = {row.get("model"): row for row in table.to_dict("records")}
    return {m: by_model[m + STEP0_SUFFIX] for m in methods if m + STEP0_SUFFIX in by_model}


def epoch_steps(gradients: pd.DataFrame | None) -> int | None:
    """Optimiser steps per epoch, from a ``gradients.csv`` (``step / epoch_fraction``; steps
    count across epochs, so a window longer than an epoch still gives one epoch's steps)."""
    if gradients is None or gradients.empty:
        return None
    rows = gradients[gradients["epoch_fraction"] > 0]
    if rows.empty:
        return None
    return int((rows["step"] / rows["epoch_fraction"]).round().max())
