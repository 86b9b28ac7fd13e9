"""The four transfer methods: starting points, what may change in training, outputs, resume."""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.data.dataset import KBAR_PER_GPA_VASP_SIGN, iter_frames
from mlip_transfer.energy_scale.atomref import (
    fit_atomref_to_frames,
    fit_residual_shift,
    read_model_atomref,
)
from mlip_transfer.transfer import training as T

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
DATASET = "resources/default_dataset/frames.jsonl.gz"
GNN_PARAM = "mlp.layers.0.weight"
ATOMREF = "composition_model.fc.weight"


@pytest.fixture(scope="module")
def frames(request):
    """12 small r2SCAN frames of the shipped default dataset, one per material.

    Order: 4 elemental, 4 compounds (train: 14 elements in 8 frames, so the Eq. 2 refit is rank
    deficient), then 1 + 1 (validation), then 1 + 1 spare.
    """
    elemental, compounds, seen = [], [], set()
    for frame in iter_frames(request.config.rootpath / DATASET):
        if frame.functional != "r2scan" or frame.magmoms is None or frame.material_id in seen:
            continue
        if len(set(frame.species)) == 1 and frame.n_atoms <= 4 and len(elemental) < 6:
            elemental.append(frame)
        elif len(set(frame.species)) > 1 and frame.n_atoms <= 6 and len(compounds) < 6:
            compounds.append(frame)
        else:
            continue
        seen.add(frame.material_id)
        if len(elemental) == len(compounds) == 6:
            break
    e, c = elemental, compounds
    return e[:4] + c[:4] + [e[4], c[4], e[5], c[5]]


@pytest.fixture(scope="module")
def train_frames(frames):
    return frames[:8]


@pytest.fixture(scope="module")
def val_frames(frames):
    return frames[8:10]


@pytest.fixture(scope="module")
def source():
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False, use_device="cpu")


@pytest.fixture(scope="module")
def cache(source):
    return T.GraphCache(source.graph_converter)


@pytest.fixture(scope="module")
def built(source, train_frames, cache):
    return {
        method: T.build_model(
            method, train_frames=train_frames, source_model=source, graph_cache=cache
        )
        for method in T.METHODS
    }


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
    return T.train(
        model=model,
        train_frames=train_frames,
        val_frames=val_frames,
        method=method,
        out_dir=out_dir,
        **settings,
    )


# ------------------------------------------------------------------ fast: no training


def test_methods_are_the_papers_four_plus_the_residual_variant():
    assert T.METHODS == (
        "1_scratch",
        "2_trainable_gga_atomref",
        "3_frozen_gga_atomref",
        "4_refit_atomref",
        "4r_residual_atomref",
    )
    assert set(T.METHOD_NAMES) == set(T.METHODS)
    assert [m for m in T.METHODS if T.TRAINABLE_ATOMREF[m]] == ["2_trainable_gga_atomref"]
    with pytest.raises(ConfigError, match="training method"):
        T.build_model("5_magic", train_frames=[])


