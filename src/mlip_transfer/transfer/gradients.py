"""Fig. 3a: gradient norms of chosen CHGNet layers, recorded every tenth of the first epoch.

Fig. 3a layers (paper name -> CHGNet parameter): see :data:`FIG3A_LAYERS`. ``W0`` / ``W3`` are
the linear layers at index 0 and 3 of the core MLP of the two-body gated MLP of a convolution
(``mlp_core.layers.0`` / ``.3``); the gate MLP has the same shape and is not recorded. The
norm is the L2 norm of the parameter's gradient just before the optimizer step (0 when the batch
does not reach the parameter, e.g. a batch without any angle; NaN for a frozen parameter).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch

from mlip_transfer.core.errors import ConfigError

# Paper name (Fig. 3a) -> CHGNet parameter whose gradient norm is recorded.
FIG3A_LAYERS = {
    "AtomEmb": "atom_embedding.embedding.weight",
    "BondEmb": "bond_embedding.weight",
    "AngleEmb": "angle_embedding.weight",
    "AtomConv0_W0": "atom_conv_layers.0.twoBody_atom.mlp_core.layers.0.weight",
    "AtomConv3_W3": "atom_conv_layers.3.twoBody_atom.mlp_core.layers.3.weight",
    "BondConv0_W0": "bond_conv_layers.0.twoBody_bond.mlp_core.layers.0.weight",
    "BondConv2_W3": "bond_conv_layers.2.twoBody_bond.mlp_core.layers.3.weight",
    "MLP_Layer0": "mlp.layers.0.weight",
}
GRADIENT_COLUMNS = (
    "method",
    "step",
    "epoch_fraction",
    "layer",
    "grad_norm",
    "grad_abs_mean",
    "grad_abs_max",
    "parameter",
)


def resolve_layers(model: Any, layers: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Label -> parameter name of the layers to record.

    Args:
        model: The model whose parameters are named.
        layers: Fig. 3a names (:data:`FIG3A_LAYERS`), parameter names, or a mapping label ->
            parameter name; ``None`` records none.

    Raises:
        ConfigError: A layer names no parameter of the model.
    """
    if layers is None:
        return {}
    if isinstance(layers, Mapping):
        mapping = dict(layers)
    else:
        mapping = {name: FIG3A_LAYERS.get(name, name) for name in layers}
    params = dict(model.named_parameters())
    unknown = [f"{k} ({v})" for k, v in mapping.items() if v not in params]
    if unknown:
        raise ConfigError(f"gradient_layers name parameters the model does not have: {unknown}")
    return mapping


class GradientRecorder:
    """Rows of ``gradients.csv``: the trainer calls :meth:`after_backward` after every backward.

    Only the first epoch is recorded, after the batches where the scheduler steps (every
    tenth of the epoch), as the paper's Fig. 3a.

    Args:
        layers: What :func:`resolve_layers` takes (default: all of :data:`FIG3A_LAYERS`).
    """

    def __init__(self, layers: Mapping[str, str] | Sequence[str] | None = tuple(FIG3A_LAYERS)):
        self.requested = layers
        self.layers: dict[str, str] = {}
        self.rows: list[dict[str, Any]] = []
        self._params: dict[str, torch.nn.Parameter] = {}
        self._method = ""
        self._n_batches = 0
        self._steps: Collection[int] = ()

    def start(
        self,
        model: Any,
        *,
        method: str,
        n_batches: int,
        steps: Collection[int],
        rows: list[dict[str, Any]],
    ) -> None:
        """Bind to a training run; new rows are appended to ``rows`` (restored on resume).

        Raises:
            ConfigError: A layer names no parameter of the model.
        """
        self.layers = resolve_layers(model, self.requested)
        self._params = dict(model.named_parameters())
        self._method, self._n_batches, self._steps = method, n_batches, steps
        self.rows = rows

    def after_backward(self, *, epoch: int, step: int) -> None:
        """Record the layers' gradients if ``step`` (1-based batch) of ``epoch`` is one to keep."""
        if epoch != 1 or not self.layers or step not in self._steps:
            return
        for label, name in self.layers.items():
            param = self._params[name]
            grad = param.grad
            if grad is None:  # not reached by this batch (e.g. no angles): zero if trainable
                grad = torch.zeros_like(param) if param.requires_grad else None
            values = (
                (math.nan,) * 3
                if grad is None
                else (float(grad.norm()), float(grad.abs().mean()), float(grad.abs().max()))
            )
            self.rows.append(
                {
                    "method": self._method,
                    "step": step,
                    "epoch_fraction": step / self._n_batches,
                    "layer": label,
                    "grad_norm": values[0],
                    "grad_abs_mean": values[1],
                    "grad_abs_max": values[2],
                    "parameter": name,
                }
            )
