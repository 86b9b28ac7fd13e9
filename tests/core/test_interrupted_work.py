"""Interrupted work: unreadable checkpoints are set aside, writes are atomic, JSON is standard.

The fetch test kills a real process with SIGKILL halfway through writing the cache file and
shows that nothing is left at the final path and that a rerun completes.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import signal
import subprocess
import sys
from pathlib import Path

import mp_format
import numpy as np
import pytest

from mlip_transfer.core import checkpoints as C
from mlip_transfer.core.errors import ConfigError
from mlip_transfer.core.files import (
    atomic_path,
    dumps_json,
    open_atomic,
    write_csv_atomic,
    write_json_atomic,
)

TESTS = Path(__file__).parents[1]
FIXTURES = TESTS / "fixtures"
SETTINGS = {"learning_rate": 1e-3, "epochs": 3, "train_frames": "8 frames"}


def _strict(text: str):
    """``json.loads`` that rejects NaN and Infinity, as jq and JavaScript do."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _truncate(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return data[: len(data) // 2]


# ------------------------------------------------------------------ checkpoints


def _save_epochs(folder: Path, epochs, settings=SETTINGS) -> None:
    for epoch in epochs:
        C.save_checkpoint({"epoch": epoch, "settings": dict(settings)}, C.epoch_checkpoint(folder, epoch))


def test_unreadable_checkpoints_are_set_aside_and_the_previous_one_resumes(tmp_path, caplog):
    _save_epochs(tmp_path, (1, 2, 3))
    cut = _truncate(C.epoch_checkpoint(tmp_path, 3))  # truncated: a torch.load error before
    C.epoch_checkpoint(tmp_path, 2).write_bytes(b"not a checkpoint")  # garbage
    with caplog.at_level(logging.WARNING, logger="mlip_transfer"):
        path, state = C.resume_checkpoint(
            C.epoch_checkpoints(tmp_path, last_epoch=3), expected=SETTINGS, out_dir=tmp_path
        )
    assert path.name == "checkpoint_epoch1.pt" and state["epoch"] == 1
    # Both bad files are renamed aside, kept for inspection, and named in the warnings.
    assert (tmp_path / "checkpoint_epoch3.pt.corrupt").read_bytes() == cut
    assert (tmp_path / "checkpoint_epoch2.pt.corrupt").read_bytes() == b"not a checkpoint"
    assert C.epoch_checkpoints(tmp_path, last_epoch=3) == [C.epoch_checkpoint(tmp_path, 1)]
    for name in ("checkpoint_epoch3.pt", "checkpoint_epoch2.pt", "resuming from the older"):
        assert name in caplog.text
    assert "checkpoint_epoch3.pt.corrupt" in caplog.text


def test_no_readable_checkpoint_starts_afresh_with_a_warning(tmp_path, caplog):
    _save_epochs(tmp_path, (1,))
    cut = _truncate(C.epoch_checkpoint(tmp_path, 1))
    (tmp_path / "checkpoint_epoch1.pt.corrupt").write_bytes(b"earlier")  # set aside before
    with caplog.at_level(logging.WARNING, logger="mlip_transfer"):
        found = C.resume_checkpoint(
            C.epoch_checkpoints(tmp_path, last_epoch=3), expected=SETTINGS, out_dir=tmp_path
        )
    assert found is None
    assert "training starts from the beginning" in caplog.text
    # An earlier .corrupt file is not overwritten.
    assert (tmp_path / "checkpoint_epoch1.pt.corrupt").read_bytes() == b"earlier"
    assert (tmp_path / "checkpoint_epoch1.pt.corrupt1").read_bytes() == cut


def test_changed_settings_are_named_with_both_values_and_how_to_restart(tmp_path):
    _save_epochs(tmp_path, (1,))
    now = {**SETTINGS, "learning_rate": 5e-4, "train_frames": "9 frames"}
    with pytest.raises(ConfigError) as info:
        C.resume_checkpoint(C.epoch_checkpoints(tmp_path, last_epoch=3), expected=now, out_dir=tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'checkpoint_epoch1.pt'} was written with other settings" in message
    assert "  learning_rate: checkpoint 0.001, now 0.0005" in message
    assert "  train_frames: checkpoint '8 frames', now '9 frames'" in message
    assert message.count("\n  ") == 2  # the unchanged epochs are not listed
    assert f"rm -r '{tmp_path}'" in message and "another out_dir" in message
    # A checkpoint of an earlier version holding only the settings' hash is accepted by it.
    C.save_checkpoint({"signature": "abc", "step": 2}, tmp_path / "old.pt")
    found = C.resume_checkpoint([tmp_path / "old.pt"], expected=now, out_dir=tmp_path, signature="abc")
    assert found[1]["step"] == 2
    with pytest.raises(ConfigError, match="learning_rate: checkpoint None"):
        C.resume_checkpoint([tmp_path / "old.pt"], expected=now, out_dir=tmp_path, signature="new")


