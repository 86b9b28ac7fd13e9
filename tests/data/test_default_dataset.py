"""The shipped default dataset: intact, complete, and reproducible by the builder."""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data import dataset, surrogate

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "resources" / "default_dataset"
REFERENCE = REPO / "resources" / "reference"


@pytest.fixture(scope="module")
def frames():
    return dataset.read_frames(SHIPPED / dataset.FRAMES_FILE)


def test_shipped_dataset_says_it_is_surrogate():
    source = DataSource.read(SHIPPED)
    assert source.name == "surrogate-default" and not source.is_dft
    assert "not DFT" in source.caveat


def test_every_element_present_has_its_elemental_reference(frames):
    materials = dataset.read_materials(SHIPPED / dataset.MATERIALS_FILE)
    formulas = materials.loc[materials["is_elemental_reference"], "formula"]
    references = {Composition(formula).elements[0].symbol for formula in formulas}  # O2 -> O
    elements = {el for frame in frames for el in frame.species}
    assert elements <= references
    assert {frame.functional for frame in frames} == {"gga", "r2scan"}


def test_functionals_sit_on_their_own_energy_scales(frames):
    """The r2SCAN teacher's energies are tens of eV/atom below GGA for heavy elements."""
    by_functional = defaultdict(list)
    for frame in frames:
        if frame.material_id == "elem-Pb":
            by_functional[frame.functional].append(frame.energy_per_atom)
    assert np.mean(by_functional["r2scan"]) < np.mean(by_functional["gga"]) - 30


@pytest.mark.slow
def test_rebuilding_a_subset_reproduces_the_shipped_records(frames, tmp_path):
    """What CI can afford of the regeneration rule: rebuild the cheapest material and compare."""
    source = DataSource.read(SHIPPED)
    settings = json.loads((SHIPPED / "provenance.json").read_text())["build_settings"]
    atoms = defaultdict(int)
    species = defaultdict(set)
    for frame in frames:
        atoms[frame.material_id] = max(atoms[frame.material_id], frame.n_atoms)
        species[frame.material_id].update(frame.species)
    cost = {
        m: atoms[m] + sum(atoms[f"elem-{el}"] for el in species[m])
        for m in atoms
        if not m.startswith("elem-")
    }
    material = min(cost, key=lambda m: (cost[m], m))
    surrogate.build_surrogate_dataset(
        wbm_path=REFERENCE / "wbm-random-pbe52-equilibrium-2025.1.json.gz",
        elemental_path=REFERENCE / "MatPES-PBE-Element-Refs.json.gz",
        out_dir=tmp_path,
        settings=surrogate.BuildSettings(**{**settings, "processes": 1}),
        material_ids=[material],
        progress=False,
    )
    rebuilt = {f.frame_id: f for f in dataset.read_frames(tmp_path / dataset.FRAMES_FILE)}
    shipped = {f.frame_id: f for f in frames if f.frame_id in rebuilt}
    assert source.name == "surrogate-default"
    assert set(shipped) == set(rebuilt) and len(rebuilt) >= 4
    for frame_id, frame in rebuilt.items():
        # Identical on the machine that built it; a tolerance leaves room for other CPUs' rounding.
        assert frame.energy == pytest.approx(shipped[frame_id].energy, abs=1e-4)
        np.testing.assert_allclose(frame.forces, shipped[frame_id].forces, atol=1e-3)
        np.testing.assert_allclose(frame.lattice, shipped[frame_id].lattice, atol=1e-4)
