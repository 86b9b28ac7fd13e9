"""The energy-based stress-unit check on a toy potential whose stress is known exactly.

A stiff Lennard-Jones crystal (ASE's calculator, whose stress is the strain derivative of its
energy) is strained homogeneously; its frames are written with the stress in a chosen unit and
read back declaring one. Correct units give no warning; kBar values declared as GPa do.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.io import write

from mlip_transfer.data.dataset import Frame
from mlip_transfer.data.loaders import strain_stress as S
from mlip_transfer.data.loaders.extxyz import ExtxyzConfig, load_extxyz
from mlip_transfer.data.report import ParseReport

# eV/Å³ -> the unit as written in the file
TO_FILE_UNIT = {"eV/A^3": 1.0, "GPa": 1 / units.GPa, "kBar": 10 / units.GPa}
STRAINS = [np.eye(3) * e for e in (-0.02, -0.01, 0.0, 0.01, 0.02)] + [
    np.array([[0.0, 0.01, 0.0], [0.01, 0.005, 0.0], [0.0, 0.0, -0.005]])
]


def _strained(strain: np.ndarray, *, rattle: float = 0.0, seed: int = 0):
    """Energy (eV), forces (eV/Å) and stress (eV/Å³, ASE sign) of a strained toy crystal."""
    atoms = bulk("Ar", "fcc", a=5.0, cubic=True)  # compressed: a stress even unstrained
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain).T, scale_atoms=True)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    atoms.calc = LennardJones(sigma=3.4, epsilon=1.0, rc=8.5, smooth=True)
    return atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)


def _frames(*, rattle: float = 0.0, material_id: str = "toy-1") -> list[Frame]:
    frames = []
    for index, strain in enumerate(STRAINS):
        atoms, energy, forces, stress = _strained(strain, rattle=rattle, seed=index)
        frames.append(Frame(
            frame_id=f"{material_id}-{index}", material_id=material_id, functional="toy",
            species=tuple(atoms.get_chemical_symbols()), lattice=atoms.cell.array.copy(),
            frac_coords=atoms.get_scaled_positions(wrap=False), energy=energy, forces=forces,
            stress=stress / units.GPa,  # canonical: GPa
        ))
    return frames


def _write(path, *, unit: str, rattle: float = 0.0):
    images = []
    for index, strain in enumerate(STRAINS):
        atoms, energy, forces, stress = _strained(strain, rattle=rattle, seed=index)
        atoms.calc = None
        atoms.info.update(material_id="toy-1", REF_energy=energy,
                          REF_stress=(stress * TO_FILE_UNIT[unit]).reshape(-1))
        atoms.arrays["REF_forces"] = forces
        images.append(atoms)
    write(path, images, format="extxyz")
    return path


def _read(path, declared: str, caplog) -> tuple[list[Frame], ParseReport]:
    config = ExtxyzConfig(energy_key="REF_energy", forces_key="REF_forces",
                          stress_key="REF_stress", stress_unit=declared)
    report = ParseReport()
    with caplog.at_level(logging.WARNING, logger="mlip_transfer"):
        frames = load_extxyz(path, functional="toy", config=config, report=report)
    return frames, report


def test_the_toy_stress_is_the_strain_derivative_of_its_energy():
    frames = _frames()
    change, work = S.pair_terms(frames[2], frames[3])  # 0 -> 1 % hydrostatic
    assert abs(change) > 0.05
    assert work == pytest.approx(change, rel=1e-2)  # trapezoid rule over a 1 % strain
    assert S.material_ratio(frames) == pytest.approx(1.0, abs=0.05)  # pairs up to 4 % apart


@pytest.mark.parametrize("rattle", [0.0, 0.02])
def test_correct_units_give_no_warning(rattle):
    frames = _frames(rattle=rattle)
    assert S.material_ratio(frames) == pytest.approx(1.0, abs=0.05)
    assert S.energy_stress_warning({"g": frames}, declared="GPa", file="toy.xyz") is None


@pytest.mark.parametrize(("unit", "declared"), [("kBar", "GPa"), ("GPa", "kBar"), ("eV/A^3", "GPa")])
def test_a_wrong_unit_is_named_with_the_one_that_fits(tmp_path, caplog, unit, declared):
    path = _write(tmp_path / "toy.xyz", unit=unit, rattle=0.01)
    frames, report = _read(path, declared, caplog)
    assert len(frames) == len(STRAINS)
    warning = report.notes["stress_unit_energy_warnings"][str(path)]
    assert "toy.xyz" in warning and "toy-1" in warning and f"read as {unit} it would be" in warning
    assert f"stress_unit (now {declared!r})" in warning
    assert any(warning == record.getMessage() for record in caplog.records)
    _, right = _read(path, unit, caplog)
    assert "stress_unit_energy_warnings" not in right.notes


def test_the_opposite_sign_is_named():
    frames = _frames()
    flipped = [Frame(**{**vars(f), "stress": -f.stress}) for f in frames]
    warning = S.energy_stress_warning({"g": flipped}, declared="GPa", file="vasp.xyz")
    assert warning and "opposite" in warning and "its size fits" in warning


def test_without_strained_pairs_there_is_nothing_to_check():
    frames = _frames()
    # one frame per material, rotated cells, or cells strained too much: no usable pair
    assert S.energy_stress_warning({i: [f] for i, f in enumerate(frames)}, declared="GPa",
                                   file="x") is None
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert S.small_strain(frames[0].lattice, frames[0].lattice @ rotation.T) is None
    assert S.small_strain(frames[0].lattice, frames[0].lattice * 1.2) is None
    assert S.small_strain(frames[0].lattice, frames[0].lattice) is None
    moved = Frame(**{**vars(frames[3]), "frac_coords": frames[3].frac_coords + 0.1 * np.eye(4, 3)})
    assert S.pair_terms(frames[2], moved) is None  # positions differ by more than a rattle
    # frames of an MD run in one cell are discarded by one vectorised test of their cells
    md_run = [Frame(**{**vars(frames[2]), "frac_coords": frames[2].frac_coords + 0.001 * i})
              for i in range(S.FRAMES_PER_GROUP)]
    assert S._strained_pairs(md_run) == [] and S.material_ratio(md_run) is None
    assert len(S._strained_pairs(frames)) == 15  # every pair of the strain series is in range
    collected = S.StrainedFrames()
    for frame in frames * 3:
        collected.add(frame, has_material_id=True)
    assert [len(group) for group in collected.groups.values()] == [S.FRAMES_PER_GROUP]
