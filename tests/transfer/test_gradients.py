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

