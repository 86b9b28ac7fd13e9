"""The Snakemake workflow as a user drives it: lint, the DAG of every config, and a smoke run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mp_format
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from figure_checks import (
    check_ablation_outputs,
    check_data_budget_figure,
    check_data_figures,
    check_density_figure,
    check_elements_figures,
    check_energy_scale_figures,
    check_scaling_figure,
    check_teacher_figure,
    check_transfer_figures,
    figure_data,
    offsets,
)

from mlip_transfer.claims import verdicts
from mlip_transfer.core import flags

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
    check_data_figures(out)  # the figures' plotted data against dataset_statistics.json
    executed = nbformat.read(out / "notebooks" / "dataset_summary.ipynb", as_version=4)
    assert not any(output.get("output_type") == "error" for cell in executed.cells for output in cell.get("outputs", []))
    stats = json.loads((out / "data" / "dataset_statistics.json").read_text())
    assert stats["data_source"] == "surrogate-default"
    assert set(stats["materials_per_split"]) == {"train", "val", "test"}
    report = json.loads((out / "data" / "parse_report.json").read_text())
    assert report["total_read"] >= stats["frames"]
    # The smoke config takes a subset: every shipped material it did not select is counted.
    shipped = pd.read_csv(REPO / "resources" / "default_dataset" / "materials.csv")
    assert report["notes"]["materials_not_selected"] == shipped["material_id"].nunique() - stats["materials"]
    correlation = json.loads((out / "energy_scale" / "correlation.json").read_text())
    assert correlation["data_source"] == "surrogate-default"
    assert correlation["refit"]["scaled"]["rho"] > correlation["refit"]["raw"]["rho"]
    check_energy_scale_figures(out)
    assert "Recommendation" in (out / "energy_scale" / "diagnose.md").read_text()
    # Issue 18's per-element report: one recommendation per element.
    elements = json.loads((out / "energy_scale" / "diagnose_elements" / "elements.json").read_text())
    advice = ("enough data", "add structures with this element", "check your DFT settings")
    assert elements["elements"]
    assert sum(elements["counts"][a] for a in advice) == len(elements["elements"])
    assert (out / "logs" / "parse_dataset.log").read_text().strip()
    check_transfer_outputs(out)
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    check_ablation_outputs(out, training=smoke["training"], ablation=smoke["gradient_ablation"])
    check_benchmark_outputs(out)
    check_data_budget_outputs(out)
    check_claims(out)
    # The teacher comparison: named teachers, the one trained on in the banner, every figure bar.
    teachers = json.loads((out / "teachers" / "teacher_accuracy.json").read_text())
    assert set(teachers["teachers"]) == {"chgnet-0.3.0", "chgnet-r2scan", "diep"}
    assert not teachers["teachers"]["diep"]["shares_weights_with_source"]
    assert "r2SCAN from chgnet-r2scan" in teachers["data_banner"]
    check_teacher_figure(out)
    # The Si -> Ge stage (8-atom cells, 2 training steps): data, both methods, the four figures.
    elements = out / "elements"
    assert json.loads((elements / "data" / "Ge" / "provenance.json").read_text())["name"] == "stillinger-weber"
    assert json.loads((elements / "data" / "Si" / "summary.json").read_text())["ground_state"]["ok"]
    table = (elements / "results" / "data_efficiency.md").read_text()
    assert "SYNTHETIC Stillinger-Weber" in table and "Scaled down from the paper" in table
    efficiency = pd.read_csv(elements / "results" / "data_efficiency.csv")
    assert set(efficiency["method"]) == {"scratch", "transfer"}
    # One seed per size in the smoke config: the mean is that seed's error, the spread is nil.
    for column in ("force_mae_mev_per_a", "energy_mae_mev_per_atom"):
        assert (efficiency["n_seeds"] == 1).all() and efficiency[f"{column}_std"].isna().all()
        np.testing.assert_allclose(efficiency[f"{column}_mean"], efficiency[f"{column}_min"])
        np.testing.assert_allclose(efficiency[f"{column}_mean"], efficiency[f"{column}_max"])
    temperature = pd.read_csv(elements / "results" / "temperature.csv")
    assert set(temperature["temperature"]) == {1200.0, 2100.0}
    summary = json.loads((elements / "results" / "stability_structure.json").read_text())
    assert {row["method"] for row in summary["stability"]} == {"scratch", "transfer"}
    # Structure frames: one every sample_every_fs of each stable run (equilibration 0 in smoke).
    md = summary["stability_settings"]
    per_run = round(md["duration_ps"] * 1000 / md["sample_every_fs"]) - round(md["equilibration_ps"] * 1000 / md["sample_every_fs"])
    stable = {row["method"]: row["stable"] for row in summary["stability"]}
    stable["stillinger-weber"] = summary["reference_runs_stable"]
    assert {m: info["frames"] for m, info in summary["structure"].items()} == {m: n * per_run for m, n in stable.items()}
    transfer = json.loads((elements / "models" / "Ge" / "transfer" / "n2_s0" / "summary.json").read_text())
    assert "copied" in transfer["start"]["embedding"]
    check_elements_figures(out)
    for figure in ("elements_data_efficiency", "elements_temperature", "elements_stability", "elements_structure"):
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
    referenced = pd.read_csv(out / "energy_scale" / "referenced_energies.csv")
    assert len(referenced) == correlation["refit"]["raw"]["n"]
    raw = figure_data(out, "fig2b_referenced_energies")["axes"][0]
    np.testing.assert_allclose(offsets(raw), referenced[["raw_r2scan", "raw_gga"]].to_numpy())
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
    stats = json.loads((out / "data" / "dataset_statistics.json").read_text())
    rows = pd.read_csv(out / "evaluation" / "table1.csv")
    table = (out / "evaluation" / "table1.md").read_text()
    assert "SURROGATE" in table and "paper" in table
    for method in ("3_frozen_gga_atomref", "4_refit_atomref"):
        assert method in table
        summary = json.loads((out / "training" / method / "train_summary.json").read_text())
        history = pd.read_csv(out / "training" / method / "history.csv")
        last_val = history[history["split"] == "val"].iloc[-1]
        assert summary["method"] == method and summary["best_epoch"] == last_val["epoch"] == 1
        assert summary["val_after"]["energy_mae_mev_per_atom"] == pytest.approx(1000 * last_val["energy_mae"])
        assert summary["n_val"] > 0 and not summary["skipped_train_frames"]
        metrics = json.loads((out / "evaluation" / method / "metrics.json").read_text())
        # Every test material relaxed, none failed; Table 1's row is this file's numbers.
        assert metrics["n_relaxed"] == stats["materials_per_split"]["test"] and metrics["n_failed"] == 0
        (row,) = rows[rows["model"] == method].to_dict("records")
        # The row's flags are what core.flags says of its validation history (epoch 0 vs last).
        first = history[history["split"] == "val"].iloc[0]
        idle = metrics["n_relaxations_without_step"]
        expected = flags.flag_text([
            *(flags.not_trained(first[c], last_val[c], metric=f"validation {name} MAE", unit=unit)
              for c, name, unit in (("energy_mae", "energy", "eV/atom"), ("force_mae", "force", "eV/Å"))),
            flags.relaxations_without_step([0] * idle + [1] * (metrics["n_relaxed"] - idle),
                                           what="test relaxations"),
        ])
        assert (row["flags"] if isinstance(row["flags"], str) else "") == expected
        assert metrics["energy_mae_mev"] == pytest.approx(row["energy_mae_mev"])
        assert metrics["formation_energy_mae_mev"] == pytest.approx(row["formation_energy_mae_mev"])
    check_transfer_figures(out)  # Table 1's bars are table1.csv, Fig. 3 the training tables
    check_retention_outputs(out, rows)
    # Method 3 starts from the GGA AtomRef, Method 4 from the refit one: M3's first-epoch gradients
    # are larger (the paper's Fig. 3a).
    gradients = pd.concat(pd.read_csv(p) for p in (out / "training").glob("*/gradients.csv"))
    norms = gradients.groupby("method")["grad_norm"].median()
    assert norms["3_frozen_gga_atomref"] > norms["4_refit_atomref"]


def check_retention_outputs(out, rows):
    """Issue 18's retention report: one per trained method and the source model, its numbers in
    Table 1, the source model retaining itself exactly, the dimer figure drawn."""
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["evaluation"]["retention"]
    reference = json.loads((out / "evaluation" / "retention_reference" / "reference.json").read_text())
    assert len(reference["elements"]) == smoke["dimers"]["max_elements"]
    assert "SURROGATE" in reference["data_banner"]
    for model in ("3_frozen_gga_atomref", "4_refit_atomref", "source_model"):
        report = json.loads((out / "evaluation" / model / "retention.json").read_text())
        (row,) = rows[rows["model"] == model].to_dict("records")
        assert row["source_force_mae_mev"] == pytest.approx(report["source_labels"]["force_mae_mev"])
        assert row["dimer_walls_lost"] == report["dimers"]["n_lost"]
        assert row["n_dimer_elements"] == smoke["dimers"]["max_elements"]
        assert row["n_nvt_runs"] == smoke["nvt"]["structures"] == len(pd.read_csv(out / "evaluation" / model / "md.csv"))
        dimers = pd.read_csv(out / "evaluation" / model / "dimers.csv")
        assert set(dimers["element"]) == set(reference["elements"]) and dimers["energy"].notna().all()
    # The source model against its own labels, and against the GGA frames it labelled itself.
    source = json.loads((out / "evaluation" / "source_model" / "retention.json").read_text())
    assert source["is_source_model"] and source["source_labels"]["energy_mae_mev"] < 1e-3
    assert source["source_frames"]["energy_mae_mev"] < 1e-3 and source["dimers"]["n_lost"] == 0
    assert "Retention (what each fine-tune forgot" in (out / "evaluation" / "table1.md").read_text()
    executed = nbformat.read(out / "notebooks" / "retention.ipynb", as_version=4)
    assert not any(o.get("output_type") == "error" for cell in executed.cells for o in cell.get("outputs", []))
    panels = figure_data(out, "retention")["axes"]
    assert [ax["title"].split(" ")[0] for ax in panels if ax.get("title")] == reference["elements"]


def check_claims(out):
    """The smoke run's claims table: every claim once, flagged rows never a verdict on the
    paper, and what the tiny config cannot test said so."""
    record = json.loads((out / "claims" / "claims.json").read_text())
    rows = {row["id"]: row for row in record["claims"]}
    assert len(rows) == len(record["claims"]) == 17
    assert "SURROGATE" in record["data_banner"] and "r2SCAN: " in record["teacher"]
    assert all(row["verdict"] in verdicts.VERDICTS for row in rows.values())
    assert all(row["verdict"] == verdicts.NOT_TESTABLE for row in rows.values() if row["flags"])
    # Smoke trains M3 and M4 only, records an 8-step first epoch, and fits sizes below 1,000.
    assert rows["m4_beats_m1"]["verdict"] == verdicts.NOT_TESTABLE and "M1" in rows["m4_beats_m1"]["needs"]
    assert rows["gradient_ratio"]["verdict"] == verdicts.NOT_TESTABLE
    assert rows["scaling_slope_energy"]["verdict"] == verdicts.NOT_TESTABLE
    assert (out / "claims" / "claims.md").read_text().count("| **") == 17


def check_data_budget_outputs(out):
    """Issue 18's data-budget estimate: one point per method x fraction x seed with the
    full-size recipe, the estimate at N_full beside the measured full-size error, the words."""
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    budget, training = config["data_budget"], config["training"]
    points = pd.read_csv(out / "data_budget" / "data_budget_points.csv")
    assert len(points) == len(budget["methods"]) * len(budget["fractions"]) * len(budget["seeds"])
    n_full = training["max_train_frames"]
    assert (points["n_full"] == n_full).all()
    assert sorted(points["size"].unique()) == [round(f * n_full) for f in sorted(budget["fractions"])]
    # The recipe of the full-size training: its epochs and batch size give the steps.
    assert (points["epochs"] == training["epochs"]).all()
    expected_steps = np.ceil(points["size"] / training["batch_size"]) * training["epochs"]
    assert (points["steps_taken"] == expected_steps).all()
    summary = json.loads((out / "data_budget" / "data_budget.json").read_text())
    assert summary["n_full"] == n_full and summary["data_source"] == "surrogate-default"
    for target in ("energy", "force"):
        estimates = summary["targets"][target]["estimates"]
        assert set(estimates) == set(budget["methods"])
        for method, row in estimates.items():
            assert row["low"] <= row["predicted"] <= row["high"]
            # The measured error is the last validation row of the full-size training.
            if method in training["methods"]:
                history = pd.read_csv(out / "training" / method / "history.csv").query("split == 'val'")
                column = {"energy": "energy_mae", "force": "force_mae"}[target]
                assert row["measured"] == pytest.approx(1000 * history.sort_values("epoch")[column].iloc[-1])
            else:
                assert row["measured"] is None
        verdict = summary["targets"][target]["verdicts"]["4_refit_atomref"]["better"]
        assert verdict in ("transfer", "scratch", "undetermined")
    text = (out / "data_budget" / "data_budget.md").read_text()
    assert "This is an extrapolation" in text and "SURROGATE" in text
    assert (out / "logs" / "data_budget.log").read_text().strip()
    check_data_budget_figure(out)


def check_benchmark_outputs(out):
    """Fig. 5 and Fig. 6 of the smoke run: one job per method x size x seed plus the zero point."""
    import pandas as pd

    results = pd.read_csv(out / "scaling" / "scaling_results.csv")
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())["scaling"]
    expected = len(config["methods"]) * len(config["sizes"]) * len(config["seeds"]) + 1
    assert len(results) == expected
    zero = results[results["size"] == 0]
    assert list(zero["method"]) == ["4_refit_atomref"] and (zero["epochs"] == 0).all()
    assert (results["n_train_frames"] == results["size"]).all()
    # Every trained job took the steps its schedule planned, and its learning curve is on disk.
    trained = results[results["size"] > 0]
    assert (trained["steps_taken"] == trained["steps"]).all() and (zero["steps_taken"] == 0).all()
    for row in trained.itertuples():
        curve = pd.read_csv(out / "scaling" / row.method / f"n{row.size}_seed{row.seed}" / "steps.csv")
        assert len(curve) == row.steps_taken
        assert curve["loss"].head(3).mean() == pytest.approx(row.train_loss_start)
    assert results[["energy_mae_mev_per_atom", "force_mae_mev_per_a"]].notna().all().all()
    fits = json.loads((out / "scaling" / "scaling_fits.json").read_text())
    assert fits["data_source"] == "surrogate-default" and "SURROGATE" in fits["data_banner"]
    assert set(fits["targets"]["energy"]["fits"]) == set(config["methods"])
    density = pd.read_csv(out / "density" / "density_summary.csv")
    # The source model is evaluated too: it is both methods' step 0 (evaluation.step0_rows).
    assert set(density["model"]) == {"3_frozen_gga_atomref", "4_refit_atomref", "source_model"}
    rows = density.set_index("model")
    for method in ("3_frozen_gga_atomref", "4_refit_atomref"):
        assert rows.loc[method, "step0_model"] == "source_model"
        assert rows.loc[method, "step0_ratio_median"] == rows.loc["source_model", "ratio_median"]
    assert (density["n_solids"] == 2).all() and density["density_mae"].notna().all()
    assert (density["training_data"] == "surrogate-default").all()
    check_density_figure(out)
    check_scaling_figure(out)
