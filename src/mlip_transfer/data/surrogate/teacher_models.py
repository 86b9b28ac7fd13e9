"""The pretrained potentials that label a surrogate build ("teachers"), by name.

A teacher stands in for one functional's DFT: the build relaxes every perturbed start with each
teacher of its settings and keeps frames of each relaxation. GGA/GGA+U labels come from CHGNet
v0.3.0. There are two r2SCAN teachers, which differ in how independent they are of the model
being fine-tuned (CHGNet v0.3.0, the source of Methods 2-4):

* ``chgnet-r2scan`` is the paper's own Method-4 model, a fine-tune of v0.3.0. On its labels the
  transfer methods start from the teacher's own starting point: a circular case.
* ``diep`` (DIEP 2.0.0, BSD-3-Clause) was trained from scratch on MatPES r2SCAN and shares no
  weights with CHGNet. It predicts no magnetic moments, so its frames carry none.

Every teacher returns stress in ASE units (eV/Å³, positive = tensile); the build converts it to
GPa in one place (:func:`mlip_transfer.data.surrogate.relax.relax`).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlip_transfer.core.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Teacher:
    """One labelling potential.

    Attributes:
        name: Id used in settings, frame ids and outputs (``diep``).
        functional: The functional it stands in for (``gga`` or ``r2scan``).
        model: How it is loaded, as a reader would write it.
        trained_on: Its training data, in a few words.
        shares_weights_with_source: Whether it is a fine-tune of CHGNet v0.3.0, the source model
            of Methods 2-4 (then rankings of transfer methods on its labels are circular).
        has_magmoms: Whether it predicts magnetic moments (frames get ``magmoms: null`` if not).
        package: The pip package that ships its weights.
    """

    name: str
    functional: str
    model: str
    trained_on: str
    shares_weights_with_source: bool
    has_magmoms: bool
    package: str

    def calculator(self) -> Any:
        """A fresh ASE calculator on the CPU (loads the weights; seconds)."""
        return _LOADERS[self.name]()


def _chgnet(model_name: str) -> Callable[[], Any]:
    def load() -> Any:
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        with contextlib.redirect_stdout(io.StringIO()):  # chgnet prints its device
            model = CHGNet.load(model_name=model_name, verbose=False, use_device="cpu")
            return CHGNetCalculator(model=model, use_device="cpu", on_isolated_atoms="error")

    return load


def _diep() -> Any:
    from diep.pretrained import make_calculator

    # The released weights ship in the wheel (diep/pretrained_models/diep_fold1): no download.
    return make_calculator()


TEACHERS: dict[str, Teacher] = {
    teacher.name: teacher
    for teacher in (
        Teacher(
            name="chgnet-0.3.0", functional="gga", model='CHGNet.load(model_name="0.3.0")',
            trained_on="MPtrj (MP GGA/GGA+U relaxations, MP2020-corrected energies)",
            shares_weights_with_source=True, has_magmoms=True, package="chgnet",
        ),
        Teacher(
            name="chgnet-r2scan", functional="r2scan", model='CHGNet.load(model_name="r2scan")',
            trained_on="MP-r2SCAN; a fine-tune of v0.3.0 (the paper's Method-4 model)",
            shares_weights_with_source=True, has_magmoms=True, package="chgnet",
        ),
        Teacher(
            name="diep", functional="r2scan", model="diep.pretrained.make_calculator()",
            trained_on="MatPES r2SCAN (349,107 structures), trained from scratch",
            shares_weights_with_source=False, has_magmoms=False, package="diep",
        ),
    )
}
_LOADERS: dict[str, Callable[[], Any]] = {
    "chgnet-0.3.0": _chgnet("0.3.0"),
    "chgnet-r2scan": _chgnet("r2scan"),
    "diep": _diep,
}


def limit_threads() -> None:
    """One torch and one BLAS thread: fastest for the single small structures teachers label
    (FrechetCellFilter's 3x3 scipy operations run ~10x slower on a multi-threaded BLAS)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    # Harmless noise: chgnet's volume tensor, and scipy's logm (err ~1e-12) in FrechetCellFilter.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    warnings.filterwarnings("ignore", message="logm result may be inaccurate")


def teacher(name: str) -> Teacher:
    """The teacher called ``name``.

    Raises:
        ConfigError: No teacher has that name.
    """
    try:
        return TEACHERS[name]
    except KeyError:
        raise ConfigError(f"unknown teacher {name!r}; known: {', '.join(TEACHERS)}") from None


def check_teachers(names: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``names`` holds one GGA teacher and at least one r2SCAN teacher,
    each once: the GGA labels feed the energy-scale analyses, the r2SCAN ones the training."""
    functionals = [teacher(name).functional for name in names]
    if len(set(names)) != len(names):
        raise ConfigError(f"teachers are listed twice: {list(names)}")
    if functionals.count("gga") != 1 or "r2scan" not in functionals:
        raise ConfigError(
            f"teachers must hold one GGA teacher and at least one r2SCAN teacher, got {list(names)}"
        )