def test_a_single_checkpoint_file_keeps_the_one_before_as_fallback(tmp_path, caplog):
    path, previous = tmp_path / "checkpoint.pt", tmp_path / "checkpoint.previous.pt"
    C.save_keeping_previous({"step": 2}, path, previous)
    assert not previous.exists()
    C.save_keeping_previous({"step": 4}, path, previous)
    assert C.load_checkpoint(previous)["step"] == 2 and C.load_checkpoint(path)["step"] == 4
    _truncate(path)
    with caplog.at_level(logging.WARNING, logger="mlip_transfer"):
        found = C.newest_readable([path, previous])
    assert found[0] == previous and found[1]["step"] == 2
    assert "checkpoint.pt" in caplog.text and (tmp_path / "checkpoint.pt.corrupt").exists()


# ------------------------------------------------------------------ atomic writes


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    path = tmp_path / "table.csv.gz"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.endswith(".table.csv.gz")  # same suffix
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    import pandas as pd

    write_csv_atomic(path, pd.DataFrame({"a": [1, 2]}), index=False)  # compression by suffix
    assert gzip.decompress(path.read_bytes()) == b"a\n1\n2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv.gz"]


def test_open_atomic_moves_a_closed_complete_file_or_leaves_nothing(tmp_path):
    path = tmp_path / "dropped.csv"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), open_atomic(path, "w", encoding="utf-8") as handle:
        handle.write("new, half")
        raise KeyboardInterrupt
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["dropped.csv"]
    with open_atomic(path, "w", encoding="utf-8") as handle:
        handle.write("new\n")
        assert path.read_text() == "old\n"  # replaced only when the block ends
    assert handle.closed and path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dropped.csv"]


def _thermo_session():
    """Answers the thermo fetch of the small MP-r2SCAN file from the recorded thermo docs."""
    from mlip_transfer.data.loaders.mp_api import load_thermo_docs

    docs = load_thermo_docs(FIXTURES / "mp_thermo_docs.json")

    class Session:
        def get(self, url, *, params, headers, timeout):
            if "material_ids" in params:
                ids = set(params["material_ids"].split(","))
                page = [d for d in docs if d["material_id"] in ids]
            else:
                page = [d for d in docs if len(d["composition"]) == 1]
            return mp_format.Response(200, {"data": page, "meta": {"total_doc": len(page)}})

    return Session()


def fetch(kind: str, out: Path) -> None:
    """One of the two fetches, writing its cache to ``out`` (also run in a killed child)."""
    if kind == "thermo":
        from mlip_transfer.data.loaders.mp_api import fetch_thermo_for_trajectory_file

        fetch_thermo_for_trajectory_file(
            FIXTURES / "mp_r2scan_small.json", out, api_key="k", session=_thermo_session()
        )
    else:
        from mlip_transfer.density.benchmark import fetch_mp_structures, save_mp_structures

        session = mp_format.ReplaySession(FIXTURES / "mp_api_summary_responses.json")
        wanted = {"Cu": "fcc", "NaCl": "b1", "Si": "diamond"}
        docs = fetch_mp_structures(wanted, api_key="k", session=session)
        save_mp_structures(out, docs, requested=list(wanted))


# The child writes half of the cache file's bytes, flushes them to disk and kills itself.
KILLED_CHILD = """
import gzip, os, signal, sys
sys.path.insert(0, {tests!r})
sys.path.insert(0, {here!r})
real_write = gzip.GzipFile.write
def killed_mid_write(self, data):
    real_write(self, data[: len(data) // 2])
    self.flush()
    os.kill(os.getpid(), signal.SIGKILL)
gzip.GzipFile.write = killed_mid_write
import test_interrupted_work
test_interrupted_work.fetch(sys.argv[1], __import__("pathlib").Path(sys.argv[2]))
"""


