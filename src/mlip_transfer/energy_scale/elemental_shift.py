"""Real-data check of AtomRef referencing: elemental r2SCAN − PBE shifts from MatPES DFT.

If referencing captures the functionals' energy scales, the difference between the two fitted
AtomRefs (r2SCAN − GGA) should track the difference between the two functionals' DFT energies of
each element's ground state. The MatPES elemental references give those DFT energies.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.correlation import pearson


def load_matpes_elemental_energies(path: str | Path) -> dict[str, float]:
    """Energy per atom (eV/atom) of each element's MatPES ground state, from the json.gz file."""
    path = Path(path)
    with gzip.open(path, "rt") as handle:
        records = json.load(handle)
    energies = {}
    for element, record in records.items():
        value = record.get("energy_per_atom")
        if value is None or not np.isfinite(value):
            raise DataError("missing or non-finite value", file=str(path), record=element, field="energy_per_atom")
        energies[element] = float(value)
    return energies


def shift_table(
    dft_source: Mapping[str, float],
    dft_target: Mapping[str, float],
    atomref_shifts: Mapping[str, Mapping[str, float]],
) -> pd.DataFrame:
    """One row per element with the DFT shift and each AtomRef shift (target − source).

    Args:
        dft_source: Element -> source-functional (PBE) DFT energy per atom.
        dft_target: Element -> target-functional (r2SCAN) DFT energy per atom.
        atomref_shifts: Label (``refit``, ``shipped``) -> element -> AtomRef shift; elements an
            AtomRef does not determine are absent and get NaN.
    """
    elements = sorted(set(dft_source) & set(dft_target))
    table = pd.DataFrame(
        {
            "element": elements,
            "matpes_pbe": [dft_source[el] for el in elements],
            "matpes_r2scan": [dft_target[el] for el in elements],
        }
    )
    table["matpes_shift"] = table["matpes_r2scan"] - table["matpes_pbe"]
    for label, shifts in atomref_shifts.items():
        table[f"{label}_shift"] = [shifts.get(el, np.nan) for el in elements]
    return table


def shift_agreement(table: pd.DataFrame, column: str) -> dict[str, float]:
    """Pearson r and mean absolute difference between the DFT shift and one AtomRef shift."""
    both = table[["matpes_shift", column]].dropna()
    if len(both) < 3:
        return {"pearson": float("nan"), "mad": float("nan"), "n": int(len(both))}
    return {
        "pearson": pearson(both["matpes_shift"], both[column]),
        "mad": float(np.mean(np.abs(both["matpes_shift"] - both[column]))),
        "n": int(len(both)),
    }
