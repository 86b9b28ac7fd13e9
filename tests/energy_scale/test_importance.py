"""Formation-energy differences and the decision-tree element importance (Fig. 1c/d)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.importance import (
    element_feature_importance,
    formation_energy_difference,
)


def _materials():
    rows = []
    for mid, formula, elemental, gga, gga_unc, r2 in [
        ("m-1", "Fe2O3", False, -1.70, -1.20, -1.60),
        ("m-2", "NaCl", False, -2.10, -1.90, -2.20),
        ("m-3", "Fe", True, 0.0, 0.0, 0.0),
    ]:
        for functional, corr, unc in (("gga", gga, gga_unc), ("r2scan", r2, r2)):
            rows.append({
                "material_id": mid, "formula": formula, "functional": functional,
                "formation_energy_per_atom": corr, "formation_energy_per_atom_uncorrected": unc,
                "is_elemental_reference": elemental,
            })
    rows.append({**rows[0], "material_id": "m-4", "functional": "gga"})  # no r2SCAN twin
    return pd.DataFrame(rows)


def test_formation_energy_difference_excludes_elements_and_picks_the_column():
    corrected = formation_energy_difference(_materials())
    assert list(corrected["material_id"]) == ["m-1", "m-2"]
    np.testing.assert_allclose(corrected["delta"], [-0.10, 0.10])
    uncorrected = formation_energy_difference(_materials(), corrected=False)
    np.testing.assert_allclose(uncorrected["delta"], [0.40, 0.30])
    with pytest.raises(DataError, match="'hse'"):
        formation_energy_difference(_materials(), target="hse")


def test_normalisation_divides_by_atom_counts_and_scales():
    comps = ["Fe2O3", "FeO", "NaCl", "Na2O", "FeCl2", "NaFeO2"]
    target = [0.5, 0.3, -0.1, 0.2, 0.1, 0.4]
    table = element_feature_importance(comps, target, scale=500.0).set_index("element")
    atoms = {"O": 3 + 1 + 1 + 2, "Fe": 2 + 1 + 1 + 1, "Na": 1 + 2 + 1, "Cl": 1 + 2}
    for el, count in atoms.items():
        assert table.at[el, "atom_count"] == count
        assert table.at[el, "normalised"] == pytest.approx(table.at[el, "importance"] / count * 500.0)
    assert table["importance"].sum() == pytest.approx(1.0)  # sklearn's Eq. 5 normalisation
    given = element_feature_importance(comps, target, atom_counts={"O": 70, "Fe": 50, "Na": 40, "Cl": 30})
    assert given.set_index("element").at["O", "atom_count"] == 70
    with pytest.raises(DataError, match="Cl"):
        element_feature_importance(comps, target, atom_counts={"O": 7, "Fe": 5, "Na": 4})
    with pytest.raises(DataError, match="index 2"):
        element_feature_importance(comps, [0.1, 0.2, np.nan, 0, 0, 0])


def test_target_that_depends_only_on_one_element_ranks_it_first():
    rng = np.random.default_rng(0)
    elements = ["Li", "O", "Fe", "Cl", "S"]
    comps = []
    for _ in range(300):
        chosen = rng.choice(elements, size=3, replace=False)
        comps.append({el: int(rng.integers(1, 4)) for el in chosen})
    target = [1.0 if "Cl" in c else 0.0 for c in comps]  # only whether Cl is present matters
    table = element_feature_importance(comps, target)
    assert table.iloc[0]["element"] == "Cl"
    assert table.iloc[0]["importance"] == pytest.approx(1.0)
    assert list(table.columns) == ["element", "importance", "atom_count", "counted", "normalised"]


def test_elements_in_fewer_atoms_than_the_cutoff_keep_raw_importance_but_no_normalised():
    comps = ["Fe2O3", "FeO", "NaCl", "Na2O", "FeCl2", "NaFeO2"]
    target = [0.5, 0.3, -0.1, 0.2, 0.1, 0.4]
    full = element_feature_importance(comps, target, scale=500.0).set_index("element")
    cut = element_feature_importance(comps, target, scale=500.0, min_atoms=5)
    # Atoms: O 7, Fe 5, Na 4, Cl 3: Na and Cl fall below 5 and go last.
    assert set(cut["element"][-2:]) == {"Na", "Cl"}
    rows = cut.set_index("element")
    assert not rows.at["Na", "counted"] and not rows.at["Cl", "counted"]
    assert rows.at["O", "counted"] and rows.at["Fe", "counted"]
    assert np.isnan(rows.at["Na", "normalised"]) and np.isnan(rows.at["Cl", "normalised"])
    for el in ("O", "Fe", "Na", "Cl"):
        assert rows.at[el, "importance"] == full.at[el, "importance"]
    assert rows.at["O", "normalised"] == full.at["O", "normalised"]


def test_missing_formation_energies_are_dropped_and_listed_on_request():
    import numpy as np
    import pandas as pd
    import pytest

    from mlip_transfer.core.errors import DataError
    from mlip_transfer.energy_scale.importance import formation_energy_difference

    rows = []
    for material, formula, gga, r2scan in (("m1", "LiF", -3.1, -3.5), ("m2", "NaCl", -2.1, np.nan)):
        for functional, value in (("gga", gga), ("r2scan", r2scan)):
            rows.append(
                {"material_id": material, "formula": formula, "functional": functional,
                 "relaxed_energy_per_atom": -1.0, "relaxed_energy_per_atom_uncorrected": -1.0,
                 "formation_energy_per_atom": -1.0, "formation_energy_per_atom_uncorrected": value,
                 "is_elemental_reference": False}
            )
    materials = pd.DataFrame(rows)
    with pytest.raises(DataError, match="m2"):
        formation_energy_difference(materials, corrected=False)
    kept = formation_energy_difference(materials, corrected=False, on_missing="drop")
    assert kept["material_id"].tolist() == ["m1"] and kept.attrs["dropped"] == ["m2"]
    assert kept["delta"].iloc[0] == pytest.approx(0.4)