def _read(kind: str, path: Path):
    if kind == "thermo":
        from mlip_transfer.data.loaders.mp_api import load_thermo_docs

        return load_thermo_docs(path)
    from mlip_transfer.density.benchmark import mp_reference_table

    return mp_reference_table(path)["material_id"].tolist()


@pytest.mark.parametrize("kind", ["thermo", "density"])
def test_a_fetch_killed_mid_write_leaves_no_file_and_the_rerun_completes(kind, tmp_path):
    out = tmp_path / "cache" / f"{kind}.json.gz"
    code = KILLED_CHILD.format(tests=str(TESTS), here=str(Path(__file__).parent))
    child = subprocess.run(
        [sys.executable, "-c", code, kind, str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert not out.exists()  # no half file that the next run would take as its cache
    (partial,) = out.parent.iterdir()  # the temporary, hidden, really half written
    assert partial.name.startswith(".tmp") and partial.name.endswith(out.name)
    with pytest.raises(EOFError), gzip.open(partial) as handle:
        handle.read()
    fetch(kind, out)  # the rerun
    clean = tmp_path / "clean" / out.name
    fetch(kind, clean)
    assert _read(kind, out) == _read(kind, clean) and _read(kind, out)
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(clean.read_bytes())
    _strict(gzip.decompress(out.read_bytes()).decode())


# ------------------------------------------------------------------ standard JSON


def test_json_writes_null_for_non_finite_floats_and_keeps_the_format(tmp_path):
    content = {
        "b": math.nan,
        "a": [math.inf, np.float32("nan"), (1.5, -math.inf)],
        "c": {"d": np.float64("nan"), "e": np.float32(2.5), "f": Path("x")},
    }
    text = dumps_json(content, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    assert _strict(text) == {"b": None, "a": [None, None, [1.5, None]], "c": {"d": None, "e": 2.5, "f": "x"}}
    assert list(_strict(text)) == ["b", "a", "c"]  # key order kept
    # Files without a non-finite value are byte for byte what json.dumps wrote.
    finite = {"z": 1.0, "y": [1, 2.5e-9, "NaN", (1, 2)], "x": {"w": None, "v": True}}
    for kwargs in ({"indent": 2}, {"indent": 2, "sort_keys": True}, {"indent": None}, {"indent": 1}):
        assert dumps_json(finite, **kwargs) == json.dumps(finite, **kwargs)
    odd = {"p": Path("q"), "n": np.int64(3), "f": np.float32(0.5)}
    assert dumps_json(odd, indent=2, default=str) == json.dumps(odd, indent=2, default=str)
    write_json_atomic(tmp_path / "a.json", {"x": math.nan}, newline=False)
    assert (tmp_path / "a.json").read_text() == '{\n  "x": null\n}'


def test_scaling_fits_with_nan_values_are_standard_json(tmp_path):
    from mlip_transfer.core.provenance import SURROGATE_DEFAULT
    from mlip_transfer.scaling.jobs import scaling_fit
    from mlip_transfer.scaling.laws import PowerLawFit

    rows = [  # exact power laws, one seed each
        {"method": method, "size": size, "seed": 0, "epochs": 1, "steps": 1,
         "energy_mae_mev_per_atom": scale * size**slope, "force_mae_mev_per_a": scale * size**slope}
        for method, slope, scale in (("1_scratch", -0.6, 2000.0), ("4_refit_atomref", -0.3, 200.0))
        for size in (100, 1000, 10000)
    ]
    paths = []
    for index, row in enumerate(rows):
        paths.append(tmp_path / f"result{index}.json")
        paths[-1].write_text(json.dumps(row))
    summary = scaling_fit(
        results=paths, provenance=SURROGATE_DEFAULT.write(tmp_path / "data"),
        table=tmp_path / "table.csv", fits=tmp_path / "fits.json",
        scaling={"methods": ["1_scratch", "4_refit_atomref"], "fit_threshold": 100},
    )
    fit = summary["targets"]["energy"]["fits"]["1_scratch"]
    assert math.isnan(fit["slope_ci_low"])  # one seed: no interval, the case that wrote NaN
    text = (tmp_path / "fits.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    written = _strict(text)["targets"]["energy"]["fits"]["1_scratch"]
    assert written["slope_ci_low"] is None and written["slope_ci_high"] is None
    assert written["slope"] == pytest.approx(fit["slope"])
    # The figure code reads the fit back: null becomes NaN again.
    line = PowerLawFit(**written)
    assert math.isnan(line.slope_ci_low) and line.slope == pytest.approx(-0.6, abs=0.05)
