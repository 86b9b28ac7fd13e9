"""Elemental reference energies and formation energies per atom."""

from __future__ import annotations

import pandas as pd
import pytest
from pymatgen.core import Composition

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.energies import (
    elemental_reference_energies,
    formation_energy_per_atom,
)


def _table() -> pd.DataFrame:
    rows = [
        # material_id, formula, functional, E/atom, E/atom uncorrected, is_elemental_reference
        ("elem-Fe", "Fe", "gga", -8.0, -8.0, True),
        ("fe-other", "Fe", "gga", -7.5, -7.5, True),  # a higher polymorph: not the reference
        ("elem-O", "O2", "gga", -5.0, -5.0, True),
        ("elem-Fe", "Fe", "r2scan", -14.0, -14.0, True),
        ("elem-O", "O2", "r2scan", -12.0, -12.0, True),
        ("wbm-1", "Fe2O3", "gga", -7.0, -6.3, False),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "material_id", "formula", "functional", "relaxed_energy_per_atom",
            "relaxed_energy_per_atom_uncorrected", "is_elemental_reference",
        ],
    )


def test_references_from_table_take_lowest_polymorph_per_functional():
    assert elemental_reference_energies(_table(), functional="gga") == {"Fe": -8.0, "O": -5.0}
    assert elemental_reference_energies(_table(), functional="r2scan") == {"Fe": -14.0, "O": -12.0}


def test_references_need_a_functional_when_the_table_mixes_them():
    with pytest.raises(DataError, match="functional"):
        elemental_reference_energies(_table())


def test_references_from_mapping_and_column():
    assert elemental_reference_energies({"Fe": -8.0, "O2": -5.0}) == {"Fe": -8.0, "O": -5.0}
    refs = elemental_reference_energies(
        _table(), functional="gga", column="relaxed_energy_per_atom_uncorrected"
    )
    assert refs == {"Fe": -8.0, "O": -5.0}


def test_references_reject_compounds():
    with pytest.raises(DataError, match="not a single element"):
        elemental_reference_energies({"FeO": -7.0})


def test_formation_energy_is_exact():
    refs = {"Fe": -8.0, "O": -5.0}
    # Fe2O3: 0.4 * -8 + 0.6 * -5 = -6.2; -7.0 - (-6.2) = -0.8
    assert formation_energy_per_atom("Fe2O3", -7.0, refs) == pytest.approx(-0.8, abs=1e-12)
    assert formation_energy_per_atom(Composition("Fe4O6"), -7.0, refs) == pytest.approx(-0.8)
    assert formation_energy_per_atom({"Fe": 2, "O": 3}, -7.0, refs) == pytest.approx(-0.8)


def test_formation_energy_of_an_element_is_zero():
    assert formation_energy_per_atom("Fe", -8.0, {"Fe": -8.0}) == 0.0
    assert formation_energy_per_atom("O2", -5.0, {"O": -5.0}) == 0.0


def test_missing_reference_names_the_element():
    with pytest.raises(DataError, match="'O'") as info:
        formation_energy_per_atom("Fe2O3", -7.0, {"Fe": -8.0}, record="wbm-1")
    assert info.value.record == "wbm-1"
