"""Fig. 3a layer names."""

from __future__ import annotations

import pytest

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer import gradients as D

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def test_fig3a_layer_names_map_to_chgnet_parameters(source):
    params = dict(source.named_parameters())
    assert list(D.FIG3A_LAYERS) == [
        "AtomEmb",
        "BondEmb",
        "AngleEmb",
        "AtomConv0_W0",
        "AtomConv3_W3",
        "BondConv0_W0",
        "BondConv2_W3",
        "MLP_Layer0",
    ]
    for name in D.FIG3A_LAYERS.values():
        assert params[name].dim() == 2
    assert D.resolve_layers(source, ["AtomEmb"]) == {"AtomEmb": "atom_embedding.embedding.weight"}
    with pytest.raises(ConfigError, match="does not have"):
        D.resolve_layers(source, ["NoSuchLayer"])



def _recorded_steps(max_steps, *, epochs=3, n_batches=4):
    import torch

    model = torch.nn.Linear(3, 2)
    recorder = D.GradientRecorder({"W": "weight"}, max_steps=max_steps)
    rows: list = []
    recorder.start(model, method="m", n_batches=n_batches, steps=[2, 4], rows=rows)
    for epoch in range(1, epochs + 1):
        for batch in range(1, n_batches + 1):
            model.zero_grad()
            model(torch.full((1, 3), float(batch))).sum().backward()
            recorder.after_backward(epoch=epoch, step=batch)
    return rows


def test_a_window_of_n_steps_records_every_step_across_epochs():
    rows = _recorded_steps(6)
    assert [(r["step"], r["epoch"]) for r in rows] == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 2), (6, 2)]
    assert [r["epoch_fraction"] for r in rows] == [s / 4 for s in range(1, 7)]
    # d(sum of outputs)/dW = the input in every row: norm, |mean|, max and signed mean agree.
    last = rows[-1]  # epoch 2, batch 2: input 2.0 in a 2 x 3 weight
    assert last["grad_abs_mean"] == last["grad_abs_max"] == last["grad_signed_mean"] == 2.0
    assert abs(last["grad_norm"] - 2.0 * 6 ** 0.5) < 1e-6
    assert len(_recorded_steps(100)) == 12  # a window longer than the run: every step


def test_without_a_window_only_the_given_batches_of_the_first_epoch():
    rows = _recorded_steps(None)
    assert [(r["step"], r["epoch"]) for r in rows] == [(2, 1), (4, 1)]
    with pytest.raises(ConfigError, match="gradient_steps"):
        D.GradientRecorder(max_steps=0)
