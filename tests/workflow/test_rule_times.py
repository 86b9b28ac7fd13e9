"""benchmarks/rule_times.py: per-rule wall times read from a Snakemake log."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rule_times.py"
spec = importlib.util.spec_from_file_location("rule_times", SCRIPT)
rule_times = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rule_times)

LOG = """\
[Tue Dec  1 22:52:38 2026]
localrule sw_frames:
    output: results/elements/data/parts/Ge_pool.jsonl.gz
    jobid: 62
    wildcards: element=Ge, set=pool
[Tue Dec  1 22:52:38 2026]
rule train_method:
    jobid: 7
[Tue Dec  1 22:53:18 2026]
Finished jobid: 62 (Rule: sw_frames)
1 of 3 steps (33%) done
[Tue Dec  1 22:53:20 2026]
localrule sw_frames:
    jobid: 63
[Tue Dec  1 22:55:38 2026]
Finished jobid: 7 (Rule: train_method)
[Tue Dec  1 22:56:00 2026]
localrule md_stability:
    jobid: 80
"""


def test_jobs_are_paired_by_id_and_unfinished_ones_left_out():
    jobs = rule_times.job_times(LOG.splitlines())
    assert [(j["rule"], j["jobid"], j["seconds"]) for j in jobs] == [("sw_frames", 62, 40.0), ("train_method", 7, 180.0)]


def test_summary_and_command_line(tmp_path, capsys):
    summary = rule_times.summarise(rule_times.job_times(LOG.splitlines()))
    assert summary["span_s"] == 180.0 and summary["job_seconds"] == 220.0
    assert list(summary["rules"]) == ["train_method", "sw_frames"]  # longest first
    log = tmp_path / "x.snakemake.log"
    log.write_text(LOG)
    assert rule_times.main([str(log), "--json", str(tmp_path / "t.json")]) == 0
    assert "train_method" in capsys.readouterr().out and (tmp_path / "t.json").exists()
    with pytest.raises(SystemExit):
        rule_times.main(["--bogus"])
