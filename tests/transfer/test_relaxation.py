"""Relaxations: every outcome is classified (converged, unconverged, isolated atom, NaN, error)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from pymatgen.core import Lattice, Structure

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer import relaxation
from mlip_transfer.transfer.models import load_chgnet

FCC = [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]


def _si() -> Structure:
    # Diamond Si, slightly off its minimum (a = 5.50 Å, one atom displaced).
    return Structure(np.array(FCC) * 5.50, ["Si", "Si"], [[0, 0, 0], [0.26, 0.24, 0.25]])


def _nacl() -> Structure:
    return Structure(np.array(FCC) * 5.50, ["Na", "Cl"], [[0, 0, 0], [0.52, 0.5, 0.49]])


def _exploded() -> Structure:
    # Na-Cl pair 2.4 Å apart and a Na 10 Å further on, in a 25 Å box (images 12.6 Å away).
    return Structure(Lattice.cubic(25.0), ["Na", "Cl", "Na"],
                     [[0, 0, 0], [2.4, 0, 0], [12.4, 0, 0]], coords_are_cartesian=True)


def _cu() -> Structure:
    return Structure(np.array(FCC) * 3.75, ["Cu"], [[0, 0, 0]])


class _Fake(Calculator):
    """A calculator that returns NaN, raises, or pushes the last atom along +x."""

    implemented_properties = ("energy", "forces", "stress")

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        if self.mode == "raise":
            raise RuntimeError("model exploded")
        forces = np.zeros((n, 3))
        energy = -1.0 * n
        if self.mode == "nan":
            energy = math.nan
        elif self.mode == "push":
            forces[-1, 0] = 5.0
            energy -= 5.0 * self.atoms.positions[-1, 0]
        self.results = {"energy": energy, "forces": forces, "stress": np.zeros(6)}


SETTINGS = relaxation.RelaxSettings(fmax=0.05, max_steps=200)


# ------------------------------------------------------------------ fast: no CHGNet


def test_nearest_neighbour_distances_count_periodic_images():
    distances = relaxation.nearest_neighbor_distances(_exploded())
    assert distances[0] == pytest.approx(2.4)
    assert distances[1] == pytest.approx(2.4)
    assert np.isinf(distances[2])  # 10 Å from Cl, 12.4 from Na, 12.6 from its image
    assert relaxation.isolated_sites(_exploded()) == [2]
    # A one-atom cell: the atom's own images are its neighbours.
    cu = relaxation.nearest_neighbor_distances(_cu())
    assert cu[0] == pytest.approx(3.75 / np.sqrt(2))
    assert relaxation.isolated_sites(Structure(Lattice.cubic(7.0), ["Cu"], [[0, 0, 0]])) == [0]
    assert relaxation.isolated_sites(Structure(Lattice.cubic(5.9), ["Cu"], [[0, 0, 0]])) == []


def test_converged_and_unconverged_relaxations_are_kept():
    converged = relaxation.relax_one("cu", _cu(), EMT(), SETTINGS)
    assert converged["converged"] and not converged["failed"] and converged["failure"] is None
    assert 0 < converged["n_steps"] < 200 and converged["max_force"] < 0.05
    assert np.isfinite(converged["energy_per_atom"])
    final = Structure.from_dict(json.loads(converged["structure_json"]))
    assert final.volume != pytest.approx(_cu().volume)  # the cell relaxed
    assert set(converged) == set(relaxation.RESULT_COLUMNS)

    short = relaxation.relax_one("cu", _cu(), EMT(),
                                 relaxation.RelaxSettings(fmax=0.05, max_steps=2))
    assert short["failure"] == "not_converged" and not short["failed"]
    assert short["n_steps"] == 2 and not short["converged"]
    assert np.isfinite(short["energy_per_atom"]) and "after 2 steps" in short["message"]

    fixed = relaxation.relax_one("cu", _cu(), EMT(),
                                 relaxation.RelaxSettings(fmax=0.05, relax_cell=False))
    assert Structure.from_dict(json.loads(fixed["structure_json"])).volume == pytest.approx(
        _cu().volume)


@pytest.mark.parametrize(
    ("mode", "structure", "failure", "text"),
    [
        ("nan", _nacl(), "non_finite", "NaN"),
        ("raise", _nacl(), "error", "RuntimeError: model exploded"),
        ("push", Structure(Lattice.cubic(20.0), ["Na", "Cl"], [[0, 0, 0], [2.5, 0, 0]],
                           coords_are_cartesian=True), "isolated_atom", "final structure"),
        ("nan", _exploded(), "isolated_atom", "start structure"),
    ],
)
def test_failures_are_recorded_not_raised(mode, structure, failure, text):
    settings = relaxation.RelaxSettings(fmax=0.05, max_steps=40, relax_cell=False)
    row = relaxation.relax_one("x", structure, _Fake(mode), settings)
    assert row["failed"] and row["failure"] == failure
    assert text in row["message"]
    assert math.isnan(row["energy_per_atom"])


def test_failure_counts_and_final_structures():
    rows = pd.DataFrame([
        relaxation.relax_one("a", _cu(), EMT(), SETTINGS),
        relaxation.relax_one("b", _exploded(), EMT(), SETTINGS),
        relaxation.relax_one("c", _cu(), EMT(), relaxation.RelaxSettings(max_steps=1)),
    ])
    assert relaxation.failure_counts(rows) == {
        "isolated_atom": 1, "non_finite": 0, "error": 0, "not_converged": 1
    }
    assert sorted(relaxation.final_structures(rows)) == ["a", "b", "c"]


def test_settings_and_model_names_are_checked():
    with pytest.raises(ConfigError, match="fmax"):
        relaxation.RelaxSettings(fmax=0)
    with pytest.raises(ConfigError, match="processes"):
        relaxation.relax_structures({}, model_path_or_name="0.3.0", processes=0)
    with pytest.raises(ConfigError, match="no-such-model"):
        load_chgnet("no-such-model")
    with pytest.raises(ConfigError, match="no-such-model"):
        relaxation.relax_structures({"cu": _cu()}, model_path_or_name="no-such-model")
    assert relaxation.relax_structures({}, model_path_or_name="0.3.0", progress=False).empty


# ------------------------------------------------------------------ slow: CHGNet


@pytest.mark.slow
def test_chgnet_relaxations_do_not_depend_on_the_number_of_processes():
    structures = {"si": _si(), "nacl": _nacl(), "exploded": _exploded()}
    kwargs = {"model_path_or_name": "0.3.0", "fmax": 0.05, "max_steps": 100, "progress": False}
    one = relaxation.relax_structures(structures, processes=1, **kwargs)
    two = relaxation.relax_structures(structures, processes=2, **kwargs)
    assert list(one["material_id"]) == ["si", "nacl", "exploded"]
    pd.testing.assert_frame_equal(one.drop(columns="wall_s"), two.drop(columns="wall_s"))
    ok = one.set_index("material_id")
    for mid in ("si", "nacl"):
        assert ok.loc[mid, "converged"] and ok.loc[mid, "failure"] is None
        assert ok.loc[mid, "max_force"] < 0.05
    # CHGNet v0.3.0 energies (MP2020-compatible scale): Si about -5.4, NaCl about -3.7 eV/atom.
    assert -6.0 < ok.loc["si", "energy_per_atom"] < -4.8
    assert -4.2 < ok.loc["nacl", "energy_per_atom"] < -3.2
    assert ok.loc["exploded", "failed"] and ok.loc["exploded", "failure"] == "isolated_atom"
    assert np.isnan(ok.loc["exploded", "energy_per_atom"])


@pytest.mark.slow
def test_a_saved_model_file_loads(tmp_path):
    import torch
    from chgnet.model import CHGNet

    path = tmp_path / "model.pth.tar"
    torch.save({"model": CHGNet.load(verbose=False).as_dict()}, path)
    table = relaxation.relax_structures({"si": _si()}, model_path_or_name=path, processes=1,
                                        max_steps=3, progress=False)
    reference = relaxation.relax_structures({"si": _si()}, model_path_or_name="0.3.0",
                                            processes=1, max_steps=3, progress=False)
    assert table["energy_per_atom"].iloc[0] == reference["energy_per_atom"].iloc[0]


def test_a_structure_ase_cannot_take_is_an_error_row():
    disordered = Structure(np.array(FCC) * 3.6, [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    row = relaxation.relax_one("alloy", disordered, EMT(), SETTINGS)
    assert row["failed"] and row["failure"] == "error" and set(row) == set(relaxation.RESULT_COLUMNS)
