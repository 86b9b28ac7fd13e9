"""Training: what may change, outputs, resume, settings."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer import trainer as T
from mlip_transfer.transfer.gradients import FIG3A_LAYERS, GRADIENT_COLUMNS, GradientRecorder
from mlip_transfer.transfer.methods import METHODS
from mlip_transfer.transfer.outputs import HISTORY_COLUMNS, STEP_COLUMNS
from mlip_transfer.transfer.settings import TrainSettings
from mlip_transfer.transfer.trainer_setup import tenth_steps

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
GNN_PARAM = "mlp.layers.0.weight"
ATOMREF = "composition_model.fc.weight"


def weight(model, name=ATOMREF):
    return dict(model.named_parameters())[name].detach().cpu().clone()


def tiny_train(model, train_frames, val_frames, method, out_dir, cache, **kwargs):
    settings = {
        "epochs": 1,
        "batch_size": 4,
        "progress": False,
        "device": "cpu",
        "graph_cache": cache,
    }
    settings.update(kwargs)
    run = {key: settings.pop(key) for key in ("progress", "graph_cache", "info") if key in settings}
    layers = settings.pop("gradient_layers", tuple(FIG3A_LAYERS))
    return T.train(
        model=model,
        train_frames=train_frames,
        val_frames=val_frames,
        method=method,
        out_dir=out_dir,
        settings=TrainSettings(**settings),
        gradients=None if layers is None else GradientRecorder(layers),
        **run,
    )


def test_scheduler_steps_every_tenth_of_an_epoch_as_chgnet_trainer():
    # chgnet Trainer: step after batch idx + 1 in np.arange(1, 11) * n // 10
    for n in (10, 25, 193):
        assert tenth_steps(n) == sorted(set((np.arange(1, 11) * n // 10).tolist()))
    assert tenth_steps(4) == [1, 2, 3, 4]  # fewer batches than tenths: every batch
    assert tenth_steps(0) == []



@pytest.mark.parametrize("method", METHODS)
def test_which_parameters_move_in_two_optimizer_steps(
    method, built, train_frames, val_frames, cache, tmp_path
):
    model = copy.deepcopy(built[method][0])
    ref_before, gnn_before = weight(model), weight(model, GNN_PARAM)
    result = tiny_train(
        model, train_frames, val_frames, method, tmp_path, cache, gradient_layers=None
    )
    assert result.history.query("split == 'train'").shape[0] == 1  # 8 frames / batch 4 = 2 steps
    n_params = sum(p.numel() for p in model.parameters())
    assert not torch.equal(weight(model, GNN_PARAM), gnn_before)
    ref_after = weight(model)
    if method == "2_trainable_gga_atomref":
        assert result.summary["n_trainable_parameters"] == n_params
        z_present = sorted({_z(el) - 1 for f in train_frames for el in f.species})
        moved = (ref_after != ref_before).reshape(-1)
        assert moved[z_present].all()  # elements in the training frames moved
        assert moved.sum() == len(z_present)  # absent ones get zero gradient: Adam leaves them
    else:
        assert torch.equal(ref_after, ref_before)
        assert result.summary["n_trainable_parameters"] == n_params - 94  # not in the optimizer
        assert not model.composition_model.fc.weight.requires_grad


def _z(symbol):
    from pymatgen.core import Element

    return Element(symbol).Z


def test_outputs_tables_gradients_and_model_file(built, frames, cache, tmp_path):
    from chgnet.model import CHGNet

    method = "4_refit_atomref"
    model = copy.deepcopy(built[method][0])
    cache.graphs(frames)  # warm: training must not convert again
    result = tiny_train(
        model,
        frames[:12],
        frames[8:10],
        method,
        tmp_path,
        cache,
        batch_size=1,
        info=built[method][1],
    )
    history = pd.read_csv(tmp_path / "history.csv")
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert list(zip(history["epoch"], history["split"])) == [(0, "val"), (1, "train"), (1, "val")]
    assert history["energy_mae"].notna().all() and (history["wall_s"] > 0).all()
    curve = pd.read_csv(tmp_path / "steps.csv")  # one row per optimiser step: 12 frames, batch 1
    assert tuple(curve.columns) == STEP_COLUMNS
    assert list(curve["step"]) == list(range(1, 13)) and (curve["epoch"] == 1).all()
    assert np.isfinite(curve["loss"]).all() and (curve["loss"] > 0).all()
    # The running epoch error after the last step is the train row's energy MAE.
    assert curve["train_energy_mae_running"].iloc[-1] == pytest.approx(history["energy_mae"].iloc[1])
    gradients = pd.read_csv(tmp_path / "gradients.csv")
    assert tuple(gradients.columns) == GRADIENT_COLUMNS
    steps = sorted(gradients["step"].unique())
    assert steps == tenth_steps(12) and len(steps) == 10  # every tenth of the first epoch
    np.testing.assert_allclose(sorted(gradients["epoch_fraction"].unique()), np.array(steps) / 12)
    assert set(gradients["layer"]) == set(FIG3A_LAYERS) and len(gradients) == 80
    assert (gradients["method"] == method).all()
    # L2 norm >= largest |component| >= mean |component|: the three columns are what they say.
    assert (gradients["grad_norm"] >= gradients["grad_abs_max"] * (1 - 1e-6)).all()
    assert (gradients["grad_abs_max"] >= gradients["grad_abs_mean"]).all()
    # A batch of one small structure may have no angle: zero there, never everywhere.
    assert (gradients.groupby("layer")["grad_norm"].max() > 0).all()

    summary = result.summary
    assert summary["graphs_converted_this_run"] == 0
    assert summary["fused_force_stress"] is True  # checked against CHGNet.forward, then used
    assert summary["batched_collation"] is True and summary["projected_layers"] is True
    assert summary["best_epoch"] == 1 and summary["device"] == "cpu"
    assert summary["val_before"]["energy_mae_mev_per_atom"] == pytest.approx(
        1000 * history["energy_mae"][0]
    )
    assert summary["val_after"]["energy_mae_mev_per_atom"] == pytest.approx(
        1000 * history["energy_mae"][2]
    )
    # Throughput: the 12 training structures of the one epoch over that epoch's training time.
    train_s = history.loc[history["split"] == "train", "wall_s"].sum()
    assert summary["n_train"] == 12 and summary["train_time_s"] == pytest.approx(train_s)
    assert summary["train_structures_per_s"] == pytest.approx(12 / train_s)
    assert summary["train_structures_per_s_this_run"] == pytest.approx(12 / train_s)
    assert summary["model_info"]["atomref_start"].startswith("Eq. 2 refit")
    loaded = CHGNet.from_file(str(tmp_path / "model_final.pt"))
    for (name, a), b in zip(loaded.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    state = torch.load(tmp_path / "checkpoint_epoch1.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "epoch", "rng"} <= set(state)
    # model_step0.pt is the built model before any step (Table 1's step-0 row), not the final.
    start = CHGNet.from_file(str(tmp_path / "model_step0.pt")).state_dict()
    for name, value in built[method][0].state_dict().items():
        torch.testing.assert_close(start[name], value, msg=name)
    moved = [name for name, value in model.state_dict().items()
             if not torch.equal(start[name], value)]
    assert moved and not any(name.startswith("composition_model") for name in moved)


def test_max_steps_ends_the_last_epoch_and_the_schedule_there(
    built, train_frames, val_frames, cache, tmp_path
):
    """Compute-matched scaling: 8 frames in batches of 4 over 2 epochs, cut at step 3."""
    method = "4_refit_atomref"
    result = tiny_train(copy.deepcopy(built[method][0]), train_frames, val_frames, method,
                        tmp_path, cache, epochs=2, max_steps=3, gradient_layers=None)
    assert result.summary["settings"]["max_steps"] == 3
    scheduler = torch.load(tmp_path / "checkpoint_epoch2.pt", weights_only=False)["scheduler"]
    assert scheduler["last_epoch"] == 3  # steps 1, 2 (epoch 1) and 3: the cut epoch's first
    assert scheduler["_last_lr"][0] == pytest.approx(1e-5)  # the cosine still ends at its floor
    assert len(result.history.query("split == 'train'")) == 2  # both epochs ran, the second cut
    with pytest.raises(ConfigError, match="does not end within epoch 2"):
        tiny_train(copy.deepcopy(built[method][0]), train_frames, val_frames, method,
                   tmp_path / "bad", cache, epochs=2, max_steps=2, gradient_layers=None)


def test_resume_after_a_kill_finishes_the_same_way(
    built, train_frames, val_frames, cache, tmp_path
):
    method = "3_frozen_gga_atomref"
    full, cut = tmp_path / "full", tmp_path / "cut"
    run = {"epochs": 2, "gradient_layers": ["AtomEmb"]}
    done = tiny_train(
        copy.deepcopy(built[method][0]), train_frames, val_frames, method, full, cache, **run
    )
    scheduler = torch.load(full / "checkpoint_epoch2.pt", weights_only=False)["scheduler"]
    assert scheduler["_last_lr"][0] == pytest.approx(1e-5)  # cosine reaches the final lr at the end

    # Killed during epoch 2: only epoch 1's checkpoint survived (Snakemake removed the job's
    # outputs, model_step0.pt among them).
    shutil.copytree(full, cut)
    for name in (
        "checkpoint_epoch2.pt",
        "model_step0.pt",
        "model_final.pt",
        "model_best.pt",
        "history.csv",
        "steps.csv",
        "train_summary.json",
    ):
        (cut / name).unlink()
    resumed = tiny_train(
        copy.deepcopy(built[method][0]),
        train_frames,
        val_frames,
        method,
        cut,
        cache,
        keep_checkpoints=1,
        **run,
    )
    assert resumed.summary["resumed_from_epoch"] == 1
    from chgnet.model import CHGNet

    step0 = [CHGNet.from_file(str(d / "model_step0.pt")).state_dict() for d in (full, cut)]
    for name, value in step0[0].items():
        torch.testing.assert_close(step0[1][name], value, msg=name)  # the start, rebuilt
    assert sorted(p.name for p in cut.glob("checkpoint_*")) == ["checkpoint_epoch2.pt"]
    for (name, a), b in zip(done.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    columns = [c for c in HISTORY_COLUMNS if c != "wall_s"]
    pd.testing.assert_frame_equal(done.history[columns], resumed.history[columns], rtol=1e-5)
    pd.testing.assert_frame_equal(done.gradients, resumed.gradients)  # epoch-1 gradients restored
    # The learning curve: epoch 1's steps restored from the checkpoint, epoch 2's appended.
    curve_done, curve_resumed = (pd.read_csv(d / "steps.csv") for d in (full, cut))
    pd.testing.assert_frame_equal(curve_done, curve_resumed, rtol=1e-5)
    assert list(curve_resumed["step"]) == list(range(1, len(curve_resumed) + 1))
    assert set(curve_resumed["epoch"]) == {1, 2}

    # A finished run is not trained again; other settings are refused, not mixed.
    again = tiny_train(
        copy.deepcopy(built[method][0]), train_frames, val_frames, method, full, cache, **run
    )
    assert (
        again.summary["resumed_from_epoch"] == 2
        and again.summary["train_structures_per_s_this_run"] is None
    )
    with pytest.raises(ConfigError, match="learning_rate"):
        tiny_train(
            copy.deepcopy(built[method][0]),
            train_frames,
            val_frames,
            method,
            full,
            cache,
            learning_rate=5e-4,
            **run,
        )


def test_bad_training_settings_are_refused(built, train_frames, val_frames, cache, tmp_path):
    model = built["3_frozen_gga_atomref"][0]
    for bad, match in (
        ({"epochs": 0}, "epochs"),
        ({"loss_ratios": (1, 1)}, "loss_ratios"),
        ({"final_learning_rate": 1.0}, "final_learning_rate"),
        ({"criterion": "L7"}, "criterion"),
        ({"validate_every": 0}, "validate_every"),
    ):
        with pytest.raises(ConfigError, match=match):
            tiny_train(
                model, train_frames, val_frames, "3_frozen_gga_atomref", tmp_path, cache, **bad
            )


def test_validate_every_none_validates_before_and_after_only(
    built, train_frames, val_frames, cache, tmp_path
):
    model = copy.deepcopy(built["4_refit_atomref"][0])
    result = tiny_train(
        model, train_frames[:4], val_frames, "4_refit_atomref", tmp_path, cache,
        epochs=3, gradient_layers=None, validate_every=None,
    )
    rows = list(zip(result.history["epoch"], result.history["split"]))
    assert rows == [(0, "val"), (1, "train"), (2, "train"), (3, "train"), (3, "val")]
    assert result.summary["best_epoch"] == 3  # chosen among validated epochs only



def test_project_before_gather_off_trains_chgnet_s_own_layers(
    built, train_frames, val_frames, cache, tmp_path
):
    """A model that arrives projected (load_chgnet's) is switched back when the setting is off."""
    from chgnet.model.layers import AtomConv

    from mlip_transfer.transfer.layers import ProjectedAtomConv, project_before_gather

    model = copy.deepcopy(built["3_frozen_gga_atomref"][0])
    project_before_gather(model)
    result = tiny_train(model, train_frames, val_frames, "3_frozen_gga_atomref", tmp_path, cache,
                        project_before_gather=False, gradient_layers=None)
    assert result.summary["projected_layers"] is False
    assert type(result.model.atom_conv_layers[0]) is AtomConv
    on = tiny_train(copy.deepcopy(built["3_frozen_gga_atomref"][0]), train_frames, val_frames,
                    "3_frozen_gga_atomref", tmp_path / "on", cache, gradient_layers=None)
    assert on.summary["projected_layers"] is True
    assert type(on.model.atom_conv_layers[0]) is ProjectedAtomConv
