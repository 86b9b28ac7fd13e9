"""The energy-scale jobs and the split modules: what the scripts and other stages rely on."""

import json
from pathlib import Path

import pandas as pd
import pytest

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale import atomref, compositions, jobs
from mlip_transfer.energy_scale.chgnet_atomref import shipped_atomref

REFERENCE = Path(__file__).resolve().parents[2] / "resources" / "reference"


def test_atomref_still_exposes_the_composition_helpers_it_uses():
    # Other stages import these from atomref; they live in compositions now.
    assert atomref.composition_matrix is compositions.composition_matrix
    assert atomref.element_amounts is compositions.element_amounts


def test_parse_composition_names_the_record():
    assert compositions.parse_composition("Fe2O3", record="x").reduced_formula == "Fe2O3"
    with pytest.raises(DataError, match="cannot parse composition") as info:
        compositions.parse_composition("Fe-O", record="mp-1")
    assert "mp-1" in str(info.value)


def test_matpes_shift_job_writes_the_table_and_the_agreement(tmp_path):
    rows = []
    for functional, name in (("gga", "MPtrj"), ("r2scan", "MP-r2SCAN")):
        for kind in ("refit", "shipped"):
            for element, energy in shipped_atomref(name).items():
                rows.append({"functional": functional, "kind": kind, "element": element,
                             "energy": energy})
    pd.DataFrame(rows).to_csv(tmp_path / "atomrefs.csv", index=False)
    stats = jobs.matpes_shift(
        atomrefs=tmp_path / "atomrefs.csv",
        pbe=REFERENCE / "MatPES-PBE-Element-Refs.json.gz",
        r2scan=REFERENCE / "MatPES-r2SCAN-Element-Refs.json.gz",
        out_table=tmp_path / "shift.csv",
        out_stats=tmp_path / "shift.json",
    )
    assert json.loads((tmp_path / "shift.json").read_text()) == stats
    assert stats["refit"] == stats["shipped"] and stats["shipped"]["pearson"] > 0.99
    assert {"element", "refit_shift", "shipped_shift"} <= set(pd.read_csv(tmp_path / "shift.csv"))
