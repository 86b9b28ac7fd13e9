"""The committed notebooks are the source of the figures: clean, parametrised, and all run."""

import re
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


def notebooks_run(dry_run_output):
    """The notebooks the papermill commands of a forced dry run execute."""
    return set(re.findall(r"papermill notebooks/(\w+)\.ipynb", dry_run_output))


@pytest.mark.parametrize("configfile", CONFIGS)
def test_every_committed_notebook_is_run_by_a_rule(configfile, dry_runs):
    run = notebooks_run(dry_runs(configfile))
    assert run == {path.stem for path in NOTEBOOKS}


def test_smoke_run_executed_each_notebook_without_errors(smoke_run, dry_runs):
    executed = smoke_run / "results" / "smoke" / "notebooks"
    for name in sorted(notebooks_run(dry_runs("config/smoke.yaml"))):
        notebook = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
        assert not [out for out in outputs if out.get("output_type") == "error"], name
        assert any("image/png" in out.get("data", {}) for out in outputs), name
    # Each notebook is executed once in the suite, here; each saves the figure named after it.
    figures = {path.stem for path in (smoke_run / "results" / "smoke" / "figures").glob("*.png")}
    assert {path.stem for path in NOTEBOOKS} <= figures
