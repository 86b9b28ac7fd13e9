"""benchmarks/gpu_check.py runs on CPU with tiny settings, so the GPU script cannot rot (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_with_tiny_settings(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu",
         "--steps", "2", "--batch-size", "4", "--n-val", "4", "--agree-batch", "4",
         "--relaxations", "1", "--relax-steps", "3", "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(printed[-1][len("RESULT "):])
    assert result == json.loads(out.read_text())
    assert result["device"] == "cpu" and result["batch_size"] == 4 and result["n_train"] == 8
    for path in ("ours", "stock"):
        assert result[path]["structures_per_s"] > 0 and result[path]["peak_memory_mb"] > 0
    # CPU against CPU: the same computation, so exactly equal.
    assert result["agreement"]["ok"] and result["agreement"]["worst_grad_rel_diff"] == 0
    assert result["evaluation"]["ours_structures_per_s"] > 0
    assert result["relaxation"]["n_relaxations"] == 1
    assert "training ratio ours / stock" in done.stdout
