"""Teachers of the surrogate build: which potential labels which frames, DIEP beside CHGNet, and
a parse that keeps one r2SCAN teacher's labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data import dataset, surrogate
from mlip_transfer.data.filters import FilterConfig
from mlip_transfer.data.parse import parse_dataset
from mlip_transfer.data.surrogate import teacher_models
from mlip_transfer.data.surrogate.teachers import _kept_frames

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "resources" / "reference"
SHIPPED = REPO / "resources" / "default_dataset"
FENI = "wbm-1-17801"  # 2-atom FeNi; its references Fe and Ni are small too
ALL_TEACHERS = ("chgnet-0.3.0", "chgnet-r2scan", "diep")


# ------------------------------------------------------------------ fast: no relaxation


def test_teacher_sets_need_one_gga_and_an_r2scan_teacher():
    assert surrogate.BuildSettings(teachers=["chgnet-0.3.0", "diep"]).teachers == (
        "chgnet-0.3.0", "diep")
    for bad, message in (
        (("chgnet-0.3.0",), "at least one r2SCAN"),
        (("diep", "chgnet-r2scan"), "one GGA teacher"),
        (("chgnet-0.3.0", "diep", "diep"), "listed twice"),
        (("chgnet-0.3.0", "mace"), "unknown teacher 'mace'"),
    ):
        with pytest.raises(ConfigError, match=message):
            surrogate.BuildSettings(teachers=bad)


def test_a_force_spike_drops_the_frame_and_lists_it(tmp_path):
    candidate = surrogate.load_candidates(
        wbm_path=REFERENCE / "wbm-random-pbe52-equilibrium-2025.1.json.gz",
        elemental_path=REFERENCE / "MatPES-PBE-Element-Refs.json.gz",
    )[FENI]
    n = len(candidate.structure)

    def snapshot(force):
        return {"lattice": candidate.structure.lattice.matrix, "frac_coords":
                candidate.structure.frac_coords, "energy": -10.0,
                "forces": np.full((n, 3), force / np.sqrt(3)), "stress": np.zeros((3, 3)),
                "magmoms": None}

    snapshots = [snapshot(1.0), snapshot(70.0), snapshot(0.05)]  # the middle one spikes
    frames, dropped = _kept_frames(
        candidate, teacher_models.teacher("diep"), tuple(s.symbol for s in candidate.structure.species),
        snapshots, converged=True, settings=surrogate.BuildSettings(frames_per_trajectory=3),
    )
    assert [f.extra["step"] for f in frames] == [0, 2]
    assert [f.frame_id for f in frames] == [f"{FENI}-diep-0", f"{FENI}-diep-2"]
    assert all(f.magmoms is None and f.extra["teacher"] == "diep" for f in frames)
    (spike,) = dropped
    assert spike["frame_id"] == f"{FENI}-diep-1" and spike["teacher"] == "diep"
    assert "force spike: 70.0 eV/Å > max_force 60" in spike["reason"]


def test_the_shipped_dataset_refuses_a_teacher_it_was_not_built_with(tmp_path):
    with pytest.raises(ConfigError, match=r"no labels from it \(its teachers: chgnet-0.3.0, "
                                          r"chgnet-r2scan\).*build.teachers"):
        parse_dataset(source="default", settings={"path": str(SHIPPED), "teacher": "diep"},
                      filters=FilterConfig(), out_dir=tmp_path)


# ------------------------------------------------------------------ slow: real relaxations


@pytest.fixture(scope="module")
def three_teachers(tmp_path_factory) -> Path:
    """FeNi and its elemental references, relaxed 3 FIRE steps by each of the three teachers."""
    out = tmp_path_factory.mktemp("teachers")
    surrogate.build_surrogate_dataset(
        wbm_path=REFERENCE / "wbm-random-pbe52-equilibrium-2025.1.json.gz",
        elemental_path=REFERENCE / "MatPES-PBE-Element-Refs.json.gz",
        out_dir=out,
        settings=surrogate.BuildSettings(max_steps=3, processes=1, teachers=ALL_TEACHERS),
        material_ids=[FENI],
        progress=False,
    )
    return out


@pytest.mark.slow
def test_every_teacher_labels_every_material_and_is_recorded(three_teachers):
    frames = dataset.read_frames(three_teachers / dataset.FRAMES_FILE)
    by_teacher = {name: [f for f in frames if f.extra["teacher"] == name] for name in ALL_TEACHERS}
    for name, own in by_teacher.items():
        assert {f.material_id for f in own} == {FENI, "elem-Fe", "elem-Ni"}
        assert {f.functional for f in own} == {teacher_models.teacher(name).functional}
        assert all(f.frame_id.startswith(f"{f.material_id}-{name}-") for f in own)
    # DIEP predicts no magnetic moments; the CHGNet teachers do. Stress is GPa for all.
    assert all(f.magmoms is None for f in by_teacher["diep"])
    assert all(f.magmoms is not None for f in by_teacher["chgnet-r2scan"])
    for own in by_teacher.values():
        assert all(np.isfinite(f.stress).all() and np.abs(f.stress).max() < 200 for f in own)
    # The two r2SCAN teachers relax the same start, but they are different potentials.
    start = {name: next(f for f in own if f.material_id == FENI and f.extra["step"] == 0)
             for name, own in by_teacher.items()}
    np.testing.assert_allclose(start["diep"].lattice, start["chgnet-r2scan"].lattice)
    assert start["diep"].energy != pytest.approx(start["chgnet-r2scan"].energy, abs=1e-3)
    materials = dataset.read_materials(three_teachers / dataset.MATERIALS_FILE)
    assert sorted(materials.groupby("material_id")["teacher"].apply(sorted).iloc[0]) == sorted(
        ALL_TEACHERS)
    summary = json.loads((three_teachers / surrogate.SUMMARY_FILE).read_text())
    assert set(summary["per_teacher"]) == set(ALL_TEACHERS)
    assert summary["per_teacher"]["diep"]["functional"] == "r2scan"
    assert summary["n_dropped_frames"] == len(summary["dropped_frames"])
    teachers = json.loads((three_teachers / "provenance.json").read_text())["teachers"]
    assert teachers["diep"]["shares_weights_with_source"] is False


@pytest.mark.slow
@pytest.mark.parametrize("teacher", ["diep", "chgnet-r2scan"])
def test_a_parse_keeps_the_gga_frames_and_one_r2scan_teacher(three_teachers, tmp_path, teacher):
    report = parse_dataset(source="default", settings={"path": str(three_teachers),
                                                       "teacher": teacher},
                           filters=FilterConfig(), out_dir=tmp_path)
    frames = dataset.read_frames(tmp_path / dataset.FRAMES_FILE)
    built = dataset.read_frames(three_teachers / dataset.FRAMES_FILE)
    r2scan = {f.extra["teacher"] for f in frames if f.functional == "r2scan"}
    assert r2scan == {teacher} and {f.functional for f in frames} == {"gga", "r2scan"}
    other = sum(f.extra["teacher"] not in (teacher, "chgnet-0.3.0") for f in built)
    assert report.notes["frames_of_other_teachers"] == other and other > 0
    assert report.notes["r2scan_teacher"] == teacher
    materials = dataset.read_materials(tmp_path / dataset.MATERIALS_FILE)
    assert "teacher" not in materials and not materials.duplicated(["material_id", "functional"]).any()
    source = DataSource.read(tmp_path)
    assert source.name == "surrogate-default" and teacher in source.banner
    assert ("circular" in source.caveat.lower() or "not independent" in source.caveat) == (
        teacher == "chgnet-r2scan")


# ------------------------------------------------------------------ resuming a build


def _build(out, **overrides):
    settings = {"max_steps": 3, "processes": 1, **overrides}
    return surrogate.build_surrogate_dataset(
        wbm_path=REFERENCE / "wbm-random-pbe52-equilibrium-2025.1.json.gz",
        elemental_path=REFERENCE / "MatPES-PBE-Element-Refs.json.gz",
        out_dir=out, settings=surrogate.BuildSettings(**settings), material_ids=[FENI],
        progress=False,
    )


@pytest.mark.slow
def test_an_interrupted_build_resumes_and_writes_the_same_files(tmp_path, monkeypatch, caplog):
    from mlip_transfer.data.surrogate import progress, teachers

    clean = tmp_path / "clean"
    _build(clean)
    real, calls = teachers.build_material, []

    def killed_after_two(candidate, settings):
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a Ctrl-C or a scheduler's signal does mid-build
        calls.append(candidate.material_id)
        return real(candidate, settings)

    monkeypatch.setattr(teachers, "build_material", killed_after_two)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _build(out)
    journal = out / progress.PROGRESS_FILE
    assert len(journal.read_text().splitlines()) == 1 + 2  # header + two materials
    assert not (out / dataset.FRAMES_FILE).exists()
    with open(journal, "a") as handle:
        handle.write('{"kind": "material", "material_id": "elem-')  # a line cut short by a kill
    with pytest.raises(ConfigError, match=r"changed: settings.max_steps\).*delete the file"):
        _build(out, max_steps=4)
    relaxed = []
    monkeypatch.setattr(teachers, "build_material",
                        lambda c, s: relaxed.append(c.material_id) or real(c, s))
    summary = _build(out, processes=1)
    assert relaxed == sorted({FENI, "elem-Fe", "elem-Ni"} - set(calls))
    assert summary["resumed_materials"] == 2 and "cut short" in caplog.text
    for name in (dataset.FRAMES_FILE, dataset.MATERIALS_FILE, "provenance.json"):
        assert (out / name).read_bytes() == (clean / name).read_bytes(), name
    assert not journal.exists()
