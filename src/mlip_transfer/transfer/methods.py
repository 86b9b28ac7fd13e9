"""The paper's four transfer methods (plus 4r) and the starting model of each (CHGNet).

Methods (``METHODS``; the source is a pretrained CHGNet, default v0.3.0, GGA/GGA+U):

``1_scratch``
    Same architecture as the source, GNN randomly initialised (seeded); AtomRef refit on the
    target training frames (Eq. 2) and frozen.
``2_trainable_gga_atomref``
    Source weights, source (GGA) AtomRef, AtomRef trained with the GNN.
``3_frozen_gga_atomref``
    Source weights, source AtomRef frozen.
``4_refit_atomref``
    Source weights, AtomRef replaced by the Eq.-2 refit on the target training frames, frozen
    (the paper's Method 4).
``4r_residual_atomref``
    Source weights, AtomRef = source AtomRef + a per-element shift fitted to the residual
    ``target label - source prediction`` on the training frames (Eq. 3 estimated directly),
    frozen. Not in the paper: a better-conditioned variant of Method 4 for small data.

Elements a fit cannot determine (present but not identifiable) and elements absent from the
training frames never keep the source (GGA) value inside a model fitted to another functional,
which would be tens of eV/atom off: they get the source value plus the median shift of the
fitted elements (the reported fallback, ``info["atomref_fallback"]``); ``build_model`` lists
both kinds in its info.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import Frame
from mlip_transfer.energy_scale.atomref import (
    add_shift,
    fit_atomref_to_frames,
    fit_residual_shift,
)
from mlip_transfer.energy_scale.chgnet_atomref import read_model_atomref, set_model_atomref
from mlip_transfer.transfer.graphs import GraphCache, shared_graph_cache
from mlip_transfer.transfer.metrics import predict_energies

logger = logging.getLogger("mlip_transfer.transfer.methods")

METHODS = (
    "1_scratch",
    "2_trainable_gga_atomref",
    "3_frozen_gga_atomref",
    "4_refit_atomref",
    "4r_residual_atomref",
)
METHOD_NAMES = {
    "1_scratch": "Method 1: scratch",
    "2_trainable_gga_atomref": "Method 2: TL, trainable GGA AtomRef",
    "3_frozen_gga_atomref": "Method 3: TL, frozen GGA AtomRef",
    "4_refit_atomref": "Method 4: TL, refit AtomRef",
    "4r_residual_atomref": "Method 4r: TL, residual-fit AtomRef",
}
TRAINABLE_ATOMREF = {method: method == "2_trainable_gga_atomref" for method in METHODS}
# Methods whose AtomRef is fitted to the training frames (so they need some).
_FITS_ATOMREF = ("1_scratch", "4_refit_atomref", "4r_residual_atomref")


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else :class:`ConfigError`."""
    if method not in METHODS:
        raise ConfigError(f"training method must be one of {list(METHODS)}, got {method!r}")
    return method


def build_model(
    method: str,
    *,
    train_frames: Sequence[Frame],
    source_model_name: str = "0.3.0",
    seed: int = 0,
    source_model: Any = None,
    graph_cache: GraphCache | None = None,
    batch_size: int = 16,
) -> tuple[Any, dict[str, Any]]:
    """The starting model of a method (on the CPU) and how it was built.

    Args:
        method: One of :data:`METHODS`.
        train_frames: Target-functional training frames (one functional) for the AtomRef fits.
        source_model_name: Pretrained CHGNet to start from (``CHGNet.load(model_name=...)``).
        seed: Seed of the random GNN initialisation (Method 1).
        source_model: An already loaded source model (deep-copied, never modified); overrides
            ``source_model_name`` except as the label in ``info``.
        graph_cache: Graphs for the source predictions of Method 4r (default: shared cache).
        batch_size: Batch size of those predictions.

    Returns:
        ``(model, info)``. ``info`` (JSON-serialisable) holds ``method``, ``display_name``,
        ``source_model``, ``gnn_init``, ``atomref_start``, ``atomref_trainable``, ``seed``,
        ``n_train_frames``, ``atomref_fitted_elements``, ``atomref_undetermined`` (element ->
        reason), ``atomref_absent_from_training``, ``atomref_fallback`` (what those two kinds
        of element got: the source value plus the median fitted shift), ``atomref_fit`` (rank,
        residual MAE ...) and ``atomref`` (element -> eV/atom).

    Raises:
        ConfigError: Unknown method.
        DataError: No training frames, several functionals, or a frame without energy.
    """
    check_method(method)
    frames = list(train_frames)
    if method in _FITS_ATOMREF and not frames:
        raise DataError(f"method {method} needs training frames to fit its AtomRef")
    source = _source_copy(source_model, source_model_name)
    source_ref = read_model_atomref(source)
    info = _start_info(method, source_model_name=source_model_name, seed=seed, n_frames=len(frames))
    if method == "1_scratch":
        model, fit = _start_scratch(source, frames, info, name=source_model_name, seed=seed)
    elif method in ("2_trainable_gga_atomref", "3_frozen_gga_atomref"):
        model, fit = _start_source_atomref(source, info, method=method, name=source_model_name)
    elif method == "4_refit_atomref":
        model, fit = _start_refit(source, frames, info)
    else:
        model, fit = _start_residual(
            source, frames, info, source_ref=source_ref, graph_cache=graph_cache,
            batch_size=batch_size,
        )
    for param in model.composition_model.parameters():
        param.requires_grad_(TRAINABLE_ATOMREF[method])
    model.composition_model.fitted = True
    if fit is not None:
        _record_fit(info, fit, frames=frames, source_ref=source_ref, method=method)
        _fill_unfitted(model, info, source_ref)
    info["atomref"] = read_model_atomref(model)
    return model, info


