"""TrainSettings: built from the config's training section, checked once, frozen."""

from __future__ import annotations

import dataclasses

import pytest

from mlip_transfer.core.config import load_config
from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer.settings import TrainSettings


def test_settings_from_the_shipped_config_and_overrides(request):
    training = load_config(request.config.rootpath / "config" / "config.yaml")["training"]
    settings = TrainSettings.from_config(training)
    assert settings.epochs == training["epochs"] and settings.batch_size == training["batch_size"]
    assert settings.loss_ratios == tuple(training["loss_ratios"])
    assert settings.validate_every == 1 and settings.keep_checkpoints is None
    scaling = TrainSettings.from_config(training, epochs=7, validate_every=None, keep_checkpoints=1)
    assert (scaling.epochs, scaling.validate_every, scaling.keep_checkpoints) == (7, None, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 2  # type: ignore[misc]
    with pytest.raises(ConfigError, match="epochs"):
        settings.replace(epochs=0)


def test_fingerprint_is_what_checkpoints_and_the_summary_hold():
    fingerprint = TrainSettings(epochs=2, loss_ratios=[3, 1, 0.1, 1]).fingerprint(
        method="1_scratch", train_frames="a", val_frames="b"
    )
    assert list(fingerprint) == [
        "method", "epochs", "batch_size", "learning_rate", "final_learning_rate", "loss_ratios",
        "criterion", "seed", "train_frames", "val_frames",
    ]
    assert fingerprint["loss_ratios"] == [3.0, 1.0, 0.1, 1.0]
