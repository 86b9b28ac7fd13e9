"""Loading CHGNet models: a shipped name (``"0.3.0"``, ``"r2scan"``) or a saved file.

The one loader of the transfer stage, the evaluation and the ``mlip-transfer`` command.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from mlip_transfer.core.errors import ConfigError

SHIPPED_MODELS = ("0.3.0", "0.2.0", "r2scan")


def load_chgnet(
    name_or_path: str | os.PathLike, *, device: str = "cpu", project: bool = True
) -> Any:
    """A CHGNet model from a saved file (``CHGNet.from_file``) or a shipped name.

    An existing path wins over a name; anything else is passed to ``CHGNet.load(model_name=)``
    (names shipped with chgnet 0.4: ``"0.3.0"``, ``"0.2.0"``, ``"r2scan"``).

    Args:
        name_or_path: A model file (``model_final.pt``, a checkpoint) or a shipped name.
        device: Where the model's weights go.
        project: Switch its convolution layers to
            :func:`~mlip_transfer.transfer.layers.project_before_gather`'s (the same function
            to float32 rounding, faster; the state dict and saved files are unchanged).

    Raises:
        ConfigError: Neither an existing file nor a known model name.
    """
    from chgnet.model import CHGNet

    text = str(name_or_path)
    with contextlib.redirect_stdout(io.StringIO()):  # chgnet prints its size and device
        if Path(text).is_file():
            model = CHGNet.from_file(text).to(device)
        else:
            try:
                model = CHGNet.load(model_name=text, verbose=False, use_device=device)
            except (ValueError, FileNotFoundError, KeyError) as exc:
                raise ConfigError(
                    f"model {text!r} is neither a file nor a chgnet model name ({exc})"
                ) from exc
    if project:
        from mlip_transfer.transfer.layers import project_before_gather

        project_before_gather(model)
    return model


def check_model(name_or_path: str | os.PathLike) -> str:
    """Return the model as a string if it is an existing file or a shipped name, else raise.

    Raises:
        ConfigError: Neither an existing file nor one of :data:`SHIPPED_MODELS`.
    """
    text = str(name_or_path)
    if not Path(text).is_file() and text not in SHIPPED_MODELS:
        raise ConfigError(
            f"model {text!r} is neither a file nor a chgnet model name {list(SHIPPED_MODELS)}"
        )
    return text
