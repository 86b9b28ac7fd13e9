"""CHGNet training after a damaged checkpoint: set aside, resumed from the one before; and the
message when a checkpoint was written with other settings."""

from __future__ import annotations

import copy
import logging
import shutil

import pandas as pd
import pytest
import torch

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer import trainer as T
from mlip_transfer.transfer.methods import build_model
from mlip_transfer.transfer.outputs import HISTORY_COLUMNS
from mlip_transfer.transfer.settings import TrainSettings

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
METHOD = "3_frozen_gga_atomref"


@pytest.fixture(scope="module")
def start(source, train_frames, cache):
    """One method's starting model (the shared fixture builds all five)."""
    return build_model(METHOD, train_frames=train_frames, source_model=source, graph_cache=cache)[0]


def _train(start, train_frames, val_frames, out_dir, cache, **settings):
    return T.train(
        model=copy.deepcopy(start), train_frames=train_frames, val_frames=val_frames,
        method=METHOD, out_dir=out_dir,
        settings=TrainSettings(**{"epochs": 2, "batch_size": 4, "device": "cpu", **settings}),
        gradients=None, progress=False, graph_cache=cache,
    )


@pytest.fixture(scope="module")
def finished(start, train_frames, val_frames, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return out, _train(start, train_frames, val_frames, out, cache)


def test_truncated_checkpoint_is_set_aside_and_training_resumes_from_the_previous_one(
    finished, start, train_frames, val_frames, cache, tmp_path, caplog
):
    full, done = finished
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    newest = cut / "checkpoint_epoch2.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # torch.load failed here on every rerun before
    with caplog.at_level(logging.WARNING, logger="mlip_transfer"):
        resumed = _train(start, train_frames, val_frames, cut, cache)
    assert resumed.summary["resumed_from_epoch"] == 1  # epoch 2 was trained again
    assert (cut / "checkpoint_epoch2.pt.corrupt").read_bytes() == data[: len(data) // 2]
    assert "checkpoint_epoch2.pt" in caplog.text and "unreadable" in caplog.text
    assert "resuming from the older checkpoint" in caplog.text
    assert "checkpoint_epoch1.pt" in caplog.text
    # The rerun finishes the way the uninterrupted run did (RNG states restored from epoch 1).
    for (name, a), b in zip(done.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    columns = [c for c in HISTORY_COLUMNS if c != "wall_s"]
    pd.testing.assert_frame_equal(done.history[columns], resumed.history[columns], rtol=1e-5)
    assert torch.load(newest, weights_only=False)["epoch"] == 2  # a readable epoch 2 again


def test_other_settings_name_the_setting_both_values_and_how_to_start_over(
    finished, start, train_frames, val_frames, cache
):
    full, _ = finished
    with pytest.raises(ConfigError) as info:
        _train(start, train_frames, val_frames, full, cache, learning_rate=5e-4)
    message = str(info.value)
    assert f"{full / 'checkpoint_epoch2.pt'} was written with other settings" in message
    assert "  learning_rate: checkpoint 0.001, now 0.0005" in message
    assert message.count("\n  ") == 1  # only the setting that changed
    assert f"rm -r '{full}'" in message and "another out_dir" in message
    # Other training frames are a changed setting too, named as such.
    with pytest.raises(ConfigError, match=r"\n  train_frames: checkpoint '\w+', now '\w+'"):
        _train(start, train_frames[:7], val_frames, full, cache)
