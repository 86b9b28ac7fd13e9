"""Density-stage jobs: one model's relaxed densities and the summary over models, from files."""

from pathlib import Path

import pandas as pd

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.density import benchmark
from mlip_transfer.density.jobs import density_model, density_summary

ROOT = Path(__file__).resolve().parents[2]
SOL58 = ROOT / "resources/reference/sol58_experimental_lattice_constants.csv"
DENSITY = {"structures": "sol58", "systems": ["Cu"], "strain": -0.10, "fmax": 0.1,
           "max_steps": 30}


def test_density_model_and_summary_write_their_tables(tmp_path):
    tables = []
    for label in ("a", "b"):
        out = tmp_path / label
        out.mkdir()
        table = density_model(label=label, model="0.3.0", reference=SOL58,
                              out_table=out / "density.csv", out_relaxed=out / "relaxed.csv",
                              density=DENSITY, processes=1)
        assert list(table["system"]) == ["Cu"] and list(table["model"]) == [label]
        assert pd.read_csv(out / "relaxed.csv")["material_id"].tolist() == ["Cu"]
        tables.append(out / "density.csv")
    SURROGATE_DEFAULT.write(tmp_path / "data")
    summary = density_summary(tables=tables, provenance=tmp_path / "data/provenance.json",
                              structures="sol58", out_table=tmp_path / "density_all.csv",
                              out_summary=tmp_path / "density_summary.csv")
    assert list(summary["model"]) == ["a", "b"]
    assert set(summary["training_data"]) == {"surrogate-default"}
    assert len(pd.read_csv(tmp_path / "density_all.csv")) == 2
    assert list(pd.read_csv(tmp_path / "density_summary.csv")["model"]) == ["a", "b"]


def test_density_summary_flags_relaxations_that_stayed_at_the_strained_start(tmp_path):
    """Model "stuck" never moved (ratio 0.9^3 = 0.729, no step); model "moved" relaxed."""
    tables = []
    for label, ratio, steps in (("stuck", 0.729, 0), ("moved", 1.01, 14)):
        path = tmp_path / f"{label}.csv"
        pd.DataFrame([{"model": label, "system": "Cu", "prototype": "fcc", "density_exp": 9.0,
                       "density_pred": 9.0 / ratio, "ratio": ratio, "failed": False,
                       "failure": "", "converged": steps > 0, "n_steps": steps}]).to_csv(path)
        tables.append(path)
    SURROGATE_DEFAULT.write(tmp_path / "data")
    summary = density_summary(tables=tables, provenance=tmp_path / "data/provenance.json",
                              structures="sol58", out_table=tmp_path / "all.csv",
                              out_summary=tmp_path / "summary.csv", strain=-0.10)
    flags = summary.set_index("model")["flags"]
    assert flags["stuck"].startswith("1 of 1 density relaxations took no step")
    assert "within 1 % of the strained start's 0.729" in flags["stuck"]
    assert flags["moved"] == ""
    assert set(summary["reference"]) == {benchmark.REFERENCES["sol58"]}
    mp = density_summary(tables=tables, provenance=tmp_path / "data/provenance.json",
                         structures="mp_api", out_table=tmp_path / "all.csv",
                         out_summary=tmp_path / "summary.csv")
    assert set(mp["reference"]) == {benchmark.REFERENCES["mp_api"]}
    assert "not experiment" in benchmark.REFERENCES["mp_api"]


def test_density_summary_sets_each_models_step0_density_beside_it(tmp_path):
    """M4's step 0 is the source model's relaxation; a model without a step 0 gets none."""
    tables = []
    for label, ratio in (("4_refit_atomref", 1.02), ("source", 1.10), ("other", 0.95)):
        path = tmp_path / f"{label}.csv"
        pd.DataFrame([{"model": label, "system": "Cu", "prototype": "fcc", "density_exp": 9.0,
                       "density_pred": 9.0 / ratio, "ratio": ratio, "failed": False,
                       "failure": "", "converged": True, "n_steps": 5}]).to_csv(path)
        tables.append(path)
    SURROGATE_DEFAULT.write(tmp_path / "data")
    summary = density_summary(tables=tables, provenance=tmp_path / "data/provenance.json",
                              structures="sol58", out_table=tmp_path / "all.csv",
                              out_summary=tmp_path / "summary.csv",
                              step0_models={"4_refit_atomref": "source", "other": "missing"})
    rows = summary.set_index("model")
    assert rows.loc["4_refit_atomref", "step0_model"] == "source"
    assert rows.loc["4_refit_atomref", "step0_ratio_median"] == 1.10
    assert rows.loc["4_refit_atomref", "step0_density_mae"] == rows.loc["source", "density_mae"]
    assert rows.loc["other", "step0_model"] == "" and pd.isna(rows.loc["other",
                                                                       "step0_ratio_median"])
