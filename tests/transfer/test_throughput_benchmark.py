"""The training-throughput benchmark runs end to end with tiny settings, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "training_throughput.py"


def test_the_throughput_benchmark_trains_the_project_path_and_reports(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--variants", "ours", "--n-frames", "8", "--n-val", "2",
         "--epochs", "1", "--batch-sizes", "4", "--threads", "1", "--run-dir", str(tmp_path),
         "--json", str(out)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ours = json.loads(out.read_text())["batch_sizes"]["4"]["results"]["ours"]
    assert ours["n_train"] == 8 and ours["structures_per_s"] > 0 and ours["peak_rss_mb"] > 0
    assert ours["graphs_converted"] == 10  # train + validation, converted once
