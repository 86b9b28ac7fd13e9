"""Checkpoint helpers shared by both trainers: newest, prune, resume only with equal settings."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mlip_transfer.core import checkpoints as C
from mlip_transfer.core.errors import ConfigError


def test_latest_and_prune_use_the_epoch_number_not_the_name_order(tmp_path):
    for epoch in (1, 2, 10):
        C.save_checkpoint({"epoch": epoch}, C.epoch_checkpoint(tmp_path, epoch))
    (tmp_path / "checkpoint_epochX.pt").write_text("not a checkpoint")
    assert C.latest_checkpoint(tmp_path, last_epoch=20).name == "checkpoint_epoch10.pt"
    assert C.latest_checkpoint(tmp_path, last_epoch=5).name == "checkpoint_epoch2.pt"
    assert C.latest_checkpoint(tmp_path / "none", last_epoch=5) is None
    C.prune_checkpoints(tmp_path, 0)  # keeps at least one
    assert sorted(p.name for p in tmp_path.glob("checkpoint_epoch*.pt")) == [
        "checkpoint_epoch10.pt",
        "checkpoint_epochX.pt",
    ]


def test_resume_state_refuses_other_settings(tmp_path):
    path = tmp_path / "checkpoint.pt"
    assert C.resume_state(path, expected={}, section=None, refuse=str) is None
    C.save_checkpoint({"settings": {"lr": 1.0, "seed": 0}, "step": 3}, path)
    state = C.resume_state(path, expected={"lr": 1.0}, section="settings", refuse=str)
    assert state["step"] == 3
    with pytest.raises(ConfigError, match=r"\{'lr': \(1.0, 2.0\)\}"):
        C.resume_state(path, expected={"lr": 2.0}, section="settings", refuse=str)


def test_rng_state_round_trip():
    state = C.rng_state()
    first = (torch.rand(1), np.random.rand(), random.random())
    C.restore_rng_state(state)
    assert (torch.rand(1), np.random.rand(), random.random()) == first
