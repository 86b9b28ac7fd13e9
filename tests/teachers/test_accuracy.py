"""Error tables of the teachers on small hand-made predictions (no model loaded)."""

import numpy as np
import pytest

from mlip_transfer.teachers.accuracy import (
    difference_summary,
    element_differences,
    energy_errors,
    error_stats,
    evenly_spaced,
    frame_differences,
)
from mlip_transfer.teachers.singlepoint import Prediction, predict_all


def test_energy_errors_list_every_reference_key_and_the_statistics_follow():
    reference = {"Si": -5.0, "Yb": -2.0, "Xe": -0.1}
    predicted = {"t1": {"Si": -4.9, "Yb": 34.0}, "t2": {"Si": -5.0, "Yb": -2.3, "Xe": -0.1}}
    skipped = {"t1": {"Xe": "ValueError: isolated atom"}}
    table = energy_errors(reference, predicted, skipped)
    assert list(table.columns) == ["element", "teacher", "reference", "predicted", "error",
                                   "abs_error", "skipped"]
    assert len(table) == 6  # every (element, teacher), the skipped one included
    t1 = table[table["teacher"] == "t1"].set_index("element")
    assert t1.loc["Yb", "error"] == pytest.approx(36.0)
    assert t1.loc["Si", "error"] == pytest.approx(0.1)
    assert np.isnan(t1.loc["Xe", "predicted"]) and t1.loc["Xe", "skipped"].startswith("ValueError")

    stats = error_stats(table, "t1")
    assert stats["n"] == 2 and stats["n_skipped"] == 1
    assert stats["mae"] == pytest.approx(18.05) and stats["median_ae"] == pytest.approx(18.05)
    assert stats["max_ae"] == pytest.approx(36.0) and stats["worst"] == "Yb"
    assert stats["mean_error"] == pytest.approx(18.05)
    assert stats["skipped"] == {"Xe": "ValueError: isolated atom"}
    t2 = error_stats(table, "t2")
    assert t2["n"] == 3 and t2["skipped"] == {}
    assert t2["mae"] == pytest.approx(0.1) and t2["mean_error"] == pytest.approx(-0.1)


def test_a_key_neither_predicted_nor_skipped_is_listed_not_dropped():
    table = energy_errors({"a": 1.0, "b": 2.0}, {"t": {"a": 1.5}}, {}, key="material_id")
    stats = error_stats(table, "t", key="material_id")
    assert stats["skipped"] == {"b": "no prediction"} and stats["mae"] == pytest.approx(0.5)


def test_a_teacher_with_nothing_predicted_gives_nan_not_an_error():
    table = energy_errors({"a": 1.0}, {}, {"t": {"a": "KeyError: 'a'"}})
    stats = error_stats(table, "t")
    assert stats["n"] == 0 and np.isnan(stats["mae"]) and stats["worst"] is None


def prediction(energy, forces, stress=0.0, n=2):
    return Prediction(energy, np.full((n, 3), forces), np.full((3, 3), stress))


def test_frame_differences_are_in_mev_and_weighted_by_force_components():
    a = {"f1": prediction(-5.0, 0.1, 1.0), "f2": prediction(-3.0, 0.0, n=4),
         "only_a": prediction(0.0, 0.0)}
    b = {"f1": prediction(-5.2, 0.0, 0.5), "f2": prediction(-2.9, 0.4, n=4)}
    species = {"f1": ("Si", "Si"), "f2": ("Fe", "O", "O", "O"), "only_a": ("H", "H")}
    frames = frame_differences(a, b, species, names=("x", "y"))
    assert list(frames["frame_id"]) == ["f1", "f2"]  # only frames both predicted
    row = frames.set_index("frame_id").loc["f1"]
    assert row["a"] == "x" and row["elements"] == "Si" and row["n_atoms"] == 2
    assert row["energy_diff"] == pytest.approx(200.0)  # meV/atom, a - b
    assert row["force_mae"] == pytest.approx(100.0) and row["n_force"] == 6
    assert row["stress_mae"] == pytest.approx(0.5)
    assert frames.set_index("frame_id").loc["f2", "elements"] == "Fe O"

    summary = difference_summary(frames)
    assert summary["n_frames"] == 2
    assert summary["energy_mae"] == pytest.approx(150.0)
    assert summary["energy_mean"] == pytest.approx(50.0)
    assert summary["energy_max"] == pytest.approx(200.0)
    # 6 components at 100 meV/Å and 12 at 400: weighted mean 300, not the frame mean 250.
    assert summary["force_mae"] == pytest.approx(300.0)
    assert summary["stress_mae"] == pytest.approx(0.25)

    elements = element_differences(frames).set_index("element")
    assert list(elements.index) == ["Fe", "O", "Si"]
    assert elements.loc["Si", "energy_mae"] == pytest.approx(200.0)
    assert elements.loc["O", "n_frames"] == 1 and elements.loc["O", "force_mae"] == pytest.approx(400.0)


def test_labels_without_forces_or_stress_give_nan_for_those_only():
    a = {"f": Prediction(-1.0, None, None)}
    b = {"f": prediction(-1.001, 0.2, n=1)}
    frames = frame_differences(a, b, {"f": ("H",)})
    summary = difference_summary(frames)
    assert summary["energy_mae"] == pytest.approx(1.0)
    assert np.isnan(summary["force_mae"]) and np.isnan(summary["stress_mae"])
    assert element_differences(frames.iloc[:0]).empty


def test_evenly_spaced_spreads_a_cap_over_the_list():
    keys = [f"k{i}" for i in range(10)]
    assert evenly_spaced(keys, None) == keys and evenly_spaced(keys, 20) == keys
    assert evenly_spaced(keys, 3) == ["k0", "k4", "k9"]  # first, middle (4.5 rounds to even), last
    assert evenly_spaced(keys, 1) == ["k0"]
    assert len(set(evenly_spaced(keys, 9))) == 9


def fake_calculator():
    """Stands in for a teacher's ASE calculator: fails on Og, returns NaN on Xe."""
    from ase.calculators.calculator import Calculator

    class Fake(Calculator):
        implemented_properties = ("energy", "forces", "stress")

        def calculate(self, atoms=None, properties=None, system_changes=None):
            super().calculate(atoms, properties, system_changes)
            symbols = set(atoms.get_chemical_symbols())
            if "Og" in symbols:
                raise KeyError("Og")
            energy = np.nan if "Xe" in symbols else -1.5 * len(atoms)
            self.results = {"energy": energy, "forces": np.zeros((len(atoms), 3)),
                            "stress": np.full(6, 0.01)}  # eV/Å³, as ASE calculators give

    return Fake()


def test_predict_all_keeps_failures_as_skipped_with_the_reason_and_converts_stress():
    from ase import units
    from pymatgen.core import Lattice, Structure

    def cubic(element):
        return Structure(Lattice.cubic(3.0), [element, element], [[0, 0, 0], [0.5, 0.5, 0.5]])

    predictions, skipped = predict_all(
        fake_calculator(), {"Si": cubic("Si"), "Xe": cubic("Xe"), "Og": cubic("Og")}
    )
    assert set(predictions) == {"Si"}
    assert skipped == {"Xe": "non-finite energy, forces or stress", "Og": "KeyError: 'Og'"}
    si = predictions["Si"]
    assert si.energy_per_atom == pytest.approx(-1.5)
    assert si.stress[0, 0] == pytest.approx(0.01 / units.GPa)  # eV/Å³ -> GPa (1.6 GPa)
    assert si.stress[0, 0] == pytest.approx(1.602, rel=1e-3)
