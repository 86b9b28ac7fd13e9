"""The surrogate dataset builder: selection, perturbation, labels, units and determinism."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
from ase import units

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data import dataset, surrogate
from mlip_transfer.data.surrogate import teacher_models
from mlip_transfer.energy_scale.energies import (
    elemental_reference_energies,
    formation_energy_per_atom,
)

REFERENCE = Path(__file__).resolve().parents[2] / "resources" / "reference"
WBM = REFERENCE / "wbm-random-pbe52-equilibrium-2025.1.json.gz"
ELEMENTAL = REFERENCE / "MatPES-PBE-Element-Refs.json.gz"
# Small materials with small elemental references: NiBr carries an MP2020 correction, FeNi none.
NIBR, FENI = "wbm-1-35262", "wbm-1-17801"
SETTINGS = surrogate.BuildSettings(max_steps=5, processes=1)


def _refuse(token):
    """``parse_constant`` of a strict ``json.loads``: NaN and Infinity are not JSON."""
    raise ValueError(f"non-standard JSON token {token}")


@pytest.fixture(scope="module")
def candidates():
    return surrogate.load_candidates(wbm_path=WBM, elemental_path=ELEMENTAL)


@pytest.fixture(scope="module")
def wbm_records():
    with gzip.open(WBM, "rt") as handle:
        return {record["material_id"]: record for record in json.load(handle)}


# ------------------------------------------------------------------ fast: no relaxation


def test_selection_ignores_input_order():
    ids = [f"wbm-{i}" for i in range(200)]
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    chosen = surrogate.select_materials(ids, n=20, seed=0)
    assert chosen == surrogate.select_materials(shuffled, n=20, seed=0)
    assert len(chosen) == 20 and chosen == sorted(chosen)
    assert chosen != surrogate.select_materials(ids, n=20, seed=1)
    # Growing n only adds materials, so a smaller draw is a subset of a larger one.
    assert set(chosen) <= set(surrogate.select_materials(shuffled, n=50, seed=0))
    with pytest.raises(ConfigError, match="n_materials"):
        surrogate.select_materials(ids, n=201, seed=0)


def test_every_wbm_element_has_an_elemental_reference(candidates):
    wbm_ids = [mid for mid, c in candidates.items() if not c.is_elemental_reference]
    chosen = surrogate.with_elemental_references(wbm_ids, candidates)
    elements = {el.symbol for mid in wbm_ids for el in candidates[mid].structure.composition}
    assert {f"elem-{symbol}" for symbol in elements} <= set(chosen)
    assert surrogate.with_elemental_references([NIBR, FENI], candidates) == sorted(
        [NIBR, FENI, "elem-Br", "elem-Fe", "elem-Ni"]
    )
    with pytest.raises(DataError, match="unknown material id"):
        surrogate.with_elemental_references(["wbm-no-such"], candidates)


def test_perturbation_is_seeded_by_material_and_bounded(candidates):
    structure = candidates[NIBR].structure
    kwargs = {"seed": 0, "strain": 0.05, "rattle": 0.05}
    first = surrogate.perturb(structure, material_id=NIBR, **kwargs)
    again = surrogate.perturb(structure, material_id=NIBR, **kwargs)
    other = surrogate.perturb(structure, material_id="another-id", **kwargs)
    np.testing.assert_array_equal(first.lattice.matrix, again.lattice.matrix)
    np.testing.assert_array_equal(first.cart_coords, again.cart_coords)
    assert not np.allclose(first.lattice.matrix, other.lattice.matrix)
    ratio = np.array(first.lattice.abc) / np.array(structure.lattice.abc)
    assert np.all(np.abs(ratio - 1) < 0.15)
    unchanged = surrogate.perturb(structure, material_id=NIBR, seed=0, strain=0.0, rattle=0.0)
    np.testing.assert_allclose(unchanged.cart_coords, structure.cart_coords, atol=1e-12)


def test_kept_steps_include_first_and_last():
    assert surrogate.kept_steps(6, 4) == [0, 2, 3, 5]
    assert surrogate.kept_steps(2, 4) == [0, 1]
    assert surrogate.kept_steps(1, 4) == [0]
    assert surrogate.kept_steps(61, 1) == [60]


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="processes"):
        surrogate.BuildSettings(processes=0)
    with pytest.raises(ConfigError, match="rattle"):
        surrogate.BuildSettings(rattle=-0.1)


def test_cli_passes_every_flag_and_prints_standard_json(tmp_path, monkeypatch, capsys):
    from mlip_transfer.data.surrogate import cli

    seen = {}

    def fake_build(**kwargs):
        seen.update(kwargs)
        return {"frames": 12, "wall_time_s": float("nan"), "elements": ["Ni"]}

    monkeypatch.setattr(cli, "build_surrogate_dataset", fake_build)
    argv = ["--out", str(tmp_path), "--n-materials", "7", "--strain", "0.02", "--processes", "1",
            "--material-ids", NIBR, FENI, "--no-progress", "--teachers", "chgnet-0.3.0", "diep"]
    assert surrogate.main(argv)["frames"] == 12
    assert seen["settings"] == surrogate.BuildSettings(
        n_materials=7, strain=0.02, processes=1, teachers=("chgnet-0.3.0", "diep"))
    assert seen["material_ids"] == [NIBR, FENI] and seen["out_dir"] == tmp_path
    assert seen["progress"] is False

    printed = json.loads(capsys.readouterr().out, parse_constant=_refuse)
    assert printed == {"frames": 12, "wall_time_s": None}  # NaN as null, elements left out
    with pytest.raises(SystemExit):
        surrogate.main(["--strain", "much"])


def test_unknown_material_is_a_located_error(tmp_path):
    with pytest.raises(DataError, match="unknown material id"):
        surrogate.build_surrogate_dataset(
            wbm_path=WBM, elemental_path=ELEMENTAL, out_dir=tmp_path, settings=SETTINGS,
            material_ids=["wbm-no-such"], progress=False,
        )


# ------------------------------------------------------------------ slow: real relaxations


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("surrogate")
    summary = surrogate.build_surrogate_dataset(
        wbm_path=WBM, elemental_path=ELEMENTAL, out_dir=out, settings=SETTINGS,
        material_ids=[NIBR, FENI], progress=False,
    )
    return out, summary


@pytest.fixture(scope="module")
def frames(built):
    return dataset.read_frames(built[0] / dataset.FRAMES_FILE)  # validates shapes and finiteness


@pytest.fixture(scope="module")
def materials(built):
    return dataset.read_materials(built[0] / dataset.MATERIALS_FILE)


@pytest.mark.slow
def test_outputs_and_summary(built, frames, materials):
    out, summary = built
    assert DataSource.read(out).name == "surrogate-default"
    assert not DataSource.read(out).is_dft
    assert summary["materials"] == 2 and summary["elemental_references"] == 3
    assert summary["n_failed"] == 0
    assert summary["elements"] == ["Br", "Fe", "Ni"]
    saved = json.loads((out / surrogate.SUMMARY_FILE).read_text(), parse_constant=_refuse)
    assert saved["frames"] == len(frames) and saved == json.loads(json.dumps(summary))
    assert not list(out.glob(".tmp*"))  # no temporary of an atomic write left behind
    assert len(materials) == 5 * 2


@pytest.mark.slow
def test_every_element_has_its_reference(frames, materials):
    for functional in ("gga", "r2scan"):
        refs = elemental_reference_energies(materials, functional=functional)
        assert {s for f in frames for s in f.species} == set(refs)


@pytest.mark.slow
def test_frames_are_canonical(frames):
    ids = [f.frame_id for f in frames]
    assert len(ids) == len(set(ids))
    for frame in frames:
        n = frame.n_atoms
        assert frame.forces.shape == (n, 3) and frame.magmoms.shape == (n,)
        np.testing.assert_allclose(frame.stress, frame.stress.T, atol=1e-9)
        assert frame.source == "surrogate-default"
        teacher = frame.extra["teacher"]
        assert teacher_models.teacher(teacher).functional == frame.functional
        assert frame.frame_id == f"{frame.material_id}-{teacher}-{frame.extra['step']}"
    for mid in {f.material_id for f in frames}:
        for functional in ("gga", "r2scan"):
            traj = [f for f in frames if f.material_id == mid and f.functional == functional]
            assert 2 <= len(traj) <= SETTINGS.frames_per_trajectory
            assert traj[0].extra["step"] == 0
            assert [f.extra["final"] for f in traj] == [False] * (len(traj) - 1) + [True]


@pytest.mark.slow
def test_labels_match_the_teacher_in_canonical_units(frames):
    """Energy (total eV), forces (eV/Å) and stress (GPa, ASE sign) as CHGNet predicts them."""
    from chgnet.model import CHGNet

    model = CHGNet.load(verbose=False, use_device="cpu")
    frame = next(f for f in frames if f.material_id == NIBR and f.functional == "gga")
    prediction = model.predict_structure(frame.to_structure())
    assert frame.energy == pytest.approx(prediction["e"] * frame.n_atoms, abs=1e-4)
    np.testing.assert_allclose(frame.forces, prediction["f"], atol=1e-4)
    np.testing.assert_allclose(frame.stress, prediction["s"], atol=1e-3)
    np.testing.assert_allclose(frame.magmoms, prediction["m"], atol=1e-4)


@pytest.mark.slow
def test_expanded_cell_has_tensile_stress(candidates):
    """ASE/CHGNet sign: an expanded cell pulls inwards, which is positive stress."""
    from chgnet.model import CHGNet

    model = CHGNet.load(verbose=False, use_device="cpu")
    expanded = candidates["elem-Ni"].structure.copy()
    expanded.scale_lattice(expanded.volume * 1.15)
    stress = model.predict_structure(expanded)["s"]  # GPa
    # ASE: sigma = (1/V) dE/d(strain); a hydrostatic strain d gives dE = V tr(sigma) d.
    energies = []
    for step in (-0.002, 0.002):
        strained = expanded.copy()
        strained.apply_strain(step)
        energies.append(model.predict_structure(strained)["e"] * len(strained))
    trace_ev_a3 = (energies[1] - energies[0]) / (0.004 * expanded.volume)
    assert np.trace(stress) > 1.0  # tensile, and clearly so at 15 % expansion
    assert np.trace(stress) == pytest.approx(trace_ev_a3 / units.GPa, rel=0.05)


@pytest.mark.slow
def test_gga_uncorrected_subtracts_the_wbm_correction(frames, wbm_records):
    record = wbm_records[NIBR]
    per_atom = (record["corrected_energy"] - record["energy"]) / len(record["structure"]["sites"])
    assert per_atom < -0.1  # the test material must carry a correction
    for frame in frames:
        if frame.functional == "gga" and frame.material_id == NIBR:
            expected = frame.energy - per_atom * frame.n_atoms
            assert frame.energy_uncorrected == pytest.approx(expected, abs=1e-9)
        else:
            assert frame.energy_uncorrected == frame.energy


@pytest.mark.slow
def test_materials_table(frames, materials):
    final = {(f.material_id, f.functional): f for f in frames if f.extra["final"]}
    for row in materials.itertuples():
        frame = final[(row.material_id, row.functional)]
        assert row.relaxed_energy_per_atom == pytest.approx(frame.energy_per_atom, abs=1e-7)
        assert row.relaxed_energy_per_atom_uncorrected == pytest.approx(
            frame.energy_per_atom_uncorrected, abs=1e-7
        )
        refs = elemental_reference_energies(materials, functional=row.functional)
        expected = formation_energy_per_atom(row.formula, row.relaxed_energy_per_atom, refs)
        assert row.formation_energy_per_atom == pytest.approx(expected, abs=1e-7)
        if row.is_elemental_reference:
            assert row.formation_energy_per_atom == 0.0
            assert row.formation_energy_per_atom_uncorrected == 0.0
    nibr = materials[(materials.material_id == NIBR) & (materials.functional == "gga")].iloc[0]
    assert nibr.formation_energy_per_atom_uncorrected > nibr.formation_energy_per_atom


@pytest.mark.slow
def test_subset_build_reproduces_records_byte_for_byte(built, frames, tmp_path):
    """A subset gives the same records as the larger build; worker processes change nothing."""
    runs = {}
    for processes in (2, 1):
        out = tmp_path / f"p{processes}"
        surrogate.build_surrogate_dataset(
            wbm_path=WBM, elemental_path=ELEMENTAL, out_dir=out, progress=False,
            settings=surrogate.BuildSettings(max_steps=5, processes=processes),
            material_ids=[FENI],
        )
        runs[processes] = out
    for name in (dataset.FRAMES_FILE, dataset.MATERIALS_FILE):
        assert (runs[1] / name).read_bytes() == (runs[2] / name).read_bytes()
    subset = {f.frame_id: f.to_dict() for f in dataset.read_frames(runs[1] / dataset.FRAMES_FILE)}
    assert {f.material_id for f in frames if f.frame_id in subset} == {FENI, "elem-Fe", "elem-Ni"}
    full = {f.frame_id: f.to_dict() for f in frames if f.frame_id in subset}
    assert full == subset
    small = dataset.read_materials(runs[1] / dataset.MATERIALS_FILE).set_index(
        ["material_id", "functional"]
    )
    large = dataset.read_materials(built[0] / dataset.MATERIALS_FILE).set_index(
        ["material_id", "functional"]
    )
    assert large.loc[small.index].equals(small)
