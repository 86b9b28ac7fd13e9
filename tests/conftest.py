"""Shared fixtures: one smoke run of the whole workflow, which several tests read."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """A user's clone (no results, no downloads) after `snakemake --profile profiles/local
    --configfile config/smoke.yaml`: the default target on the tiny config, run once per session."""
    workdir = tmp_path_factory.mktemp("smoke") / "repo"
    workdir.mkdir()
    # tests/fixtures: small reference files a config may point at (a user's clone has them too).
    names = ("Snakefile", "config", "workflow", "notebooks", "resources", "profiles", "envs")
    for name in (*names, "tests/fixtures"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("external"))
        else:
            shutil.copy2(source, workdir / name)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), "--profile", "profiles/local", "--configfile", "config/smoke.yaml"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"smoke run failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return workdir


@pytest.fixture(scope="session")
def dry_runs():
    """``snakemake -n --forceall -p --configfile X`` output, run once per shipped config and shared
    by the DAG and notebook tests (each dry run costs ~8 s of start-up)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    cache: dict[str, str] = {}

    def run(configfile: str) -> str:
        if configfile not in cache:
            result = subprocess.run(
                [str(BIN / "snakemake"), "-n", "--forceall", "-p", "--configfile", configfile],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
            )
            if result.returncode != 0:
                pytest.fail(f"dry run of {configfile} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
            cache[configfile] = result.stdout + result.stderr
        return cache[configfile]

    return run
