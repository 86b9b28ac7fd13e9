"""CHGNet model surgery: read and write a model's AtomRef, and chgnet's shipped AtomRef fits.

The AtomRef of a CHGNet model is the 1x94 weight of ``model.composition_model.fc`` (index
``Z - 1``, eV/atom, intensive); see :mod:`mlip_transfer.energy_scale.atomref` for the fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from pymatgen.core import Element

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.energy_scale.atomref import AtomRefFit
from mlip_transfer.energy_scale.compositions import atomic_number

ZERO_WEIGHT = 1e-8  # |w| below this in a shipped/model AtomRef means "never fitted"
SHIPPED = ("MPtrj", "MP-r2SCAN")


def _composition_model(model: Any) -> Any:
    comp = getattr(model, "composition_model", None)
    if comp is None or not hasattr(comp, "fc"):
        raise ConfigError("the model has no AtomRef composition model (model.composition_model.fc)")
    if not getattr(comp, "is_intensive", True):
        raise ConfigError("the model's AtomRef is extensive; only intensive AtomRefs are supported")
    return comp


def _weights_to_dict(weight: np.ndarray) -> dict[str, float]:
    return {
        Element.from_Z(z).symbol: float(w)
        for z, w in enumerate(np.asarray(weight).reshape(-1), start=1)
        if abs(w) >= ZERO_WEIGHT
    }


def read_model_atomref(model: Any) -> dict[str, float]:
    """The AtomRef of a CHGNet model, eV/atom; elements with ``|w| < 1e-8`` are omitted."""
    return _weights_to_dict(_composition_model(model).fc.weight.detach().cpu().numpy())


def model_atomref_vector(model: Any) -> np.ndarray:
    """The raw 94-vector the model adds (zeros included): what the model actually computes."""
    return _composition_model(model).fc.weight.detach().cpu().numpy().reshape(-1).astype(float)


def shipped_atomref(name: str) -> dict[str, float]:
    """A fit shipped with chgnet (``"MPtrj"`` or ``"MP-r2SCAN"``); near-zero weights omitted."""
    if name not in SHIPPED:
        raise ConfigError(f"shipped AtomRef must be one of {list(SHIPPED)}, got {name!r}")
    from chgnet.model.composition_model import AtomRef

    ref = AtomRef(is_intensive=True)
    ref.initialize_from(name)
    return _weights_to_dict(ref.fc.weight.detach().cpu().numpy())


def set_model_atomref(
    model: Any, energies: Mapping[str, float] | AtomRefFit, *, keep_unlisted: bool = True
) -> Any:
    """Write per-element energies into ``model.composition_model.fc.weight`` in place.

    Args:
        model: A CHGNet model.
        energies: Element -> eV/atom, or a fit (its determined energies).
        keep_unlisted: Elements not listed keep their current weight. If False, raise when an
            element the model currently references (non-zero weight) is not listed.

    Returns:
        The same model.

    Raises:
        DataError: Unknown element, Z > 94, a non-finite value, or (``keep_unlisted=False``)
            elements left unlisted.
    """
    import torch

    comp = _composition_model(model)
    values = energies.energies if isinstance(energies, AtomRefFit) else dict(energies)
    weight = comp.fc.weight
    size = weight.shape[-1]
    for el, value in values.items():
        if not Element.is_valid_symbol(el) or atomic_number(el) > size:
            raise DataError(f"element {el!r} is not in the model's {size}-element AtomRef")
        if not math.isfinite(float(value)):
            raise DataError(f"AtomRef energy of {el} is {value}", record=el)
    if not keep_unlisted:
        unlisted = sorted(set(read_model_atomref(model)) - set(values), key=atomic_number)
        if unlisted:
            raise DataError(f"no new AtomRef energy for elements {unlisted} (keep_unlisted=False)")
    with torch.no_grad():
        for el, value in values.items():
            weight[0, atomic_number(el) - 1] = float(value)
    comp.fitted = True
    return model
