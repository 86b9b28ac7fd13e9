"""The retention report on tiny models: errors against the source model's labels, the reference
written and read back, one model's report end to end, and the ``mlip-transfer retention`` command."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from mlip_transfer.transfer import retention as R
from mlip_transfer.transfer.retention_settings import RetentionSettings

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SETTINGS = RetentionSettings.from_config({
    "max_frames": 8, "batch_size": 4, "dimers": {"max_elements": 2, "step": 0.3},
    "nvt": {"structures": 1, "steps": 10, "check_every": 5},
})  # fmt: skip


@pytest.fixture(scope="module")
def test_frames(frames):
    """Three materials with two frames each: the fixture frame and a rattled copy."""
    rng = np.random.default_rng(0)
    pairs = []
    for frame in frames[4:7]:
        moved = frame.frac_coords + rng.normal(0, 0.004, frame.frac_coords.shape)
        pairs += [frame, dataclasses.replace(frame, frame_id=frame.frame_id + "-r",
                                             frac_coords=moved, extra={"step": 1})]
    return pairs


def test_the_source_model_retains_everything_and_a_shifted_atomref_only_moves_raw_energies(
    source, test_frames
):
    from mlip_transfer.energy_scale.chgnet_atomref import read_model_atomref, set_model_atomref

    labelled = R.source_labelled(source, test_frames, batch_size=4)
    assert [f.frame_id for f in labelled] == [f.frame_id for f in test_frames]
    assert {f.functional for f in labelled} == {R.SOURCE_LABEL_FUNCTIONAL}
    own = R.compare_labels(R.source_labelled(source, labelled, batch_size=4), labelled)
    assert own["n_frames"] == 6 and own["n_materials"] == 3
    assert own["energy_mae_mev"] < 1e-3 and own["force_mae_mev"] < 1e-2
    # +10 meV/atom on every element: the raw MAE is 10, the within-material one nil, forces equal.
    shifted = copy.deepcopy(source)
    set_model_atomref(shifted, {el: v + 0.010 for el, v in read_model_atomref(source).items()})
    errors = R.compare_labels(R.source_labelled(shifted, labelled, batch_size=4), labelled)
    assert errors["energy_mae_mev"] == pytest.approx(10.0, abs=0.01)
    assert errors["relative_energy_mae_mev"] < 1e-3 and errors["force_mae_mev"] < 1e-2
    # A changed GNN moves the landscape: within-material energies and forces differ.
    changed = copy.deepcopy(source)
    with __import__("torch").no_grad():
        for p in changed.atom_embedding.parameters():
            p.mul_(1.5)
    errors = R.compare_labels(R.source_labelled(changed, labelled, batch_size=4), labelled)
    assert errors["relative_energy_mae_mev"] > 0.1 and errors["force_mae_mev"] > 1.0


def test_one_models_report_against_a_reference_written_and_read_back(source, test_frames, tmp_path):
    reference = R.build_reference(source_model=source, source_name="0.3.0",
                                  test_frames=test_frames, source_frames=test_frames[:2],
                                  settings=SETTINGS, info={"target_functional": "r2scan"})
    reference.write(tmp_path)
    read = R.RetentionReference.read(tmp_path)
    assert len(read.labelled) == 6 and len(read.source_frames) == 2 and len(read.md_starts) == 1
    assert read.elements == reference.elements and len(read.elements) == 2
    # The labels' own change from the source model (r2SCAN teacher vs v0.3.0) is recorded.
    assert read.info["label_change"]["force_mae_mev"] > 1.0
    from ase.calculators.lj import LennardJones

    # A feeble pair potential for the NVT part (chgnet's calculator: the command's test below).
    summary, curves, md = R.retention_report(
        label="source_model", model=source, reference=read, settings=SETTINGS,
        calculator=LennardJones(sigma=1.0, epsilon=1e-4, rc=3.0))
    assert summary["source_labels"]["energy_mae_mev"] < 1e-3
    assert summary["source_frames"]["n_frames"] == 2
    assert summary["dimers"]["n_elements"] == 2 and summary["dimers"]["n_lost"] == 0
    np.testing.assert_allclose(curves["energy"], curves["source_energy"], atol=1e-4)
    assert list(md["steps"]) == [10] and summary["nvt"] == {
        "n_runs": 1, "n_stable": 1, "failures": {}, "first_failure_ps": None,
        "duration_ps": 0.01, "temperature": 1000.0}
    columns = R.table1_columns(json.loads(json.dumps(summary, default=str)))
    assert columns["dimer_walls_lost"] == 0 and columns["n_dimer_elements"] == 2
    assert columns["source_force_mae_mev"] < 1e-2


def test_the_retention_command_on_an_extended_xyz_file(tmp_path, capsys):
    from mlip_transfer.cli import main

    xyz = "tests/fixtures/target_small.extxyz"
    code = main(["retention", "--model", "0.3.0", "--xyz", xyz, "--out", str(tmp_path),
                 "--max-elements", "1", "--nvt-structures", "1", "--nvt-steps", "10"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "dimer walls lost: 0/1" in printed and "NVT stable: 1/1" in printed
    report = json.loads((tmp_path / "retention.json").read_text())
    assert report["source_labels"]["n_frames"] == 3 and report["source_frames"] is None
    assert pd.read_csv(tmp_path / "dimers.csv")["element"].nunique() == 1
