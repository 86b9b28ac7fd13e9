"""Shared fixtures: one smoke run of the whole workflow, which several tests read, and one dry
run per shipped configuration.

`make test` runs one pytest process: the smoke run keeps both cores busy, and a second
pytest-xdist worker beside it made the suite slower, not faster (NOTES.md).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def _make_smoke_run(workdir: Path) -> Path:
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
        pytest.fail(f"smoke run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return workdir


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """A user's clone (no results, no downloads) after `snakemake --profile profiles/local
    --configfile config/smoke.yaml`: the default target on the tiny config, run once per session."""
    return _make_smoke_run(tmp_path_factory.mktemp("smoke") / "repo")


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
