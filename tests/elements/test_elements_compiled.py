"""Training forces through torch.compile (TrainSettings.compile) against the eager path."""

from __future__ import annotations

import logging

import pytest
import torch
from ge_cells import model_with_forces

from mlip_transfer.elements import compiled, training
from mlip_transfer.elements.dimenet import DimeNetPP, DimeNetSettings
from mlip_transfer.elements.sampling import SamplingSettings, sample_frames

TINY = DimeNetSettings(num_blocks=1, hidden_channels=8, out_emb_channels=8, int_emb_size=4,
                       basis_emb_size=2, num_spherical=3, num_radial=3, cutoff=4.0)


@pytest.fixture(scope="module")
def frames():
    settings = SamplingSettings(cell_repeats=1, equilibration_ps=0.02, interval_fs=20, trajectories=1)
    return sample_frames(element="Ge", temperature=1200, n_frames=3, set_name="pool", settings=settings,
                         seed=0, progress=False)


def _train(frames, tmp_path, name, *, compile_):
    model = model_with_forces(TINY, seed=0)
    settings = training.TrainSettings(max_steps=3, batch_size=2, learning_rate=1e-3, compile=compile_,
                                      checkpoint_every=0)
    summary = training.train_force_matching(model=model, frames=frames, settings=settings,
                                            out_dir=tmp_path / name, progress=False)
    history = (tmp_path / name / "history.csv").read_text().splitlines()[1:]
    return model, summary, [float(line.split(",")[1]) for line in history]


def test_compiled_training_gives_the_eager_losses_and_weights(frames, tmp_path):
    eager, eager_summary, eager_losses = _train(frames, tmp_path, "eager", compile_=False)
    fast, fast_summary, fast_losses = _train(frames, tmp_path, "compiled", compile_=True)
    assert eager_summary["forces"] == "edge path, eager"
    assert fast_summary["forces"] == "edge path, compiled"
    assert fast_losses == pytest.approx(eager_losses, rel=1e-5)
    for (name, a), b in zip(eager.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


def test_a_failing_compiler_falls_back_to_eager_with_a_warning(frames, tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: broken)
    eager, _, eager_losses = _train(frames, tmp_path, "eager", compile_=False)
    with caplog.at_level(logging.WARNING, logger="mlip_transfer.elements.compiled"):
        model, summary, losses = _train(frames, tmp_path, "fallback", compile_=True)
    assert "torch.compile failed (RuntimeError: no C++ compiler found)" in caplog.text
    assert summary["forces"] == "edge path, eager (compile failed: RuntimeError: no C++ compiler found)"
    assert losses == pytest.approx(eager_losses, rel=1e-6)


def test_compile_is_not_part_of_the_run_signature(frames):
    model = DimeNetPP(settings=TINY)
    from mlip_transfer.elements.run_state import run_signature

    off = run_signature(training.TrainSettings(max_steps=3), frames, model)
    on = run_signature(training.TrainSettings(max_steps=3, compile=True), frames, model)
    assert off == on


def test_the_reference_path_cannot_be_compiled():
    with pytest.raises(ValueError, match="edge path"):
        compiled.CompiledForces(DimeNetPP(settings=TINY, reference=True))
