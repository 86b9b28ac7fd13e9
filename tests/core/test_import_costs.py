"""Start-up cost of the workflow's jobs: each job imports only what it uses.

Every Snakemake job is a fresh Python process that imports one stage's ``jobs`` module (plus the
modules its function imports when it runs), and every figure notebook imports some
``mlip_transfer.plots`` modules. Heavy libraries a job never uses (the phase-diagram code,
scipy.stats, ASE's readers and optimizers, torch) used to cost seconds per job; these cases pin
that they stay out. Each case is one fresh interpreter (``python -c``), so nothing imported by
the test session leaks in.

These pin this package's own imports. A job that loads CHGNet at run time still gets what
``chgnet.model`` imports (its ``dynamics`` module loads ASE's optimizers, scipy.stats and
matplotlib), so for ``train_method`` the run-time saving is mainly the phase-diagram code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

M = "mlip_transfer."

# job (or notebook) -> (modules the process imports, modules it must not import). The jobs that
# load torch_geometric or train (scaling_point, density_model, train_ge, md_stability) are left
# out: each case would cost 5-30 s of the test budget to pin well under a second of start-up.
CASES = {
    "train_method": (
        [M + "transfer.jobs", M + "transfer.methods", M + "transfer.trainer",
         M + "transfer.gradients", M + "transfer.settings"],
        ["pymatgen.analysis.phase_diagram", M + "energy_scale.hull_errors",
         M + "transfer.evaluation", M + "transfer.relaxation", "ase.optimize"],
    ),
    "table1": (
        [M + "transfer.jobs"],
        ["torch", "chgnet", "pymatgen.analysis.phase_diagram"],
    ),
    # The retention jobs run the Si -> Ge stage's NVT test with CHGNet: never its DimeNet++
    # (torch_geometric, ~2 s); their modules load torch and chgnet inside the functions.
    "retention jobs": (
        [M + "transfer.retention_jobs", M + "transfer.retention", M + "transfer.retention_md",
         M + "transfer.dimers", M + "elements.nvt"],
        ["torch_geometric", M + "elements.dimenet", "torch", "chgnet"],
    ),
    "parse_dataset (default/MP source)": (
        [M + "data.jobs", M + "data.parse"],
        ["ase.io", M + "data.loaders.extxyz", "torch", "scipy"],
    ),
    "split_dataset": (
        [M + "data.jobs"],
        [M + "data.parse", "ase", "torch"],
    ),
    "energy-scale jobs": (
        [M + "energy_scale.jobs"],
        ["pymatgen.analysis.phase_diagram", "scipy.stats", "sklearn", "torch", "chgnet"],
    ),
    # Reads other stages' files; the two plots imports it needs (the paper's element list and
    # the Fig. 3a ratio) happen inside its function.
    "claims_table": (
        [M + "claims.jobs", M + "claims.verdicts"],
        ["torch", "chgnet", "sklearn", "matplotlib", "pymatgen.analysis.phase_diagram",
         "scipy.stats"],
    ),
    # Fits a few points: scipy only inside the interval, never torch.
    "data_budget (collect)": (
        [M + "budget.jobs"],
        ["torch", "chgnet", "scipy.stats", "matplotlib", "pymatgen.analysis.phase_diagram"],
    ),
    "figure notebooks": (
        [M + "plots." + name for name in
         ("notebook", "dataset", "elements", "energy_scale", "atomrefs", "transfer",
          "benchmarks", "data_budget")] + [M + "data.summary"],
        ["scipy.stats", "pymatgen.analysis.phase_diagram", "torch", "ase", "plotly",
         M + "data.loaders.extxyz"],
    ),
}

# Lists the modules the imports loaded, then checks that every name the test forbids exists
# (a misspelt name would make its case pass for nothing).
PROBE = """
import importlib, importlib.util, json, sys
for name in sys.argv[1].split(","):
    importlib.import_module(name)
loaded = sorted(sys.modules)
exists = {name: importlib.util.find_spec(name) is not None for name in sys.argv[2].split(",")}
origin = sys.modules["mlip_transfer"].__file__
print(json.dumps({"loaded": loaded, "exists": exists, "origin": origin}))
"""


@pytest.mark.parametrize("job", list(CASES))
def test_job_does_not_import_what_it_never_uses(job):
    imports, forbidden = CASES[job]
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(imports), ",".join(forbidden)],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.splitlines()[-1])
    assert Path(probe["origin"]).is_relative_to(SRC), probe["origin"]  # this checkout's code
    assert all(probe["exists"].values()), f"unknown module names: {probe['exists']}"
    loaded = set(probe["loaded"])
    assert loaded & set(imports) == set(imports)
    unwanted = sorted(name for name in forbidden if name in loaded)
    assert not unwanted, f"{job} imports {unwanted}, which it never uses"
