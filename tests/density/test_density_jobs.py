"""Density-stage jobs: one model's relaxed densities and the summary over models, from files."""

from pathlib import Path

import pandas as pd

from mlip_transfer.core.provenance import SURROGATE_DEFAULT
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
