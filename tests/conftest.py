"""Shared fixtures: one smoke run of the whole workflow, which several tests read.

`make test` runs pytest on two workers (pytest-xdist). The smoke run keeps both cores busy for
a few minutes while most other tests use one, so the second worker takes the rest of the suite
meanwhile. Session fixtures are per worker in xdist; the expensive ones here are made once per
test session across workers (a file lock in the shared temporary folder), and the tests that run
Snakemake inside the smoke folder are kept on one worker (`xdist_group`), so they never run two
Snakemakes in one folder at once.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into node ids
def pytest_collection_modifyitems(items):
    """Every test that reads the smoke run goes to the worker that makes it."""
    for item in items:
        if "smoke_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("smoke_run"))


def pytest_collection_finish(session):
    """Stop at once if xdist ignores the groups: the smoke run's readers would then run
    Snakemake in one folder from two workers. pytest 9.2 broke `--dist loadgroup` silently
    (pytest-dev/pytest-xdist#1386), hence pytest 9.1.1 in the lock."""
    if not (os.environ.get("PYTEST_XDIST_WORKER") and session.config.getvalue("dist") == "loadgroup"):
        return
    lost = [item.nodeid for item in session.items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist ignored the xdist_group of {len(lost)} tests ({lost[0]} ...): with this pytest "
            "--dist loadgroup does not group (pytest-dev/pytest-xdist#1386); install the pytest of "
            "requirements/lock.txt or run without -n"
        )


def _shared_folder(tmp_path_factory) -> Path:
    """A folder all xdist workers of this session see (the session's base temp without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _once_per_session(tmp_path_factory, name: str, make):
    """``make()`` once per test session, whichever worker asks first; JSON-serialisable result.

    A failure is recorded too, so a second worker fails at once instead of repeating the work.
    """
    record = _shared_folder(tmp_path_factory) / f"{name}.json"
    with FileLock(f"{record}.lock"):
        if not record.is_file():
            try:
                value = {"ok": make()}
            except BaseException as error:  # noqa: BLE001 - recorded, then re-raised
                value = {"error": f"{type(error).__name__}: {error}"[-6000:]}
                record.write_text(json.dumps(value))
                raise
            record.write_text(json.dumps(value))
        value = json.loads(record.read_text())
    if "error" in value:
        pytest.fail(f"{name} failed on another worker:\n{value['error']}")
    return value["ok"]


def _make_smoke_run(workdir: Path) -> str:
    workdir.mkdir(parents=True)
    # tests/fixtures: small reference files a config may point at (a user's clone has them too).
    names = ("Snakefile", "config", "workflow", "notebooks", "resources", "profiles", "envs")
    for name in (*names, "tests/fixtures"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("external"))
        else:
            shutil.copy2(source, workdir / name)
    result = subprocess.run(
        [str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", "config/smoke.yaml"],
        cwd=workdir, env=ENV, capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"smoke run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return str(workdir)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """A user's clone (no results, no downloads) after `snakemake --profile profiles/local
    --configfile config/smoke.yaml`: the default target on the tiny config, run once per session."""
    workdir = _shared_folder(tmp_path_factory) / "smoke" / "repo"
    return Path(_once_per_session(tmp_path_factory, "smoke_run", lambda: _make_smoke_run(workdir)))


def _dry_run(configfile: str) -> str:
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--forceall", "-p", "--configfile", configfile],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dry run of {configfile} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def dry_runs(tmp_path_factory):
    """``snakemake -n --forceall -p --configfile X`` output, run once per shipped config and shared
    by the DAG and notebook tests (each dry run costs ~8 s of start-up)."""

    def run(configfile: str) -> str:
        name = "dry_run_" + Path(configfile).stem
        return _once_per_session(tmp_path_factory, name, lambda: _dry_run(configfile))

    return run
