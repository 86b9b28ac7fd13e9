"""The Snakemake workflow as a user drives it: lint, the DAG of every config, and a smoke run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mp_format
import nbformat
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIGS = sorted((REPO / "config").glob("*.yaml"))


def snakemake(*args, cwd=REPO, check=True):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Congratulations" in result.stdout + result.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_dry_run_resolves_the_whole_dag(config, dry_runs):
    out = dry_runs(str(config.relative_to(REPO)))
    assert "dataset_summary" in out and "split_dataset" in out
    # The Si -> Ge stage is part of `all` in every configuration.
    for rule in ("sw_frames", "pretrain_si", "train_ge", "md_stability", "elements_figure"):
        assert rule in out
    source = yaml.safe_load(config.read_text())["data"]["source"]
    if source == "mp":
        assert "download_mp_r2scan" in out and "fetch_mp_thermo" in out


def test_rebuild_option_puts_the_builder_in_the_dag(tmp_path):
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config["data"]["default"]["rebuild"] = True
    path = tmp_path / "rebuild.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--forceall", "--configfile", str(path))
    assert "build_default_dataset" in result.stdout + result.stderr


def test_bad_config_stops_the_workflow_with_the_key_named(tmp_path):
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config["filters"]["on_invalid_record"] = "ignore"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake("-n", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    assert "on_invalid_record" in result.stdout + result.stderr


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs_and_take_parameters(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert any("parameters" in cell.metadata.get("tags", []) for cell in code)
    assert notebook.metadata["language_info"]["name"] == "python"


def copy_workflow(workdir):
    """The files a user's clone has, without results or downloads."""
    workdir.mkdir()
    for name in ("Snakefile", "config", "workflow", "notebooks", "resources", "profiles", "envs"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("external"))
        else:
            shutil.copy2(source, workdir / name)
    return workdir


