"""AtomRef fits (the paper's Eq. 2), residual shifts and CHGNet model surgery."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import Frame
from mlip_transfer.energy_scale.atomref import (
    AtomRefFit,
    add_shift,
    composition_matrix,
    fit_atomref,
    fit_atomref_to_frames,
    fit_residual_shift,
)
from mlip_transfer.energy_scale.chgnet_atomref import (
    read_model_atomref,
    set_model_atomref,
    shipped_atomref,
)

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
TRUE = {"Li": -1.9, "O": -4.9, "Fe": -8.3, "Ni": -5.5, "Cl": -1.8}


def synthetic(n: int = 40, seed: int = 0, elements=tuple(TRUE)):
    rng = np.random.default_rng(seed)
    comps = []
    while len(comps) < n:
        comp = {el: int(k) for el, k in zip(elements, rng.integers(0, 4, len(elements))) if k}
        if comp:
            comps.append(comp)
    energies = [sum(k * TRUE[el] for el, k in c.items()) / sum(c.values()) for c in comps]
    return comps, np.array(energies)


# ------------------------------------------------------------------ fast: numpy only


def test_composition_matrix_takes_every_input_kind():
    matrix, elements = composition_matrix(
        [Composition("Fe2O3"), {"Li": 1, "O": 1}, ["O", "Fe", "O"], "NiO"]
    )
    assert elements == ["Li", "O", "Fe", "Ni"]  # ordered by atomic number
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_allclose(matrix[0], [0, 0.6, 0.4, 0])
    np.testing.assert_allclose(matrix[2], [0, 2 / 3, 1 / 3, 0])
    with pytest.raises(DataError, match="'Ni' is not among"):
        composition_matrix(["NiO"], elements=["O"])
    with pytest.raises(DataError, match="Xx"):
        composition_matrix([["Xx", "O"]])


def test_fit_recovers_known_energies_exactly():
    comps, energies = synthetic()
    fit = fit_atomref(comps, energies)
    assert set(fit.energies) == set(TRUE) and fit.missing == ()
    for el, value in TRUE.items():
        assert fit.energies[el] == pytest.approx(value, abs=1e-9)
    assert fit.rank == fit.n_elements == 5 and fit.n_samples == len(comps)
    assert fit.residual_mae < 1e-9 and fit.residual_rmse < 1e-9
    np.testing.assert_allclose(fit.predict(comps), energies, atol=1e-9)
    vector = fit.as_vector()
    assert vector.shape == (94,) and vector[25] == pytest.approx(-8.3, abs=1e-9)  # Fe, Z = 26
    assert np.isnan(vector[0])  # H was never fitted: NaN, not zero


def test_rank_deficiency_is_reported_not_zeroed():
    # Fe and O only ever appear as FeO2: their sum is determined, each alone is not.
    comps = [{"Li": 1}, {"Li": 1, "Fe": 1, "O": 2}, {"Fe": 2, "O": 4, "Ni": 1}, {"Ni": 1}, {"Li": 2, "Ni": 1}]
    energies = [sum(k * TRUE[el] for el, k in c.items()) / sum(c.values()) for c in comps]
    fit = fit_atomref(comps, energies)
    assert fit.rank == 3 and fit.n_elements == 4
    assert set(fit.missing) == {"Fe", "O"}
    assert "rank 3 < 4" in fit.reasons["Fe"] and "confounded with O" in fit.reasons["Fe"]
    assert fit.energies["Li"] == pytest.approx(TRUE["Li"], abs=1e-9)
    assert fit.energies["Ni"] == pytest.approx(TRUE["Ni"], abs=1e-9)
    with pytest.raises(DataError, match="'Fe'.*not identifiable"):
        fit.predict(["LiFeO2"])


def test_absent_element_is_missing_and_predict_names_it():
    comps, energies = synthetic(elements=("Li", "O", "Fe"))
    fit = fit_atomref(comps, energies, elements=["Li", "O", "Fe", "Cu"])
    assert fit.missing == ("Cu",) and fit.counts["Cu"] == 0
    assert fit.reasons["Cu"] == "absent from the data"
    assert "Cu" not in fit.energies and np.isnan(fit.as_vector()[28])
    with pytest.raises(DataError, match="'Cu'"):
        fit.predict([{"Cu": 1, "O": 1}])


def test_nan_label_raises_naming_the_record():
    comps, energies = synthetic(n=6)
    energies[3] = np.nan
    with pytest.raises(DataError, match="index 3"):
        fit_atomref(comps, energies)
    with pytest.raises(DataError, match="mp-4"):
        fit_atomref(comps, energies, records=[f"mp-{i + 1}" for i in range(6)])
    with pytest.raises(DataError, match="6 compositions but 5"):
        fit_atomref(comps, energies[:5])


def test_csv_round_trip_keeps_missing_and_statistics(tmp_path):
    comps, energies = synthetic(elements=("Li", "O", "Ni"))
    fit = fit_atomref(comps, energies, elements=["Li", "O", "Ni", "Na"])
    assert AtomRefFit.read_csv(fit.write_csv(tmp_path / "atomref.csv")) == fit
    table = fit.to_table()
    assert list(table["status"]) == ["fitted", "fitted", "missing", "fitted"]  # Li O Na Ni


def test_residual_shift_and_frames_helpers():
    comps, target = synthetic()
    shift_true = {"Li": 0.3, "O": -1.2, "Fe": 2.0, "Ni": 0.0, "Cl": -0.4}
    source = target - np.array([sum(k * shift_true[e] for e, k in c.items()) / sum(c.values()) for c in comps])
    shift = fit_residual_shift(comps, target, source)
    for el, value in shift_true.items():
        assert shift.energies[el] == pytest.approx(value, abs=1e-9)
    assert add_shift({"Li": 1.0, "Cu": 2.0}, shift) == {"Li": pytest.approx(1.3)}

    frames = [
        Frame.from_structure(
            Structure(Lattice.cubic(4.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
            frame_id=f"f{i}", material_id=f"m{i}", functional=func, energy=energy,
        )
        for i, (func, energy) in enumerate([("r2scan", -10.0), ("gga", -7.0), ("r2scan", None)])
    ]
    with pytest.raises(DataError, match="pass functional="):
        fit_atomref_to_frames(frames)
    with pytest.raises(DataError, match="'f2'"):
        fit_atomref_to_frames(frames, functional="r2scan")
    fit = fit_atomref_to_frames(frames[:2], functional="gga")
    assert fit.missing == ("Li", "O") and fit.rank == 1


# ------------------------------------------------------------------ CHGNet models


@pytest.fixture(scope="module")
def gga_model():
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False)


def test_shipped_r2scan_fit_treats_unfitted_elements_as_missing():
    r2scan = shipped_atomref("MP-r2SCAN")
    for el in ("Yb", "Po", "At", "Rn", "Fr", "Ra"):
        assert el not in r2scan
    assert len(r2scan) == 88 and r2scan["Fe"] < -10  # r2SCAN scale: far below GGA
    assert len(shipped_atomref("MPtrj")) == 94


def test_read_and_set_round_trip(gga_model):
    model = copy.deepcopy(gga_model)
    assert read_model_atomref(model) == shipped_atomref("MPtrj")
    new = {"Fe": -12.345678, "O": -9.87654}
    set_model_atomref(model, new)
    after = read_model_atomref(model)
    assert after["Fe"] == pytest.approx(new["Fe"], abs=1e-5)
    assert after["O"] == pytest.approx(new["O"], abs=1e-5)
    assert after["Li"] == read_model_atomref(gga_model)["Li"]  # unlisted: kept
    with pytest.raises(DataError, match="keep_unlisted=False"):
        set_model_atomref(model, new, keep_unlisted=False)
    with pytest.raises(DataError, match="not finite|nan"):
        set_model_atomref(model, {"Fe": math.nan})
    with pytest.raises(DataError, match="Am"):
        set_model_atomref(model, {"Am": -1.0})  # Z = 95: outside CHGNet's 94 elements


@pytest.mark.slow
def test_swap_shifts_prediction_by_exactly_the_composition_dot_difference(gga_model):
    # CHGNet: e per atom = GNN per atom + fractions . fc.weight (intensive composition model).
    structure = Structure(
        Lattice.cubic(4.3), ["Li", "Li", "Fe", "O"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    model = copy.deepcopy(gga_model)
    old = read_model_atomref(model)
    before = float(model.predict_structure(structure, task="e")["e"])
    new = shipped_atomref("MP-r2SCAN")
    set_model_atomref(model, new)
    after = float(model.predict_structure(structure, task="e")["e"])
    expected = 0.5 * (new["Li"] - old["Li"]) + 0.25 * (new["Fe"] - old["Fe"]) + 0.25 * (new["O"] - old["O"])
    assert abs(expected) > 1  # a real shift (1.93 eV/atom here), not a no-op
    assert after - before == pytest.approx(expected, abs=1e-5)
    # Setting a fitted object is the same as setting its energies.
    fit = fit_atomref(["Li2FeO", "Li", "Fe", "O2"], [-9.0, -1.9, -8.3, -4.9])
    set_model_atomref(model, fit)
    assert read_model_atomref(model)["Fe"] == pytest.approx(fit.energies["Fe"], abs=1e-5)


def test_interrupted_csv_write_keeps_the_earlier_file(tmp_path, monkeypatch):
    comps, energies = synthetic(elements=("Li", "O", "Ni"))
    fit = fit_atomref(comps, energies)
    path = fit.write_csv(tmp_path / "atomref.csv")
    before = path.read_bytes()

    def killed(self, handle, **_):  # a few bytes of the table, then the kill
        handle.write("element,Z,energy\nLi,3,")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        fit.write_csv(path)
    with pytest.raises(KeyboardInterrupt):
        fit.write_csv(tmp_path / "new.csv")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["atomref.csv"]