def _source_copy(source_model: Any, source_model_name: str) -> Any:
    """The source model on the CPU: loaded by name, or a deep copy of the one given."""
    from chgnet.model import CHGNet

    if source_model is None:
        return CHGNet.load(model_name=source_model_name, use_device="cpu", verbose=False)
    return copy.deepcopy(source_model).cpu()


def _start_info(method: str, *, source_model_name: str, seed: int, n_frames: int) -> dict[str, Any]:
    """The ``info`` keys every method has (in the order ``train_summary.json`` lists them)."""
    return {
        "method": method,
        "display_name": METHOD_NAMES[method],
        "source_model": source_model_name,
        "gnn_init": f"pretrained CHGNet {source_model_name}",
        "atomref_trainable": TRAINABLE_ATOMREF[method],
        "seed": seed,
        "n_train_frames": n_frames,
        "atomref_fitted_elements": [],
        "atomref_undetermined": {},
        "atomref_absent_from_training": [],
        "atomref_fit": None,
    }


def _start_scratch(
    source: Any, frames: list[Frame], info: dict[str, Any], *, name: str, seed: int
) -> tuple[Any, Any]:
    """Method 1: the source architecture, seeded random GNN, Eq. 2 AtomRef refit."""
    from chgnet.model import CHGNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CHGNet(**source.model_args)
    model.composition_model.load_state_dict(source.composition_model.state_dict())
    fit = fit_atomref_to_frames(frames)
    set_model_atomref(model, fit)
    info["gnn_init"] = f"random (torch seed {seed}), architecture of CHGNet {name}"
    info["atomref_start"] = f"Eq. 2 refit on {len(frames)} training frames, frozen"
    return model, fit


def _start_source_atomref(
    source: Any, info: dict[str, Any], *, method: str, name: str
) -> tuple[Any, None]:
    """Methods 2 and 3: the source model as it is (AtomRef trainable in Method 2 only)."""
    state = "trainable" if TRAINABLE_ATOMREF[method] else "frozen"
    info["atomref_start"] = f"source AtomRef of CHGNet {name}, {state}"
    return source, None


def _start_refit(source: Any, frames: list[Frame], info: dict[str, Any]) -> tuple[Any, Any]:
    """Method 4: source weights, AtomRef replaced by the Eq. 2 refit."""
    fit = fit_atomref_to_frames(frames)
    set_model_atomref(source, fit)
    info["atomref_start"] = f"Eq. 2 refit on {len(frames)} training frames, frozen"
    return source, fit


def _start_residual(
    source: Any,
    frames: list[Frame],
    info: dict[str, Any],
    *,
    source_ref: dict[str, float],
    graph_cache: GraphCache | None,
    batch_size: int,
) -> tuple[Any, Any]:
    """Method 4r: source AtomRef + a shift fitted to (label - source prediction)."""
    functionals = sorted({f.functional for f in frames})
    if len(functionals) > 1:
        raise DataError(f"training frames hold functionals {functionals}", field="functional")
    for frame in frames:
        if frame.energy is None:
            raise DataError("frame has no energy", record=frame.frame_id, field="energy")
    cache = shared_graph_cache(source.graph_converter) if graph_cache is None else graph_cache
    predicted = predict_energies(source, frames, batch_size=batch_size, graph_cache=cache)
    usable = [i for i in range(len(frames)) if np.isfinite(predicted[i])]
    fit = fit_residual_shift(
        [frames[i].species for i in usable],
        [frames[i].energy_per_atom for i in usable],
        predicted[usable],
        records=[frames[i].frame_id for i in usable],
    )
    set_model_atomref(source, add_shift(source_ref, fit))
    info["atomref_start"] = (
        f"source AtomRef + per-element shift fitted to (label - source prediction) on "
        f"{len(usable)} training frames, frozen"
    )
    info["atomref_shift"] = dict(sorted(fit.energies.items()))
    return source, fit


def _fill_unfitted(model: Any, info: dict[str, Any], source_ref: dict[str, float]) -> None:
    """Give every element the fit did not determine the source value plus the median shift of
    the fitted elements (fitted minus source), and record the rule, the shift and the elements."""
    fitted = set(info["atomref_fitted_elements"])
    current = read_model_atomref(model)
    shifts = [current[el] - source_ref[el] for el in sorted(fitted) if el in source_ref]
    unfitted = sorted(set(source_ref) - fitted)
    if not shifts or not unfitted:
        return
    shift = float(np.median(shifts))
    set_model_atomref(model, {el: source_ref[el] + shift for el in unfitted})
    info["atomref_fallback"] = {
        "rule": "source AtomRef + median shift of the fitted elements",
        "shift_ev_per_atom": shift,
        "elements": unfitted,
    }


def _record_fit(
    info: dict[str, Any], fit: Any, *, frames: list[Frame], source_ref: dict[str, float],
    method: str,
) -> None:
    """What the AtomRef fit determined, and which elements keep the source value."""
    info["atomref_fitted_elements"] = sorted(fit.energies)
    info["atomref_undetermined"] = {el: fit.reasons.get(el, "") for el in fit.missing}
    info["atomref_fit"] = {
        "rank": fit.rank,
        "n_samples": fit.n_samples,
        "n_elements": fit.n_elements,
        "residual_mae_ev_per_atom": fit.residual_mae,
        "residual_rmse_ev_per_atom": fit.residual_rmse,
    }
    present = {el for f in frames for el in f.species}
    info["atomref_absent_from_training"] = sorted(set(source_ref) - present)
    if info["atomref_undetermined"]:
        logger.warning(
            "%s: AtomRef of %s not determined by the training frames; they get the source value "
            "plus the median fitted shift",
            method,
            ", ".join(info["atomref_undetermined"]),
        )
