"""Fig. 3a: gradient statistics of chosen CHGNet layers over the first optimiser steps.

The paper's Fig. 3a samples every tenth of its first epoch (about 3,000 steps at batch 64).
:class:`GradientRecorder` records either that (``max_steps=None``) or every one of the first
``max_steps`` optimiser steps, across epochs (``training.gradient_steps``), so a short run
still shows the whole window it has.

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
    "epoch",
    "epoch_fraction",
    "layer",
    "grad_norm",
    "grad_abs_mean",
    "grad_abs_max",
    "grad_signed_mean",
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

    Args:
        layers: What :func:`resolve_layers` takes (default: all of :data:`FIG3A_LAYERS`).
        max_steps: None: the first epoch, after the batches where the scheduler steps (every
            tenth of the epoch, the paper's Fig. 3a sampling). N: every one of the first N
            optimiser steps, across epochs.
    """

    def __init__(
        self,
        layers: Mapping[str, str] | Sequence[str] | None = tuple(FIG3A_LAYERS),
        *,
        max_steps: int | None = None,
    ):
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"training.gradient_steps must be at least 1, got {max_steps}")
        self.requested = layers
        self.max_steps = max_steps
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

        ``steps``: the 1-based batches of the first epoch to record when ``max_steps`` is None.

        Raises:
            ConfigError: A layer names no parameter of the model.
        """
        self.layers = resolve_layers(model, self.requested)
        self._params = dict(model.named_parameters())
        self._method, self._n_batches, self._steps = method, n_batches, steps
        self.rows = rows

    def _keeps(self, epoch: int, batch: int) -> bool:
        if not self.layers:
            return False
        if self.max_steps is None:
            return epoch == 1 and batch in self._steps
        return (epoch - 1) * self._n_batches + batch <= self.max_steps

    def after_backward(self, *, epoch: int, step: int) -> None:
        """Record the layers' gradients if batch ``step`` (1-based) of ``epoch`` is one to keep."""
        if not self._keeps(epoch, step):
            return
        global_step = (epoch - 1) * self._n_batches + step
        for label, name in self.layers.items():
            param = self._params[name]
            grad = param.grad
            if grad is None:  # not reached by this batch (e.g. no angles): zero if trainable
                grad = torch.zeros_like(param) if param.requires_grad else None
            values = (
                (math.nan,) * 4
                if grad is None
                else (float(grad.norm()), float(grad.abs().mean()), float(grad.abs().max()),
                      float(grad.mean()))
            )
            self.rows.append(
                {
                    "method": self._method,
                    "step": global_step,
                    "epoch": epoch,
                    "epoch_fraction": global_step / self._n_batches,
                    "layer": label,
                    "grad_norm": values[0],
                    "grad_abs_mean": values[1],
                    "grad_abs_max": values[2],
                    "grad_signed_mean": values[3],
                    "parameter": name,
                }
            )