@pytest.mark.slow
def test_smoke_run_end_to_end_and_rerun_is_a_no_op(smoke_run):
    """The tiny config through the real workflow, every stage: data, energy scale, training and
    evaluation of Methods 3 and 4 (one epoch), scaling law and density benchmark, every figure."""
    workdir = smoke_run  # tests/conftest.py; tests/test_report.py builds the report from it
    out = workdir / "results" / "smoke"
    for name in ("dataset_summary.png", "dataset_elements.png"):
        assert (out / "figures" / name).stat().st_size > 10_000
    executed = nbformat.read(out / "notebooks" / "dataset_summary.ipynb", as_version=4)
    assert not any(output.get("output_type") == "error" for cell in executed.cells for output in cell.get("outputs", []))
    stats = json.loads((out / "data" / "dataset_statistics.json").read_text())
    assert stats["data_source"] == "surrogate-default"
    assert set(stats["materials_per_split"]) == {"train", "val", "test"}
    report = json.loads((out / "data" / "parse_report.json").read_text())
    assert report["total_read"] >= stats["frames"]
    assert report["notes"]["materials_not_selected"] > 0  # the smoke config takes a subset
    correlation = json.loads((out / "energy_scale" / "correlation.json").read_text())
    assert correlation["data_source"] == "surrogate-default"
    assert correlation["refit"]["scaled"]["rho"] > correlation["refit"]["raw"]["rho"]
    for figure in ("fig1a_element_occurrence", "fig1b_relaxed_energies", "fig1cd_element_importance",
                   "fig2a_atomrefs", "fig2b_referenced_energies", "matpes_shift_check"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 10_000
    assert "Recommendation" in (out / "energy_scale" / "diagnose.md").read_text()
    assert (out / "logs" / "parse_dataset.log").read_text().strip()
    check_transfer_outputs(out)
    check_benchmark_outputs(out)
    # The Si -> Ge stage (8-atom cells, 2 training steps): data, both methods, the four figures.
    elements = out / "elements"
    assert json.loads((elements / "data" / "Ge" / "provenance.json").read_text())["name"] == "stillinger-weber"
    assert json.loads((elements / "data" / "Si" / "summary.json").read_text())["ground_state"]["ok"]
    table = (elements / "results" / "data_efficiency.md").read_text()
    assert "SYNTHETIC Stillinger-Weber" in table and "Scaled down from the paper" in table
    efficiency = pd.read_csv(elements / "results" / "data_efficiency.csv")
    assert set(efficiency["method"]) == {"scratch", "transfer"}
    assert (efficiency["force_mae_mev_per_a_mean"] > 0).all()
    temperature = pd.read_csv(elements / "results" / "temperature.csv")
    assert set(temperature["temperature"]) == {1200.0, 2100.0}
    summary = json.loads((elements / "results" / "stability_structure.json").read_text())
    assert {row["method"] for row in summary["stability"]} == {"scratch", "transfer"}
    assert summary["structure"]["stillinger-weber"]["frames"] > 0
    transfer = json.loads((elements / "models" / "Ge" / "transfer" / "n2_s0" / "summary.json").read_text())
    assert "copied" in transfer["start"]["embedding"]
    for figure in ("elements_data_efficiency", "elements_temperature", "elements_stability", "elements_structure"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 10_000
        executed = nbformat.read(out / "notebooks" / f"{figure}.ipynb", as_version=4)
        assert not any(o.get("output_type") == "error" for cell in executed.cells for o in cell.get("outputs", []))
    rerun = snakemake("--profile", "profiles/local", "--configfile", "config/smoke.yaml", cwd=workdir)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


@pytest.mark.slow
def test_real_data_path_runs_the_same_rules_and_never_touches_local_copies(tmp_path):
    """MP-r2SCAN/MPtrj JSON and thermo docs in their real formats, through the unchanged rules.

    The files are local copies, as a user without internet would supply them: the workflow must
    read them and never try to download over them (or delete them).
    """
    from mlip_transfer.data.dataset import read_frames, read_materials

    workdir = copy_workflow(tmp_path / "repo")
    shipped = REPO / "resources" / "default_dataset"
    materials = read_materials(shipped / "materials.csv")
    compounds = sorted(materials.loc[~materials["is_elemental_reference"], "material_id"].unique())[:24]

    keep = set(compounds) | set(materials.loc[materials["is_elemental_reference"], "material_id"])
    frames = [f for f in read_frames(shipped / "frames.jsonl.gz") if f.material_id in keep]
    materials = materials[materials["material_id"].isin(keep)]
    relaxed = {
        (row.material_id, row.functional): row.relaxed_energy_per_atom for row in materials.itertuples()
    }
    data = workdir / "local"
    data.mkdir()
    for functional, name in (("r2scan", "MPr2SCAN.json"), ("gga", "MPtrj.json")):
        chosen = [f for f in frames if f.functional == functional]
        mp_format.write_trajectory_json(
            data / name, chosen, {m: e for (m, fn), e in relaxed.items() if fn == functional}
        )
    mp_format.write_thermo_docs(data / "thermo.json", materials)
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config["output_dir"] = "results/mp"
    config["data"]["source"] = "mp"
    config["data"]["mp"] = {
        "r2scan_json": "local/MPr2SCAN.json",
        "mptrj_json": "local/MPtrj.json",
        "thermo_json": "local/thermo.json",
    }
    (workdir / "mp.yaml").write_text(yaml.safe_dump(config))
    # The data and energy-scale stages read the real formats; training does not depend on them.
    targets = ["results/mp/energy_scale/correlation.json", "results/mp/figures/fig2b_referenced_energies.png"]
    snakemake(*targets, "--profile", "profiles/local", "--configfile", "mp.yaml", cwd=workdir)
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    out = workdir / "results" / "mp"
    assert json.loads((out / "data" / "provenance.json").read_text())["name"] == "mp-r2scan"
    correlation = json.loads((out / "energy_scale" / "correlation.json").read_text())
    assert correlation["data_source"] == "mp-r2scan"
    assert correlation["refit"]["scaled"]["rho"] > correlation["refit"]["raw"]["rho"]
    assert (out / "figures" / "fig2b_referenced_energies.png").stat().st_size > 10_000
    assert not list((out / "logs").glob("download_*"))


@pytest.mark.slow
def test_rebuild_rule_regenerates_the_default_dataset_in_parallel_workers(tmp_path):
    """rule build_default_dataset with two spawned workers, then parse and split of its output."""
    workdir = copy_workflow(tmp_path / "repo")
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config["output_dir"] = "results/rebuild"
    config["data"]["default"]["rebuild"] = True
    config["data"]["default"]["build"].update(n_materials=1, max_steps=2, frames_per_trajectory=2, processes=2)
    (workdir / "rebuild.yaml").write_text(yaml.safe_dump(config))
    snakemake("results/rebuild/data/split.csv", "--profile", "profiles/local", "--configfile", "rebuild.yaml", cwd=workdir)
    summary = json.loads((workdir / "results/rebuild/default_dataset_rebuilt/build_summary.json").read_text())
    assert summary["materials"] == 1 and summary["n_failed"] == 0
    assert summary["elemental_references"] == summary["n_elements"]
    log = (workdir / "results/rebuild/logs/build_default_dataset.log").read_text()
    assert "finished" in log


def check_transfer_outputs(out):
    """Table 1 and Fig. 3 of the smoke run (Methods 3 and 4, one epoch)."""
    import pandas as pd

    table = (out / "evaluation" / "table1.md").read_text()
    assert "SURROGATE" in table and "paper" in table
    for method in ("3_frozen_gga_atomref", "4_refit_atomref"):
        assert method in table
        assert json.loads((out / "training" / method / "train_summary.json").read_text())
        metrics = json.loads((out / "evaluation" / method / "metrics.json").read_text())
        assert metrics["n_relaxed"] > 0 and metrics["energy_mae_mev"] >= 0
    for figure in ("table1", "fig3a_gradients", "fig3bc_energy_mae"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 10_000
    # Method 3 starts from the GGA AtomRef, Method 4 from the refit one: M3's first-epoch gradients
    # are larger (the paper's Fig. 3a).
    gradients = pd.concat(pd.read_csv(p) for p in (out / "training").glob("*/gradients.csv"))
    norms = gradients.groupby("method")["grad_norm"].median()
    assert norms["3_frozen_gga_atomref"] > norms["4_refit_atomref"]


def check_benchmark_outputs(out):
    """Fig. 5 and Fig. 6 of the smoke run: one job per method x size x seed plus the zero point."""
    import pandas as pd

    results = pd.read_csv(out / "scaling" / "scaling_results.csv")
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["scaling"]
    expected = len(config["methods"]) * len(config["sizes"]) * len(config["seeds"]) + 1
    assert len(results) == expected
    zero = results[results["size"] == 0]
    assert list(zero["method"]) == ["4_refit_atomref"] and (zero["epochs"] == 0).all()
    assert (results["energy_mae_mev_per_atom"] > 0).all()
    fits = json.loads((out / "scaling" / "scaling_fits.json").read_text())
    assert fits["data_source"] == "surrogate-default" and "SURROGATE" in fits["data_banner"]
    assert set(fits["targets"]["energy"]["fits"]) == set(config["methods"])
    density = pd.read_csv(out / "density" / "density_summary.csv")
    assert set(density["model"]) == {"3_frozen_gga_atomref", "4_refit_atomref"}
    assert (density["n_solids"] == 2).all() and density["density_mae"].notna().all()
    assert (density["training_data"] == "surrogate-default").all()
    for figure in ("fig5_density", "fig6_scaling_law"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 10_000
