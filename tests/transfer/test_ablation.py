"""The gradient ablation: seeded batches shared by every variant, ratios to Method 4, and the
sentence that answers the ≥ 10x question."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from test_transfer import frame

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer import ablation as A
from mlip_transfer.transfer import ablation_summary as S


def test_smaller_batches_are_the_first_frames_of_the_larger_ones():
    frames = [frame(i, ["Na", "Cl"]) for i in range(50)]
    batches = A.seeded_batches(frames, sizes=[4, 16], count=3, seed=0)
    assert [len(b) for b in batches[16]] == [16, 16, 16] and [len(b) for b in batches[4]] == [4] * 3
    for small, large in zip(batches[4], batches[16], strict=True):
        assert small == large[:4]
    ids = [f.frame_id for b in batches[16] for f in b]
    assert len(set(ids)) == 48  # no frame twice
    reordered = A.seeded_batches(frames[::-1], sizes=[4, 16], count=3, seed=0)
    assert reordered == batches  # the file order does not matter
    assert A.seeded_batches(frames, sizes=[16], count=3, seed=1) != batches
    assert len(A.seeded_batches(frames, sizes=[16], count=9, seed=0)[16]) == 4  # frames run out


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="batches"):
        A.AblationSettings(batches=0)
    with pytest.raises(ConfigError, match="dynamic_steps"):
        A.AblationSettings(dynamic_steps=-1)
    made = A.AblationSettings.from_config({"batches": 2, "batch_sizes": [16, 64], "dynamic_steps": 0},
                                          training={"learning_rate": 5e-4, "seed": 3})
    assert made == A.AblationSettings(batches=2, batch_sizes=(16, 64), dynamic_steps=0,
                                      learning_rate=5e-4, seed=3)


def _table(scale):
    """A static ablation table: the GGA AtomRef's gradients are ``scale(loss)`` times Eq. 2's,
    on every layer and batch, for every terms / batch size / statistic."""
    rows = []
    for atomref, loss, terms, size, batch, layer in itertools.product(
            ["gga", "eq2"], A.LOSSES, A.TERMS, [16, 64], [0, 1], ["L1", "L2", "L3"]):
        factor = scale(loss, layer) if atomref == "gga" else 1.0
        rows.append({"part": "static", "atomref": atomref, "loss": loss, "terms": terms,
                     "batch_size": size, "batch": batch, "step": 0, "layer": layer,
                     **{stat: 0.01 * factor for stat in A.STATISTICS}})
    return pd.DataFrame(rows, columns=A.COLUMNS)


def test_only_the_loss_that_leaves_the_offset_uncapped_reaches_the_paper_ratio():
    # MSE: 40x on every layer; Huber: 1.5x, but one layer at 12x does not make "every layer".
    ratios = S.ratios(_table(lambda loss, layer: 40.0 if loss == "mse" else (12.0 if layer == "L1" else 1.5)))
    gga = ratios[ratios["atomref"] == "gga"]
    assert len(gga) == 3 * 2 * 2 * 3  # losses x terms x batch sizes x statistics
    assert gga.loc[gga["loss"] == "mse", "paper_ratio_on_every_layer"].all()
    assert not gga.loc[gga["loss"] != "mse", "paper_ratio_on_every_layer"].any()
    np.testing.assert_allclose(gga.loc[gga["loss"] == "huber_1", "min_ratio"], 1.5)
    answer = S.answer(ratios, setting=S.training_setting({"criterion": "Huber", "batch_size": 16}))
    assert answer["baseline"]["median_ratio"] == pytest.approx(1.5)
    assert len(answer["reaching"]) == 12 and {r["loss"] for r in answer["reaching"]} == {"mse"}
    assert "1.5x Method 4's" in answer["sentence"] and "all with MSE" in answer["sentence"]


def test_no_setting_reaching_the_ratio_is_said_so():
    answer = S.answer(S.ratios(_table(lambda loss, layer: 2.0)))
    assert answer["reaching"] == [] and "No setting reaches ≥ 10x" in answer["sentence"]


def test_a_zero_denominator_is_no_ratio_not_an_infinite_one():
    table = _table(lambda loss, layer: 3.0)
    table.loc[(table["atomref"] == "eq2") & (table["layer"] == "L3"), list(A.STATISTICS)] = 0.0
    ratios = S.ratios(table)
    assert (ratios["n_layers"] == 2).all() and np.isfinite(ratios["median_ratio"]).all()


def test_static_gradients_of_a_real_model_differ_by_atomref_and_loss(source, built, train_frames, cache):
    """At the source GNN: the GGA AtomRef's offset gives MSE gradients far above Eq. 2's, and
    Huber's cap keeps them close (the mechanism the ablation tests)."""
    from mlip_transfer.energy_scale.chgnet_atomref import read_model_atomref

    atomrefs = {"gga": read_model_atomref(source), "eq2": built["4_refit_atomref"][1]["atomref"]}
    settings = A.AblationSettings(batches=1, batch_sizes=(4,), dynamic_steps=0)
    table = A.static_gradients(source, atomrefs, train_frames, settings, cache=cache,
                               layers={"MLP": "mlp.layers.0.weight"})
    assert len(table) == 2 * 3 * 2  # AtomRefs x losses x terms, one layer, one batch
    ratios = S.ratios(table).set_index(["loss", "terms", "statistic"])["median_ratio"]
    assert ratios[("mse", "energy", "grad_norm")] > 3 * ratios[("huber_0.1", "energy", "grad_norm")]
    assert ratios[("huber_0.1", "energy", "grad_norm")] < 3


def test_the_dynamic_trend_is_read_per_step_and_said():
    rows = []
    for step, (gga, eq2) in enumerate([(2.0, 1.0), (3.0, 0.5), (4.0, 0.25)], start=1):
        for atomref, value in (("gga", gga), ("eq2", eq2)):
            rows.append({"part": "dynamic", "atomref": atomref, "loss": "huber_0.1", "terms": "full",
                         "batch_size": 16, "batch": 0, "step": step, "layer": "L1",
                         **dict.fromkeys(A.STATISTICS, value)})
    per_step = S.dynamic_ratio_per_step(pd.DataFrame(rows, columns=A.COLUMNS))
    assert per_step["ratio"].tolist() == [2.0, 6.0, 16.0]
    words = S.trend_sentence(per_step, "huber_0.1")
    assert "rises from 2.0x to 16.0x over 3 Adam steps" in words
    assert S.trend_sentence(per_step, "mse") == ""
