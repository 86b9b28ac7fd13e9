"""Shared fixtures: one smoke run of the whole workflow, which several tests read, and one dry
run per shipped configuration.

`make test` runs one pytest process. The smoke run starts in the background as soon as the tests
are collected and the unit tests run beside it, filling the core its DAG leaves idle while it
waits on one job; tests that read it wait for it (a second pytest-xdist worker, tried before,
made the suite slower: NOTES.md).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


SMOKE_TIMEOUT_S = 900
_SMOKE: dict = {}


def _start_smoke_run(workdir: Path) -> None:
    """Copy what a user's clone holds into ``workdir`` and start the smoke workflow there, in
    the background: the unit tests run beside it, so the two cores stay busy while the DAG
    waits on a single job."""
    workdir.mkdir(parents=True)
    # tests/fixtures: small reference files a config may point at (a user's clone has them too).
    names = ("Snakefile", "config", "workflow", "notebooks", "resources", "profiles", "envs")
    for name in (*names, "tests/fixtures"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("external"))
        else:
            shutil.copy2(source, workdir / name)
    # A file, not a pipe nobody drains; closed at the session's end.
    log = open(workdir / "smoke_run.log", "w")  # noqa: SIM115
    _SMOKE.update(workdir=workdir, log=log, started=time.monotonic(), process=subprocess.Popen(
        [str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", "config/smoke.yaml"],
        cwd=workdir, env=ENV, stdout=log, stderr=subprocess.STDOUT, text=True,
    ))


def _phase(item) -> int:
    """0: the tests that run beside the smoke run; 1: those that read it; 2: the loopback Slurm
    test, which runs a workflow of its own and must not share the cores with the smoke run."""
    if "cluster" in item.keywords:
        return 2
    return 1 if "smoke_run" in getattr(item, "fixturenames", ()) else 0


# Last, so that what -k or -m deselected is gone: `pytest -k caption` starts no smoke run.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    """Order the tests by :func:`_phase` (stable otherwise) and start the smoke run as soon as
    the tests are known, if any of them reads it."""
    items[:] = sorted(items, key=_phase)
    if not config.option.collectonly and any(_phase(item) == 1 for item in items):
        _start_smoke_run(Path(tempfile.mkdtemp(prefix="mlip-smoke-")) / "repo")


def pytest_sessionfinish(session, exitstatus):
    """Stop a smoke run nobody waited for; keep its folder only when a test failed."""
    process = _SMOKE.get("process")
    if process is None:
        return
    if process.poll() is None:
        process.kill()
        process.wait()
    _SMOKE["log"].close()
    if exitstatus == 0:
        shutil.rmtree(_SMOKE["workdir"].parent, ignore_errors=True)


@pytest.fixture(scope="session")
def smoke_run() -> Path:
    """A user's clone (no results, no downloads) after `snakemake --profile profiles/local
    --configfile config/smoke.yaml`: the default target on the tiny config, run once per
    session, started in the background when the tests were collected."""
    if "process" not in _SMOKE:  # e.g. a test selected by a keyword after collection
        _start_smoke_run(Path(tempfile.mkdtemp(prefix="mlip-smoke-")) / "repo")
    process, workdir = _SMOKE["process"], _SMOKE["workdir"]
    left = SMOKE_TIMEOUT_S - (time.monotonic() - _SMOKE["started"])
    try:
        returncode = process.wait(timeout=max(left, 1))
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"smoke run exceeded {SMOKE_TIMEOUT_S} s; log: {workdir / 'smoke_run.log'}")
    if returncode != 0:
        tail = (workdir / "smoke_run.log").read_text()[-6000:]
        pytest.fail(f"smoke run failed (log {workdir / 'smoke_run.log'}):\n{tail}")
    return workdir


def _dry_run(configfile: str) -> str:
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--forceall", "-p", "--configfile", configfile],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"dry run of {configfile} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def dry_runs():
    """``snakemake -n --forceall -p --configfile X`` output, run once per shipped config and shared
    by the DAG and notebook tests (each dry run costs ~8 s of start-up)."""
    cache: dict[str, str] = {}

    def run(configfile: str) -> str:
        if configfile not in cache:
            cache[configfile] = _dry_run(configfile)
        return cache[configfile]

    return run
