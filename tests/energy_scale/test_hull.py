"""Convex hulls: decomposition and formation energies on a hand-made Li–O system.

Elemental references mu_Li = -2, mu_O = -5 eV/atom. Formation energies (eV/atom) at O fraction
x: Li2O -2.0 (x=1/3), Li2O2 -1.8 (x=1/2), LiO2 -0.9 (x=2/3), a Li2O polymorph -1.9, a Li
polymorph +0.05. By hand:

* hull: Li, Li2O, Li2O2, O2; LiO2 lies 0.3 above (the Li2O2–O2 line gives -1.2 at x=2/3);
* Li2O without itself: Li–Li2O2 line at x=1/3 is -1.2, so -2.0 + 1.2 = -0.8;
* Li2O2 without itself: Li2O–O2 line at x=1/2 is -1.5, so -1.8 + 1.5 = -0.3;
* the Li2O polymorph: 0.1 above Li2O; the Li polymorph: 0.05 above Li.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale import energies, hull_errors

MU = {"Li": -2.0, "O": -5.0}
FORMATION = {
    "li": ("Li", 0.0), "li-b": ("Li", 0.05), "o2": ("O2", 0.0), "li2o": ("Li2O", -2.0),
    "li2o-b": ("Li2O", -1.9), "li2o2": ("Li2O2", -1.8), "lio2": ("LiO2", -0.9),
}
EXPECTED_DECOMPOSITION = {
    "li": 0.0, "li-b": 0.05, "o2": 0.0, "li2o": -0.8, "li2o-b": 0.1, "li2o2": -0.3, "lio2": 0.3,
}
COMPOUNDS = ["li2o", "li2o-b", "li2o2", "lio2"]


def _x_o(formula: str) -> float:
    from pymatgen.core import Composition

    return Composition(formula).get_atomic_fraction("O")


def _energies(mu: dict[str, float], formation: dict) -> dict[str, float]:
    """Energy per atom of every material from formation energies and elemental references."""
    out = {}
    for mid, (formula, e_form) in formation.items():
        x = _x_o(formula)
        out[mid] = e_form + (1 - x) * mu["Li"] + x * mu["O"]
    return out


FORMULAS = {mid: formula for mid, (formula, _) in FORMATION.items()}
REFERENCE = _energies(MU, FORMATION)


def _rows(energy: dict[str, float]) -> list[tuple[str, str, float]]:
    return [(mid, FORMULAS[mid], energy[mid]) for mid in FORMULAS]


def test_phase_diagram_entries_carry_total_energy_and_material_id():
    diagram = energies.phase_diagram(pd.DataFrame(
        _rows(REFERENCE), columns=["material_id", "formula", "energy_per_atom"]
    ))
    by_id = {entry.attribute: entry for entry in diagram.all_entries}
    assert by_id["li2o2"].composition.num_atoms == 4
    assert by_id["li2o2"].energy == pytest.approx(4 * REFERENCE["li2o2"])
    assert by_id["o2"].energy == pytest.approx(2 * -5.0)
    stable = sorted(entry.attribute for entry in diagram.stable_entries)
    assert stable == ["li", "li2o", "li2o2", "o2"]


def test_decomposition_energies_match_the_hand_computed_hull():
    table = energies.decomposition_energies(_rows(REFERENCE), _rows(REFERENCE))
    assert list(table["material_id"]) == list(FORMULAS)
    got = dict(zip(table["material_id"], table["decomposition_energy"]))
    assert got == pytest.approx(EXPECTED_DECOMPOSITION, abs=1e-9)
    row = table.set_index("material_id")
    assert row.loc["lio2", "e_above_hull"] == pytest.approx(0.3)
    assert row.loc["li2o", "e_above_hull"] == pytest.approx(0.0, abs=1e-12)
    assert row.loc["li2o", "formation_energy_per_atom"] == pytest.approx(-2.0)
    assert bool(row.loc["li2o2", "stable"]) and not bool(row.loc["lio2", "stable"])
    assert row.loc["lio2", "decomposition"] == "Li2O2 (li2o2) + O2 (o2)"
    assert row.loc["li2o", "decomposition"] == "Li (li) + Li2O2 (li2o2)"


def test_unstable_polymorph_gets_its_energy_above_hull_not_pymatgens_separation_energy():
    # pymatgen's get_decomp_and_phase_separation_energy drops every Li2O entry from the
    # competitors, so it scores the unstable polymorph against Li + Li2O2: -1.9 + 1.2 = -0.7.
    diagram = energies.phase_diagram(_rows(REFERENCE))
    polymorph = next(e for e in diagram.all_entries if e.attribute == "li2o-b")
    assert diagram.get_decomp_and_phase_separation_energy(polymorph)[1] == pytest.approx(-0.7)
    table = energies.decomposition_energies(_rows(REFERENCE)[4:5], _rows(REFERENCE))
    assert table["decomposition_energy"].iloc[0] == pytest.approx(0.1)


def test_a_target_outside_the_reference_set_is_scored_against_it():
    # A new LiO2 below the Li2O2-O2 line by 0.1 is on the hull: -0.1 (phase separation).
    new = [("lio2-new", "LiO2", _energies(MU, {"x": ("LiO2", -1.3)})["x"])]
    table = energies.decomposition_energies(new, _rows(REFERENCE))
    assert table["decomposition_energy"].iloc[0] == pytest.approx(-0.1)
    assert bool(table["stable"].iloc[0])


def test_missing_elemental_reference_is_named():
    rows = [row for row in _rows(REFERENCE) if row[1] != "O2"]
    with pytest.raises(DataError, match="'O'"):
        energies.phase_diagram(rows)
    with pytest.raises(DataError, match="li2o.*element 'O'"):
        energies.decomposition_energies(rows[2:3], rows)
    model = {mid: e for mid, e in REFERENCE.items() if mid != "o2"}
    with pytest.raises(DataError, match="element 'O'.*model energies"):
        hull_errors.decomposition_energy_errors(model, REFERENCE, materials=FORMULAS)
    with pytest.raises(DataError, match="element 'O'.*reference energies"):
        hull_errors.formation_energy_errors(REFERENCE, model, materials=FORMULAS)
    with pytest.raises(DataError, match="not finite"):
        energies.phase_diagram([("x", "Li", float("nan"))])


def test_errors_vanish_under_a_per_element_energy_shift():
    # A functional change that only shifts elemental energies (an AtomRef) changes neither
    # formation nor decomposition energies.
    shifted = _energies({"Li": -1.2, "O": -9.7}, FORMATION)
    decomposition = hull_errors.decomposition_energy_errors(shifted, REFERENCE, materials=FORMULAS)
    assert list(decomposition.table["material_id"]) == COMPOUNDS  # unaries left out by default
    assert decomposition.mae_mev == pytest.approx(0.0, abs=1e-6)
    formation = hull_errors.formation_energy_errors(shifted, REFERENCE, materials=FORMULAS)
    assert formation.mae_mev == pytest.approx(0.0, abs=1e-6)
    assert formation.table["formation_energy_model"].tolist() == pytest.approx(
        [FORMATION[mid][1] for mid in COMPOUNDS]
    )


def test_raising_one_compound_moves_the_hull_exactly():
    # Li2O2 +50 meV/atom on the model side: its own decomposition energy rises by 0.05; LiO2
    # and Li2O, which decompose into 2/3 Li2O2 (per atom), see the hull rise by 0.05 * 2/3.
    model = dict(_energies({"Li": -1.2, "O": -9.7}, FORMATION))
    model["li2o2"] += 0.05
    result = hull_errors.decomposition_energy_errors(model, REFERENCE, materials=FORMULAS)
    errors = dict(zip(result.table["material_id"], result.table["decomposition_energy_error"]))
    assert errors == pytest.approx(
        {"li2o": -0.05 * 2 / 3, "li2o-b": 0.0, "li2o2": 0.05, "lio2": -0.05 * 2 / 3}, abs=1e-9
    )
    assert result.mae_mev == pytest.approx(1000 * (0.05 + 2 * 0.05 * 2 / 3) / 4)  # 29.1667
    table = result.table.set_index("material_id")
    assert table.loc["li2o2", "decomposition_energy_model"] == pytest.approx(-0.25)
    assert table.loc["li2o2", "decomposition_energy_reference"] == pytest.approx(-0.3)
    assert table["stable_model"].tolist() == table["stable_reference"].tolist()

    formation = hull_errors.formation_energy_errors(model, REFERENCE, materials=FORMULAS)
    assert formation.mae_mev == pytest.approx(1000 * 0.05 / 4)
    only = hull_errors.formation_energy_errors(model, REFERENCE, materials=FORMULAS,
                                            targets=["li2o2"])
    assert only.mae_mev == pytest.approx(50.0)


def test_comparison_uses_only_materials_with_energies_on_both_sides():
    model = dict(REFERENCE)
    model["li2o2"] = float("nan")  # e.g. a failed relaxation without a fallback energy
    reference = dict(REFERENCE)
    del reference["li2o-b"]
    result = hull_errors.decomposition_energy_errors(model, reference, materials=FORMULAS)
    assert list(result.table["material_id"]) == ["li2o", "lio2"]
    # Without Li2O2 on either hull: LiO2 is 0.1 above the Li2O-O2 line (-1.0 at x=2/3), and Li2O
    # competes with the Li-LiO2 line (-0.9 / 2 = -0.45 at x=1/3): -2.0 + 0.45 = -1.55.
    assert result.table["decomposition_energy_reference"].tolist() == pytest.approx([-1.55, 0.1])
    assert result.mae_mev == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DataError, match="not in the materials table"):
        hull_errors.decomposition_energy_errors(model, reference, materials=FORMULAS,
                                             targets=["nope"])


def test_materials_table_with_two_functionals_is_accepted():
    table = pd.DataFrame({
        "material_id": list(FORMULAS) * 2,
        "formula": list(FORMULAS.values()) * 2,
        "functional": ["gga"] * len(FORMULAS) + ["r2scan"] * len(FORMULAS),
    })
    result = hull_errors.formation_energy_errors(REFERENCE, REFERENCE, materials=table)
    assert len(result.table) == 4 and result.mae_mev == pytest.approx(0.0)
