"""Si -> Ge (DimeNet++) training after a damaged checkpoint, and with changed settings."""

from __future__ import annotations

import logging

import pytest
import torch

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.elements.dimenet import DimeNetSettings
from mlip_transfer.elements.sampling import SamplingSettings, sample_frames
from mlip_transfer.elements.training import TrainSettings, start_model, train_force_matching

SMALL = DimeNetSettings(num_blocks=1)
SETTINGS = TrainSettings(
    max_steps=4, batch_size=2, learning_rate=1e-3, final_learning_rate=1e-4, checkpoint_every=2
)
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pool():
    sampling = SamplingSettings(cell_repeats=1, equilibration_ps=0.02, interval_fs=10, trajectories=2)
    return sample_frames(
        element="Ge", temperature=1200, n_frames=4, set_name="pool", settings=sampling,
        progress=False,
    )


def _fresh():
    return start_model("scratch", settings=SMALL, seed=4)[0]


def _train(frames, out_dir, settings=SETTINGS):
    model = _fresh()
    summary = train_force_matching(
        model=model, frames=frames, settings=settings, out_dir=out_dir, progress=False
    )
    return model, summary


def test_truncated_checkpoint_is_set_aside_and_the_previous_one_resumes(pool, tmp_path, caplog):
    reference, _ = _train(pool, tmp_path / "a")
    out = tmp_path / "b"
    _train(pool, out)
    checkpoint, previous = out / "checkpoint.pt", out / "checkpoint.previous.pt"
    assert torch.load(previous, weights_only=False)["step"] == 2  # the fallback: the one before
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="mlip_transfer"):
        resumed, summary = _train(pool, out)
    assert summary["resumed_from_step"] == 2  # steps 3 and 4 trained again
    assert (out / "checkpoint.pt.corrupt").read_bytes() == data[: len(data) // 2]
    assert "checkpoint.pt" in caplog.text and "unreadable" in caplog.text
    assert "checkpoint.previous.pt" in caplog.text
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    assert torch.load(checkpoint, weights_only=False)["step"] == 4


def test_other_settings_name_the_setting_both_values_and_how_to_start_over(pool, tmp_path):
    out = tmp_path / "run"
    _train(pool, out, TrainSettings(max_steps=2, batch_size=2, checkpoint_every=0))
    with pytest.raises(ConfigError) as info:
        _train(pool, out, TrainSettings(max_steps=2, batch_size=2, checkpoint_every=0, learning_rate=2e-3))
    message = str(info.value)
    assert f"{out / 'checkpoint.pt'} was written with other settings" in message
    assert "  learning_rate: checkpoint 0.001, now 0.002" in message
    assert message.count("\n  ") == 1
    assert f"rm -r '{out}'" in message
    with pytest.raises(ConfigError, match=r"frames: checkpoint '4 frames, ids sha256 \w+', now '3 "):
        _train(pool[:3], out, TrainSettings(max_steps=2, batch_size=2, checkpoint_every=0))