def test_scheduler_steps_every_tenth_of_an_epoch_as_chgnet_trainer():
    # chgnet Trainer: step after batch idx + 1 in np.arange(1, 11) * n // 10
    for n in (10, 25, 193):
        assert T._tenth_steps(n) == sorted(set((np.arange(1, 11) * n // 10).tolist()))
    assert T._tenth_steps(4) == [1, 2, 3, 4]  # fewer batches than tenths: every batch
    assert T._tenth_steps(0) == []


def test_fig3a_layer_names_map_to_chgnet_parameters(source):
    params = dict(source.named_parameters())
    assert list(T.FIG3A_LAYERS) == [
        "AtomEmb",
        "BondEmb",
        "AngleEmb",
        "AtomConv0_W0",
        "AtomConv3_W3",
        "BondConv0_W0",
        "BondConv2_W3",
        "MLP_Layer0",
    ]
    for name in T.FIG3A_LAYERS.values():
        assert params[name].dim() == 2
    assert T._resolve_layers(source, ["AtomEmb"]) == {"AtomEmb": "atom_embedding.embedding.weight"}
    with pytest.raises(ConfigError, match="does not have"):
        T._resolve_layers(source, ["NoSuchLayer"])


def test_targets_are_chgnet_training_units_same_as_structuredata(frames):
    from chgnet.data.dataset import StructureData

    frame = frames[3]
    stock = StructureData(
        structures=[frame.to_structure()],
        energies=[frame.energy_per_atom],
        forces=[frame.forces.tolist()],
        stresses=[(frame.stress * KBAR_PER_GPA_VASP_SIGN).tolist()],  # VASP kBar, as MPtrj
        magmoms=[frame.magmoms.tolist()],
        shuffle=False,
    )[0][1]
    ours = T.frame_targets(frame)
    for key in "efsm":
        torch.testing.assert_close(ours[key], stock[key])
    torch.testing.assert_close(ours["s"], torch.tensor(frame.stress, dtype=torch.float32))  # GPa
    missing = T.frame_targets(dataclasses.replace(frame, energy=None, stress=None, magmoms=None))
    assert math.isnan(missing["e"]) and torch.isnan(missing["s"]).all() and missing["m"] is None


def test_graph_cache_converts_each_structure_once_and_persists(source, frames, tmp_path):
    cache = T.GraphCache(source.graph_converter, cache_dir=tmp_path)
    first = cache.graphs(frames)
    again = cache.graphs(frames[:5])
    T.GraphDataset.from_frames(frames, cache)
    assert cache.n_converted == len(frames)
    assert again[0] is first[0]
    assert not first[0].atom_frac_coord.requires_grad  # cached leaves never collect gradients
    moved = dataclasses.replace(frames[0], frac_coords=frames[0].frac_coords + 0.01)
    cache.graphs([moved])  # same frame id, other structure: a new graph
    assert cache.n_converted == len(frames) + 1
    other = T.GraphCache(source.graph_converter, cache_dir=tmp_path)  # another process, same disk
    loaded = other.graphs(frames)
    assert other.n_converted == 0 and other.n_loaded == len(frames) + 1
    torch.testing.assert_close(loaded[2].atom_graph, first[2].atom_graph)
    torch.testing.assert_close(loaded[2].lattice, first[2].lattice)


def test_fused_force_stress_pass_equals_chgnet_forward(source, frames, cache):
    from chgnet.data.dataset import collate_graphs
    from chgnet.trainer.trainer import CombinedLoss

    model = copy.deepcopy(source)
    dataset, _ = T.GraphDataset.from_frames(frames[:6], cache)
    graphs, targets = collate_graphs([dataset[i] for i in range(len(dataset))])
    loss_fn = CombinedLoss(
        target_str="efsm", criterion="Huber", energy_loss_ratio=3, mag_loss_ratio=1
    )
    results = []
    for fused in (False, True):
        batch, labels = T._to_device(graphs, targets, torch.device("cpu"), forces=True)
        prediction = T.predict_efsm(model, batch, fused=fused)
        model.zero_grad()
        loss_fn(labels, prediction)["loss"].backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((prediction, grads))
    (stock, stock_grads), (fused, fused_grads) = results
    torch.testing.assert_close(fused["e"], stock["e"])
    for key in "fsm":
        for a, b in zip(fused[key], stock[key], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert set(fused_grads) == set(stock_grads)
    for name, grad in stock_grads.items():  # same gradients up to float32 summation order
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-3, atol=1e-6, msg=name)
    assert T._check_fused(model, graphs, torch.device("cpu"))


# ------------------------------------------------------------------ starting points


def test_build_model_starting_points(source, built, train_frames):
    src_ref = read_model_atomref(source)
    src_gnn = weight(source, GNN_PARAM)
    refit = fit_atomref_to_frames(train_frames)
    present = {el for f in train_frames for el in f.species}

    def atomref(method):
        return read_model_atomref(built[method][0])

    # Method 1: random GNN (seeded), AtomRef = Eq. 2 refit, frozen.
    m1, info1 = built["1_scratch"]
    assert not torch.equal(weight(m1, GNN_PARAM), src_gnn)
    assert info1["gnn_init"].startswith("random") and info1["atomref_trainable"] is False
    for el, value in refit.energies.items():
        assert atomref("1_scratch")[el] == pytest.approx(value, abs=1e-5)
    assert atomref("1_scratch")["Pu"] == src_ref["Pu"]  # absent from training: source value
    again, _ = T.build_model("1_scratch", train_frames=train_frames, source_model=source, seed=0)
    other, _ = T.build_model("1_scratch", train_frames=train_frames, source_model=source, seed=1)
    assert torch.equal(weight(again, GNN_PARAM), weight(m1, GNN_PARAM))
    assert not torch.equal(weight(other, GNN_PARAM), weight(m1, GNN_PARAM))

    # Methods 2 and 3: source weights and source AtomRef; trainable only in Method 2.
    for method, trainable in (("2_trainable_gga_atomref", True), ("3_frozen_gga_atomref", False)):
        model, info = built[method]
        assert atomref(method) == src_ref
        assert torch.equal(weight(model, GNN_PARAM), src_gnn)
        assert info["atomref_trainable"] is trainable
        assert model.composition_model.fc.weight.requires_grad is trainable

    # Method 4: AtomRef = Eq. 2 refit on the training frames; undetermined ones keep the source.
    m4, info4 = built["4_refit_atomref"]
    assert torch.equal(weight(m4, GNN_PARAM), src_gnn)
    for el in present:
        expected = refit.energies.get(el, src_ref[el])
        assert atomref("4_refit_atomref")[el] == pytest.approx(expected, abs=1e-5)
    assert set(info4["atomref_undetermined"]) == set(refit.missing)
    assert info4["atomref_fitted_elements"] == sorted(refit.energies)
    assert "Pu" in info4["atomref_absent_from_training"]

    # Method 4r: source + shift fitted to (label - source prediction), predictions by chgnet.
    preds = [float(source.predict_structure(f.to_structure(), task="e")["e"]) for f in train_frames]
    shift = fit_residual_shift(
        [f.species for f in train_frames], [f.energy_per_atom for f in train_frames], preds
    )
    for el in present:
        expected = src_ref[el] + shift.energies.get(el, 0.0)
        assert atomref("4r_residual_atomref")[el] == pytest.approx(expected, abs=1e-4)
    assert read_model_atomref(source) == src_ref  # the source model itself is untouched


# ------------------------------------------------------------------ training


@pytest.mark.parametrize("method", T.METHODS)
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
    assert tuple(history.columns) == T.HISTORY_COLUMNS
    assert list(zip(history["epoch"], history["split"])) == [(0, "val"), (1, "train"), (1, "val")]
    assert history["energy_mae"].notna().all() and (history["wall_s"] > 0).all()
    gradients = pd.read_csv(tmp_path / "gradients.csv")
    assert tuple(gradients.columns) == T.GRADIENT_COLUMNS
    steps = sorted(gradients["step"].unique())
    assert steps == T._tenth_steps(12) and len(steps) == 10  # every tenth of the first epoch
    np.testing.assert_allclose(sorted(gradients["epoch_fraction"].unique()), np.array(steps) / 12)
    assert set(gradients["layer"]) == set(T.FIG3A_LAYERS) and len(gradients) == 80
    assert (gradients["method"] == method).all() and (gradients["grad_norm"] >= 0).all()
    # A batch of one small structure may have no angle: zero there, never everywhere.
    assert (gradients.groupby("layer")["grad_norm"].max() > 0).all()

    summary = result.summary
    assert summary["graphs_converted_this_run"] == 0
    assert summary["fused_force_stress"] is True  # checked against CHGNet.forward, then used
    assert summary["best_epoch"] == 1 and summary["device"] == "cpu"
    assert summary["val_before"]["energy_mae_mev_per_atom"] == pytest.approx(
        1000 * history["energy_mae"][0]
    )
    assert summary["val_after"]["energy_mae_mev_per_atom"] == pytest.approx(
        1000 * history["energy_mae"][2]
    )
    assert summary["train_structures_per_s"] > 0
    assert summary["model_info"]["atomref_start"].startswith("Eq. 2 refit")
    loaded = CHGNet.from_file(str(tmp_path / "model_final.pt"))
    for (name, a), b in zip(loaded.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    state = torch.load(tmp_path / "checkpoint_epoch1.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "epoch", "rng"} <= set(state)


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

    # Killed during epoch 2: only epoch 1's checkpoint survived.
    shutil.copytree(full, cut)
    for name in (
        "checkpoint_epoch2.pt",
        "model_final.pt",
        "model_best.pt",
        "history.csv",
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
    assert sorted(p.name for p in cut.glob("checkpoint_*")) == ["checkpoint_epoch2.pt"]
    for (name, a), b in zip(done.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    columns = [c for c in T.HISTORY_COLUMNS if c != "wall_s"]
    pd.testing.assert_frame_equal(done.history[columns], resumed.history[columns], rtol=1e-5)
    pd.testing.assert_frame_equal(done.gradients, resumed.gradients)  # epoch-1 gradients restored

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


def test_validate_every_none_validates_before_and_after_only(built, train_frames, val_frames, cache, tmp_path):
    model = copy.deepcopy(built["4_refit_atomref"][0])
    result = tiny_train(
        model, train_frames[:4], val_frames, "4_refit_atomref", tmp_path, cache,
        epochs=3, gradient_layers=None, validate_every=None,
    )
    rows = list(zip(result.history["epoch"], result.history["split"]))
    assert rows == [(0, "val"), (1, "train"), (2, "train"), (3, "train"), (3, "val")]
    assert result.summary["best_epoch"] == 3  # chosen among validated epochs only


# ------------------------------------------------------------------ errors


def test_evaluate_errors_is_zero_on_the_models_own_predictions(source, frames, cache):
    own = []
    for frame in frames[:6]:
        pred = source.predict_structure(frame.to_structure(), task="efsm")
        own.append(
            dataclasses.replace(
                frame,
                energy=float(pred["e"]) * frame.n_atoms,
                forces=np.asarray(pred["f"], dtype=float),
                stress=np.asarray(pred["s"], dtype=float),
                magmoms=np.asarray(pred["m"], dtype=float),
            )
        )
    errors = T.evaluate_errors(source, own, batch_size=4, graph_cache=cache)
    assert errors["n_frames"] == 6 and errors["n_skipped"] == 0
    assert errors["energy_mae_mev_per_atom"] < 1e-3  # float32 noise only
    assert errors["force_mae_mev_per_a"] < 1e-2
    assert errors["stress_mae_gpa"] < 1e-4
    assert errors["magmom_mae_mub"] < 1e-5
    shifted = [
        dataclasses.replace(f, energy=f.energy + 0.010 * f.n_atoms, magmoms=None) for f in own
    ]
    errors = T.evaluate_errors(source, shifted, batch_size=4, graph_cache=cache)
    assert errors["energy_mae_mev_per_atom"] == pytest.approx(10.0, abs=1e-3)  # 10 meV/atom
    assert math.isnan(errors["magmom_mae_mub"])  # no labels: not zero
    assert all(
        p.requires_grad for n, p in source.named_parameters() if not n.startswith("composition")
    )
