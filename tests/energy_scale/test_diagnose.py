"""The pre-fine-tuning diagnosis on a tiny dataset with r2SCAN-like labels made on the fly."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from mlip_transfer.cli import main
from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import FRAMES_FILE, Frame, write_frames
from mlip_transfer.energy_scale.diagnose import DiagnoseReport, diagnose

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")


def _structures() -> list[tuple[str, Structure]]:
    """Seven small frames of four materials: Mg, Si, MgO and Mg2Si (Mg, Si and O determined)."""
    mg = Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.21, 5.21), ["Mg"], [[1 / 3, 2 / 3, 0.25]])
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.47), ["Si"], [[0, 0, 0]]).get_primitive_structure()
    mgo = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.25), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()
    mg2si = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(6.39), ["Si", "Mg"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    ).get_primitive_structure()
    frames = []
    for mid, structure, strains in (("mg", mg, (0, 0.03)), ("si", si, (0, -0.02)),
                                    ("mgo", mgo, (0, 0.02)), ("mg2si", mg2si, (0,))):
        for k, strain in enumerate(strains):
            strained = structure.copy()
            strained.apply_strain(strain)
            frames.append((f"{mid}-{k}", strained))
    return frames


@pytest.fixture(scope="module")
def gga_model():
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False)


@pytest.fixture(scope="module")
def r2scan_frames():
    """Frames labelled by the r2SCAN CHGNet (the paper's Method-4 model) standing in for DFT."""
    from chgnet.model import CHGNet

    teacher = CHGNet.load(model_name="r2scan", verbose=False)
    structures = _structures()
    predictions = teacher.predict_structure([s for _, s in structures], task="e")
    return [
        Frame.from_structure(
            structure, frame_id=fid, material_id=fid.rsplit("-", 1)[0], functional="r2scan",
            energy=float(pred["e"]) * len(structure), source="test",
        )
        for (fid, structure), pred in zip(structures, predictions)
    ]


@pytest.fixture(scope="module")
def report(gga_model, r2scan_frames) -> DiagnoseReport:
    return diagnose(model=gga_model, frames=r2scan_frames, top=3)


@pytest.mark.slow
def test_source_atomref_leaves_a_large_offset_that_a_refit_removes(report):
    assert (report.n_frames, report.n_materials, report.n_elements, report.n_covered) == (7, 4, 3, 7)
    assert report.elements == ["O", "Mg", "Si"]
    # Seen: source 2.62, Eq.-2 refit 0.69, residual shift 0.036 eV/atom. An Eq.-2 refit on a
    # handful of frames also absorbs the source GNN's mean per-element output, hence 0.69.
    assert report.mae_source > 1.0  # r2SCAN labels sit eV/atom below the GGA model
    assert report.mae_refit < 0.5 * report.mae_source
    assert report.mae_residual < 0.05 * report.mae_source
    assert report.missing == {} and report.source_missing == []
    assert report.rho_raw is not None and report.rho_referenced is not None
    assert len(report.shifts) == 3
    shifts = [abs(row["shift"]) for row in report.shifts]
    assert shifts == sorted(shifts, reverse=True)
    assert report.recommendation.startswith("refit the AtomRef before fine-tuning")


@pytest.mark.slow
def test_report_renders_markdown_and_json(report):
    text = report.to_markdown()
    assert "**Recommendation:** refit the AtomRef" in text
    assert f"{report.mae_source:.4f}" in text
    assert all(f"| {el} |" in text for el in ("O", "Mg", "Si"))  # top=3 lists all three
    record = json.loads(json.dumps(report.to_dict()))
    assert record["n_frames"] == 7 and set(record["refit_atomref"]) == {"O", "Mg", "Si"}
    assert record["mae_source"] == pytest.approx(report.mae_source)


@pytest.mark.slow
def test_refit_equals_a_real_atomref_swap(gga_model, r2scan_frames, report):
    """The analytic 'refit swapped in' MAE is what the surgically modified model predicts."""
    import copy

    from mlip_transfer.energy_scale.chgnet_atomref import set_model_atomref
    from mlip_transfer.energy_scale.diagnose import predict_energy_per_atom

    model = set_model_atomref(copy.deepcopy(gga_model), report.refit)
    pred = predict_energy_per_atom(model, r2scan_frames)
    labels = np.array([f.energy_per_atom for f in r2scan_frames])
    assert np.mean(np.abs(pred - labels)) == pytest.approx(report.mae_refit, abs=1e-5)


@pytest.mark.slow
def test_matching_model_is_told_it_already_matches(r2scan_frames):
    from chgnet.model import CHGNet

    result = diagnose(model=CHGNet.load(model_name="r2scan", verbose=False), frames=r2scan_frames,
                      max_frames=5)
    assert result.n_frames == 5 and result.mae_source < 1e-5
    assert result.recommendation.startswith("the source AtomRef already matches")


def test_bad_input_is_located():
    def frame(fid, functional, energy):
        return Frame.from_structure(_structures()[0][1], frame_id=fid, material_id="x",
                                    functional=functional, energy=energy)

    frames = [frame("x-0", "r2scan", -10.0), frame("x-1", "r2scan", None), frame("y-0", "gga", -3.0)]
    with pytest.raises(DataError, match="no frames with functional 'hse'"):
        diagnose(model=None, frames=frames, functional="hse")
    with pytest.raises(DataError, match="pass functional="):
        diagnose(model=None, frames=frames)
    with pytest.raises(DataError, match="'x-1'"):
        diagnose(model=None, frames=frames, functional="r2scan")


def test_cli_diagnose_help():
    result = subprocess.run(
        [sys.executable, "-m", "mlip_transfer.cli", "diagnose", "--help"],
        capture_output=True, text=True, check=True,
    )
    for option in ("--data", "--xyz", "--model", "--functional", "--max-frames", "--json",
                   "--per-element-out", "--bootstrap", "--mismatch-z", "--expected-refs"):
        assert option in result.stdout


@pytest.mark.slow
def test_cli_diagnose_on_a_dataset_folder(tmp_path, r2scan_frames, capsys):
    write_frames(tmp_path / "data" / FRAMES_FILE, r2scan_frames)
    out = tmp_path / "diagnosis.json"
    assert main(["diagnose", "--data", str(tmp_path / "data"), "--json", str(out)]) == 0
    assert "**Recommendation:** refit the AtomRef" in capsys.readouterr().out
    assert json.loads(out.read_text())["n_frames"] == 7
    assert main(["diagnose", "--data", str(tmp_path / "data"), "--model", "nope"]) == 2
    assert "neither a file nor a chgnet model name" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_per_element_report_on_a_tiny_extxyz(tmp_path, capsys):
    """Two Si frames and one NaCl frame: Na and Cl always together (collinear), all too few."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    xyz = repo / "tests" / "fixtures" / "target_small.extxyz"
    refs = [str(repo / "resources" / "reference" / f"MatPES-{name}-Element-Refs.json.gz") for name in ("PBE", "r2SCAN")]
    out = tmp_path / "elements"
    argv = ["diagnose", "--xyz", str(xyz), "--per-element-out", str(out), "--bootstrap", "20",
            "--json", str(tmp_path / "diagnosis.json"), "--expected-refs", *refs]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "## Per element" in printed and "| Na | 1 | 1 |" in printed

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    record = json.loads((out / "elements.json").read_text(), parse_constant=refuse)
    rows = {row["element"]: row for row in record["elements"]}
    assert rows["Na"]["collinear"] and rows["Na"]["partners"] == ["Cl"] and rows["Cl"]["partners"] == ["Na"]
    assert {row["recommendation"] for row in rows.values()} == {"add structures with this element"}
    assert rows["Si"]["expected_shift"] == pytest.approx(-3.351, abs=1e-3)  # MatPES r2SCAN − PBE
    summary = json.loads((tmp_path / "diagnosis.json").read_text(), parse_constant=refuse)
    assert summary["per_element"]["counts"] == record["counts"]
    assert (out / "elements.csv").read_text().splitlines()[0].startswith("element,Z,n_frames,n_atoms")
    assert (out / "elements.png").read_bytes()[:4] == b"\x89PNG"
