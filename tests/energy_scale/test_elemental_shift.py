from pathlib import Path

import numpy as np
import pytest

from mlip_transfer.energy_scale.chgnet_atomref import shipped_atomref
from mlip_transfer.energy_scale.elemental_shift import (
    load_matpes_elemental_energies,
    shift_agreement,
    shift_table,
)

REFERENCE = Path(__file__).resolve().parents[2] / "resources" / "reference"


def test_shift_table_aligns_elements_and_marks_undetermined_ones():
    table = shift_table({"Fe": -8.0, "O": -4.9, "Na": -1.3}, {"Fe": -40.0, "O": -10.0}, {"refit": {"Fe": -31.5}})
    assert list(table["element"]) == ["Fe", "O"]
    assert table["matpes_shift"].tolist() == pytest.approx([-32.0, -5.1])
    assert table["refit_shift"].iloc[0] == -31.5 and np.isnan(table["refit_shift"].iloc[1])


def test_agreement_needs_three_elements_and_measures_offset():
    table = shift_table({"A": 0.0, "B": 0.0, "C": 0.0}, {"A": 1.0, "B": 2.0, "C": 4.0}, {"x": {"A": 1.5, "B": 2.5, "C": 4.5}})
    table["element"] = ["H", "He", "Li"]
    stats = shift_agreement(table, "x_shift")
    assert stats["pearson"] == pytest.approx(1.0) and stats["mad"] == pytest.approx(0.5) and stats["n"] == 3
    assert np.isnan(shift_agreement(table.iloc[:2], "x_shift")["pearson"])


def test_real_matpes_shift_tracks_chgnets_shipped_atomref_shift():
    """The grounding check on real DFT numbers: r2SCAN − PBE elemental shifts vs CHGNet's AtomRefs."""
    pbe = load_matpes_elemental_energies(REFERENCE / "MatPES-PBE-Element-Refs.json.gz")
    r2scan = load_matpes_elemental_energies(REFERENCE / "MatPES-r2SCAN-Element-Refs.json.gz")
    gga, target = shipped_atomref("MPtrj"), shipped_atomref("MP-r2SCAN")
    shipped = {el: target[el] - gga[el] for el in set(gga) & set(target)}
    stats = shift_agreement(shift_table(pbe, r2scan, {"shipped": shipped}), "shipped_shift")
    assert stats["n"] >= 80
    assert stats["pearson"] > 0.99
