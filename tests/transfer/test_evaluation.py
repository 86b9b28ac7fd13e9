"""Stability evaluation on a hand-made Li–O system, Table 1 and its markdown beside the paper."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

from mlip_transfer.core.errors import DataError
from mlip_transfer.data import dataset
from mlip_transfer.transfer import evaluation, relaxation, table1

# The Li–O system of tests/test_hull.py: formation energies (eV/atom) on mu_Li=-2, mu_O=-5.
FORMATION = {
    "li": ("Li", 0.0), "li-b": ("Li", 0.05), "o2": ("O2", 0.0), "li2o": ("Li2O", -2.0),
    "li2o-b": ("Li2O", -1.9), "li2o2": ("Li2O2", -1.8), "lio2": ("LiO2", -0.9),
}
TEST_IDS = ["li2o2", "lio2", "li2o-b"]


def _energy(formula: str, e_form: float, mu: dict[str, float]) -> float:
    x = Composition(formula).get_atomic_fraction("O")
    return e_form + (1 - x) * mu["Li"] + x * mu["O"]


R2SCAN = {mid: _energy(f, e, {"Li": -2.0, "O": -5.0}) for mid, (f, e) in FORMATION.items()}
# The model sits on another energy scale (a per-element shift, like GGA vs r2SCAN).
MODEL = {mid: _energy(f, e, {"Li": -1.2, "O": -9.7}) for mid, (f, e) in FORMATION.items()}


def _materials() -> pd.DataFrame:
    rows = []
    for functional, energies in (("r2scan", R2SCAN), ("gga", MODEL)):
        for mid, (formula, e_form) in FORMATION.items():
            rows.append({
                "material_id": mid, "formula": formula, "functional": functional,
                "relaxed_energy_per_atom": energies[mid],
                "relaxed_energy_per_atom_uncorrected": energies[mid],
                "formation_energy_per_atom": e_form,
                "formation_energy_per_atom_uncorrected": e_form,
                "is_elemental_reference": mid in ("li", "o2"),
            })
    return pd.DataFrame(rows, columns=list(dataset.MATERIAL_COLUMNS))


def _relaxed() -> pd.DataFrame:
    def row(mid, energy, failure=None, failed=False, converged=True):
        return {
            "material_id": mid, "formula": FORMATION[mid][0], "n_atoms": 4,
            "energy_per_atom": energy, "n_steps": 10, "converged": converged, "failed": failed,
            "failure": failure, "message": None, "max_force": 0.01, "max_nn_distance": 2.0,
            "wall_s": 1.0, "structure_json": None,
        }

    return pd.DataFrame([
        row("li2o2", MODEL["li2o2"] + 0.05),                      # 50 meV/atom too high
        row("lio2", MODEL["lio2"], "not_converged", converged=False),  # kept, flagged
        row("li2o-b", math.nan, "isolated_atom", failed=True),    # failed: not scored
    ], columns=list(relaxation.RESULT_COLUMNS))


def _competitors(*ids: str) -> dict[str, float]:
    return {mid: MODEL[mid] for mid in ids}


def test_evaluate_stability_counts_failures_and_pins_the_maes():
    summary, per_material = evaluation.evaluate_stability(
        model_label="M4", relaxed=_relaxed(), reference_materials=_materials(),
        test_ids=TEST_IDS, competitor_energies=_competitors("li", "li-b", "o2", "li2o"),
        functional="r2scan",
    )
    assert summary["model"] == "M4"
    assert (summary["n_relaxed"], summary["n_failed"], summary["n_unconverged"]) == (3, 1, 1)
    assert summary["failed_isolated_atom"] == 1
    assert summary["failed_non_finite"] == summary["failed_error"] == 0
    # Li2O2 +0.05 on the model hull; LiO2 decomposes into 2/3 Li2O2 + 1/3 O2 (per atom), so its
    # hull rises by 0.05 * 2/3: errors +0.05 and -0.0333.
    assert summary["n_decomposition"] == 2
    assert summary["decomposition_energy_mae_mev"] == pytest.approx((50 + 100 / 3) / 2)
    assert summary["stability_agreement"] == 1.0
    assert summary["formation_energy_mae_test_mev"] == pytest.approx(25.0)
    # All compounds with energies on both sides: Li2O (static), Li2O2, LiO2.
    assert summary["n_formation"] == 3
    assert summary["formation_energy_mae_mev"] == pytest.approx(50 / 3)
    assert "static" in summary["deviation"]

    assert list(per_material["material_id"]) == TEST_IDS
    table = per_material.set_index("material_id")
    assert table.loc["li2o2", "decomposition_energy_error"] == pytest.approx(0.05)
    assert table.loc["li2o2", "decomposition_energy_reference"] == pytest.approx(-0.3)
    assert table.loc["lio2", "failure"] == "not_converged"
    assert table.loc["li2o-b", "failure"] == "isolated_atom"
    assert math.isnan(table.loc["li2o-b", "decomposition_energy_error"])
    assert table.loc["li2o2", "formation_energy_error"] == pytest.approx(0.05)


def test_a_failed_test_material_with_a_static_energy_stays_on_the_hull_unscored():
    summary, _ = evaluation.evaluate_stability(
        model_label="M4", relaxed=_relaxed(), reference_materials=_materials(),
        test_ids=TEST_IDS, competitor_energies=_competitors("li", "li-b", "o2", "li2o", "li2o-b"),
        functional="r2scan",
    )
    assert summary["n_decomposition"] == 2 and summary["n_formation"] == 4


def test_evaluate_stability_rejects_bad_input():
    kwargs = {"model_label": "M1", "reference_materials": _materials(),
              "competitor_energies": _competitors("li", "li-b", "o2", "li2o")}
    with pytest.raises(DataError, match="functional"):
        evaluation.evaluate_stability(relaxed=_relaxed(), test_ids=TEST_IDS, **kwargs)
    with pytest.raises(DataError, match="no relaxation"):
        evaluation.evaluate_stability(relaxed=_relaxed().iloc[:2], test_ids=TEST_IDS,
                                      functional="r2scan", **kwargs)
    with pytest.raises(DataError, match="element 'O'.*model"):
        evaluation.evaluate_stability(
            relaxed=_relaxed(), test_ids=TEST_IDS, functional="r2scan",
            **{**kwargs, "competitor_energies": _competitors("li", "li2o")},
        )


def _table1() -> pd.DataFrame:
    stability, _ = evaluation.evaluate_stability(
        model_label="M4", relaxed=_relaxed(), reference_materials=_materials(),
        test_ids=TEST_IDS, competitor_energies=_competitors("li", "li-b", "o2", "li2o"),
        functional="r2scan",
    )
    return table1.table1([
        {"model": "M2", "energy_mae_mev": 30.5, "n_failed": 2, "n_relaxed": 30},
        {"model": "M4", "energy_mae_mev": 20.123, "force_mae_mev": 40.0,
         "stress_mae_gpa": 0.2, "magmom_mae": 0.03},
        stability,
        {"model": "method4_residual", "energy_mae_mev": 19.0},
        {"model": "r2scan", "energy_mae_mev": 0.0},
    ])


def test_table1_merges_rows_by_model():
    table = _table1()
    assert list(table["model"]) == ["M2", "M4", "method4_residual", "r2scan"]
    assert list(table["paper_row"]) == ["method2", "method4", None, "r2scan_reference"]
    row = table.set_index("model").loc["M4"]
    assert row["energy_mae_mev"] == 20.123 and row["n_failed"] == 1 and row["n_relaxed"] == 3
    assert row["decomposition_energy_mae_mev"] == pytest.approx((50 + 100 / 3) / 2)
    assert np.isnan(table.set_index("model").loc["M2", "force_mae_mev"])
    assert table1.paper_row("Method 1") == "method1"
    assert table1.paper_row("chgnet-0.3.0") == "gga_pretrained"


def test_table1_markdown_shows_the_paper_beside_ours_and_blanks_the_unknown():
    markdown = table1.table1_markdown(_table1())
    lines = markdown.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")]
        for line in lines[2:] if line.startswith("|")
    }
    assert len(rows) == 4 and all(len(cells) == len(header) for cells in rows.values())

    def cell(model: str, column: str, paper: bool = False) -> str:
        index = header.index(column) + (1 if paper else 0)
        return rows[model][index]

    energy, decomposition = "Energy MAE (meV/atom)", "Decomposition-energy MAE (meV/atom)"
    formation, failed = "Formation-energy MAE (meV/atom)", "Failed relaxations"
    assert cell("M4", energy) == "20.12" and cell("M4", energy, paper=True) == "17"
    assert cell("M4", decomposition) == "41.67"
    assert cell("M4", decomposition, paper=True) == "23.66"
    assert cell("M4", formation, paper=True) == "29.38"
    assert cell("M4", failed) == "1/3" and cell("M4", failed, paper=True) == ""  # not reported
    assert cell("M2", failed) == "2/30" and cell("M2", failed, paper=True) == "40/34,927"
    assert cell("M2", "Force MAE (meV/Å)") == "" and cell("M2", energy, paper=True) == ""
    assert cell("r2scan", "Magmom MAE (μB)", paper=True) == "0.023"
    assert cell("r2scan", "Stress MAE (GPa)", paper=True) == "0.167"
    assert all(value == "" for value in rows["method4_residual"][1:] if value != "19.00")
    assert "Huang et al. 2025" in markdown


def test_paper_numbers_are_the_published_ones():
    paper = table1.PAPER_TABLE1
    assert [paper[f"method{i}"]["decomposition_energy_mae_mev"] for i in range(1, 5)] == [
        37.44, 41.22, 38.54, 23.66]
    assert paper["method2"]["formation_energy_mae_mev"] == 52.43
    assert paper["method4"]["formation_energy_mae_mev"] == 29.38
    assert paper["method1"]["stress_mae_gpa"] == 0.239
    assert paper["method3"]["failed_relaxations"] == (30, 34927)
    assert "failed_relaxations" not in paper["method4"]
    assert set(paper["gga_pretrained"]) == {"label"}


@pytest.mark.slow
def test_static_energies_match_chgnet_and_give_nan_for_isolated_atoms():
    from chgnet.model import CHGNet

    model = CHGNet.load(verbose=False, use_device="cpu")
    si = Structure(np.array([[0, 2.73, 2.73], [2.73, 0, 2.73], [2.73, 2.73, 0]]), ["Si", "Si"],
                   [[0, 0, 0], [0.25, 0.25, 0.25]])
    lonely = Structure(Lattice.cubic(25.0), ["Na", "Cl", "Na"],
                       [[0, 0, 0], [2.4, 0, 0], [12.4, 0, 0]], coords_are_cartesian=True)
    energies = evaluation.static_energies(model, {"si": si, "lonely": lonely, "si2": si},
                                          batch_size=1)
    assert list(energies) == ["si", "lonely", "si2"]
    expected = float(model.predict_structure(si, task="e")["e"])
    assert energies["si"] == pytest.approx(expected, abs=1e-6)
    assert energies["si2"] == energies["si"]
    assert math.isnan(energies["lonely"])
