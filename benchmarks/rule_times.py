"""Per-rule wall times of a finished Snakemake run, read from its log.

Usage:
    python benchmarks/rule_times.py                 # newest log in .snakemake/log/
    python benchmarks/rule_times.py path/to/x.snakemake.log [--json out.json]

Prints, per rule, the number of jobs and their total, median and longest wall time, then the
run's span (first job start to last job end). Wall times overlap when jobs run side by side, so
the per-rule totals add up to more than the span on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from datetime import datetime
from pathlib import Path

TIMESTAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
JOB_START = re.compile(r"^(?:local)?rule (\w+):$")
JOB_ID = re.compile(r"^\s+jobid: (\d+)$")
JOB_END = re.compile(r"^Finished jobid: (\d+)")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def job_times(lines: list[str]) -> list[dict]:
    """Jobs of a Snakemake log as dicts with rule, jobid, start, end and seconds.

    Jobs that started but never finished (a failed or interrupted run) are left out.
    """
    started: dict[int, tuple[str, datetime]] = {}
    finished: list[dict] = []
    stamp: datetime | None = None
    pending_rule: str | None = None
    for line in lines:
        if match := TIMESTAMP.match(line):
            stamp = _parse_time(match.group(1))
        elif match := JOB_START.match(line):
            pending_rule = match.group(1)
        elif (match := JOB_ID.match(line)) and pending_rule is not None and stamp is not None:
            started[int(match.group(1))] = (pending_rule, stamp)
            pending_rule = None
        elif (match := JOB_END.match(line)) and stamp is not None:
            jobid = int(match.group(1))
            if jobid in started:
                rule, start = started.pop(jobid)
                seconds = (stamp - start).total_seconds()
                finished.append(dict(rule=rule, jobid=jobid, start=start, end=stamp, seconds=seconds))
    return finished


def summarise(jobs: list[dict]) -> dict:
    """Per-rule counts and times, and the span of the run."""
    rules: dict[str, list[float]] = {}
    for job in jobs:
        rules.setdefault(job["rule"], []).append(job["seconds"])
    per_rule = {
        rule: dict(
            jobs=len(times),
            total_s=sum(times),
            median_s=statistics.median(times),
            max_s=max(times),
        )
        for rule, times in sorted(rules.items(), key=lambda item: -sum(item[1]))
    }
    span = (max(j["end"] for j in jobs) - min(j["start"] for j in jobs)).total_seconds() if jobs else 0.0
    return dict(rules=per_rule, jobs=len(jobs), span_s=span, job_seconds=sum(j["seconds"] for j in jobs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", nargs="?", type=Path, help="a .snakemake.log (default: the newest one)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    log = args.log
    if log is None:
        logs = sorted(Path(".snakemake/log").glob("*.snakemake.log"), key=lambda p: p.stat().st_mtime)
        if not logs:
            parser.error("no log given and none in .snakemake/log/ (run from the repository root)")
        log = logs[-1]
    summary = summarise(job_times(log.read_text().splitlines()))
    print(f"{log}: {summary['jobs']} finished jobs, span {summary['span_s'] / 60:.1f} min, "
          f"job wall time summed {summary['job_seconds'] / 60:.1f} min")
    print(f"{'rule':32s} {'jobs':>4s} {'total s':>8s} {'median s':>9s} {'max s':>7s}")
    for rule, row in summary["rules"].items():
        print(f"{rule:32s} {row['jobs']:4d} {row['total_s']:8.0f} {row['median_s']:9.0f} {row['max_s']:7.0f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
