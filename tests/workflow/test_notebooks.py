"""The committed notebooks are the source of the figures: clean, parametrised, and all run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CONFIGS = ["config/config.yaml", "config/smoke.yaml", "config/paper.yaml"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_notebook_has_no_outputs_and_a_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [cell.id for cell in code if cell.outputs], "commit notebooks without outputs"
    assert not [cell.id for cell in code if cell.execution_count is not None]
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "one cell tagged `parameters` for papermill"
    assert code[0] is tagged[0], "the parameters cell comes first"
    assert "setup(" in code[1].source, "the cell after the parameters is the one set-up call"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def dry_run_notebooks(configfile):
    """The notebooks the papermill commands of a forced dry run execute."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--forceall", "-p", "--configfile", configfile],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return set(re.findall(r"papermill notebooks/(\w+)\.ipynb", result.stdout))


@pytest.mark.parametrize("configfile", CONFIGS)
def test_every_committed_notebook_is_run_by_a_rule(configfile):
    run = dry_run_notebooks(configfile)
    assert run == {path.stem for path in NOTEBOOKS}


def test_smoke_run_executed_each_notebook_without_errors(smoke_run):
    executed = smoke_run / "results" / "smoke" / "notebooks"
    for name in sorted(dry_run_notebooks("config/smoke.yaml")):
        notebook = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
        assert not [out for out in outputs if out.get("output_type") == "error"], name
        assert any("image/png" in out.get("data", {}) for out in outputs), name
