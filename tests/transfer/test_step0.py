"""Table 1's before-training rows: AtomRef swaps in the source model's predictions, the rows of
each method and the zero-shot row, and their place in Table 1 (no torch: files only)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlip_transfer.core.errors import DataError
from mlip_transfer.transfer import jobs, step0

# Two test frames of the source model: LiO (2 atoms) and Li2O (3 atoms). The model's AtomRef is
# Li -1, O -5, so its AtomRef parts are -3 and -7/3 eV/atom.
PREDICTIONS = pd.DataFrame({
    "frame_id": ["a-0", "b-0"],
    "material_id": ["a", "b"],
    "n_atoms": [2, 3],
    "composition": ["Li:1 O:1", "Li:2 O:1"],
    "energy_label": [-4.0, -3.0],
    "energy_pred": [-3.9, -3.2],
    "energy_atomref": [-3.0, -7.0 / 3.0],
})
SOURCE_REF = {"Li": -1.0, "O": -5.0}
SOURCE = {"model": "pretrained_gga", "energy_mae_mev": 150.0, "force_mae_mev": 40.0,
          "stress_mae_gpa": 0.3, "magmom_mae": 0.05, "decomposition_energy_mae_mev": 80.0,
          "formation_energy_mae_mev": 90.0, "n_failed": 1, "n_relaxed": 5,
          "n_relaxations_without_step": 0, "n_test_frames": 2}


def test_swapping_in_the_same_atomref_gives_the_models_own_energy_mae():
    mae, lacking = step0.swapped_energy_mae_mev(PREDICTIONS, SOURCE_REF)
    assert mae == pytest.approx(1000 * (0.1 + 0.2) / 2) and lacking == []


def test_a_shifted_atomref_moves_each_prediction_by_its_composition_average():
    # Li +1 and O +2 eV/atom: LiO moves by +1.5, Li2O by +4/3 eV/atom.
    mae, _ = step0.swapped_energy_mae_mev(PREDICTIONS, {"Li": 0.0, "O": -3.0})
    assert mae == pytest.approx(1000 * (abs(-3.9 + 1.5 + 4.0) + abs(-3.2 + 4 / 3 + 3.0)) / 2)


def test_an_element_without_a_value_counts_zero_and_is_reported():
    mae, lacking = step0.swapped_energy_mae_mev(PREDICTIONS, {"Li": -1.0})
    assert lacking == ["O"]
    assert mae == pytest.approx(1000 * (abs(-3.9 + 3.0 - 0.5 + 4.0) + abs(-3.2 + 7 / 3 - 2 / 3
                                                                          + 3.0)) / 2)


def test_frames_without_a_label_or_a_prediction_are_left_out_and_none_left_is_an_error():
    partial = PREDICTIONS.assign(energy_pred=[float("nan"), -3.2])
    mae, _ = step0.swapped_energy_mae_mev(partial, SOURCE_REF)
    assert mae == pytest.approx(200.0)
    with pytest.raises(DataError, match="no frame has both"):
        step0.swapped_energy_mae_mev(partial.assign(energy_label=[-4.0, float("nan")]),
                                     SOURCE_REF)
    with pytest.raises(DataError, match="lack columns") as error:
        step0.swapped_energy_mae_mev(PREDICTIONS.drop(columns="energy_atomref"), SOURCE_REF)
    assert error.value.field == "energy_atomref"


def test_transfer_methods_get_the_source_models_metrics_but_their_own_energy_mae():
    own = {"1_scratch_step0": {"model": "1_scratch_step0", "energy_mae_mev": 900.0,
                               "force_mae_mev": 2000.0}}
    rows = step0.step0_rows(
        methods=["1_scratch", "3_frozen_gga_atomref", "4_refit_atomref"],
        atomrefs={"3_frozen_gga_atomref": SOURCE_REF, "4_refit_atomref": {"Li": 0.0, "O": -3.0}},
        source_metrics=SOURCE, source_predictions=PREDICTIONS, own_metrics=own,
        zero_shot_atomref={"Li": -1.5, "O": -4.0},
    )
    by_model = {row["model"]: row for row in rows}
    assert list(by_model) == ["1_scratch_step0", "3_frozen_gga_atomref_step0",
                              "4_refit_atomref_step0", step0.ZERO_SHOT]
    assert by_model["1_scratch_step0"]["force_mae_mev"] == 2000.0  # its own evaluation
    m3, m4 = by_model["3_frozen_gga_atomref_step0"], by_model["4_refit_atomref_step0"]
    assert m3["energy_mae_mev"] == pytest.approx(150.0)  # the source AtomRef: the source's MAE
    assert m4["energy_mae_mev"] != pytest.approx(150.0)
    for key in ("force_mae_mev", "decomposition_energy_mae_mev", "n_failed", "n_relaxed"):
        assert m3[key] == m4[key] == SOURCE[key]
    assert {row["stage"] for row in rows[:-1]} == {"step 0"}
    assert by_model[step0.ZERO_SHOT]["stage"] == "zero-shot"
    with pytest.raises(DataError, match="1_scratch_step0 was not evaluated"):
        step0.step0_rows(methods=["1_scratch"], atomrefs={}, source_metrics=SOURCE,
                         source_predictions=PREDICTIONS, own_metrics={})
    with pytest.raises(DataError, match="no step-0 AtomRef"):
        step0.step0_rows(methods=["4_refit_atomref"], atomrefs={}, source_metrics=SOURCE,
                         source_predictions=PREDICTIONS, own_metrics={})


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


def test_table1_puts_each_step0_row_under_its_trained_row_and_the_zero_shot_row_last(tmp_path):
    from mlip_transfer.core.provenance import SURROGATE_DEFAULT

    data = tmp_path / "data"
    data.mkdir()
    SURROGATE_DEFAULT.write(data)
    methods = ["1_scratch", "4_refit_atomref"]
    metrics = [
        _write(tmp_path / "eval" / label / "metrics.json", {"model": label, **values})
        for label, values in (
            ("1_scratch", {"energy_mae_mev": 300.0}),
            ("4_refit_atomref", {"energy_mae_mev": 50.0}),
            ("1_scratch_step0", {"energy_mae_mev": 900.0}),
            ("pretrained_gga", {k: v for k, v in SOURCE.items() if k != "model"}),
        )
    ]
    summaries = [
        _write(tmp_path / "train" / m / "train_summary.json",
               {"method": m, "model_info": {"atomref": {"Li": 0.0, "O": -3.0}}})
        for m in methods
    ]
    PREDICTIONS.to_csv(tmp_path / "predictions.csv", index=False)
    pd.DataFrame({"functional": ["r2scan", "r2scan", "gga"], "kind": ["shipped"] * 3,
                  "element": ["Li", "O", "Li"], "energy": [-1.5, -4.0, -1.0]}).to_csv(
        tmp_path / "atomrefs.csv", index=False)
    training = {"methods": methods, "epochs": 1, "batch_size": 4, "learning_rate": 1e-3,
                "final_learning_rate": 1e-5, "criterion": "Huber", "loss_ratios": [3, 1, 0.1, 1],
                "max_train_frames": None}
    table = jobs.table1(
        metrics=metrics, provenance=data / "provenance.json", training=training,
        out_csv=tmp_path / "table1.csv", out_markdown=tmp_path / "table1.md",
        step0={"source": "pretrained_gga", "predictions": tmp_path / "predictions.csv",
               "summaries": summaries, "atomrefs": tmp_path / "atomrefs.csv"},
    )
    assert list(table["model"]) == ["1_scratch", "1_scratch_step0", "4_refit_atomref",
                                    "4_refit_atomref_step0", "pretrained_gga", step0.ZERO_SHOT]
    assert list(table["stage"]) == ["trained", "step 0", "trained", "step 0", "untrained",
                                    "zero-shot"]
    zero_shot = table.set_index("model").loc[step0.ZERO_SHOT]
    expected, _ = step0.swapped_energy_mae_mev(PREDICTIONS, {"Li": -1.5, "O": -4.0})
    assert zero_shot["energy_mae_mev"] == pytest.approx(expected)
    assert zero_shot["force_mae_mev"] == SOURCE["force_mae_mev"]
    assert "Step-0 rows are each model before its first optimiser step" in (
        tmp_path / "table1.md").read_text()
    assert list(pd.read_csv(tmp_path / "table1.csv")["model"]) == list(table["model"])
