"""The energy-scale jobs and the split modules: what the scripts and other stages rely on."""

import json
from pathlib import Path

import numpy as np
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
    # The "refit" r2SCAN references are the shipped ones + 0.5 eV: its shift must be 0.5 eV higher.
    rows = []
    for functional, name in (("gga", "MPtrj"), ("r2scan", "MP-r2SCAN")):
        for kind in ("refit", "shipped"):
            offset = 0.5 if (functional, kind) == ("r2scan", "refit") else 0.0
            for element, energy in shipped_atomref(name).items():
                rows.append({"functional": functional, "kind": kind, "element": element,
                             "energy": energy + offset})
    pd.DataFrame(rows).to_csv(tmp_path / "atomrefs.csv", index=False)
    stats = jobs.matpes_shift(
        atomrefs=tmp_path / "atomrefs.csv",
        pbe=REFERENCE / "MatPES-PBE-Element-Refs.json.gz",
        r2scan=REFERENCE / "MatPES-r2SCAN-Element-Refs.json.gz",
        out_table=tmp_path / "shift.csv",
        out_stats=tmp_path / "shift.json",
    )
    assert json.loads((tmp_path / "shift.json").read_text()) == stats
    table = pd.read_csv(tmp_path / "shift.csv")
    gga, scan = shipped_atomref("MPtrj"), shipped_atomref("MP-r2SCAN")
    expected = table["element"].map(lambda el: scan[el] - gga[el] if el in scan and el in gga else np.nan)
    np.testing.assert_allclose(table["shipped_shift"], expected)
    np.testing.assert_allclose(table["refit_shift"], expected + 0.5)
    np.testing.assert_allclose(table["matpes_shift"], table["matpes_r2scan"] - table["matpes_pbe"])
    # The agreement is recomputed from the table: r is unchanged by the offset, the MAD is not.
    for kind in ("refit", "shipped"):
        both = table[["matpes_shift", f"{kind}_shift"]].dropna()
        assert stats[kind]["n"] == len(both) > 30
        assert stats[kind]["pearson"] == pytest.approx(np.corrcoef(both.T.to_numpy())[0, 1])
        assert stats[kind]["mad"] == pytest.approx(np.abs(both.iloc[:, 0] - both.iloc[:, 1]).mean())
    assert stats["refit"]["pearson"] == pytest.approx(stats["shipped"]["pearson"]) and stats["shipped"]["pearson"] > 0.99
    assert stats["refit"]["mad"] != pytest.approx(stats["shipped"]["mad"])


def test_atoms_are_counted_per_cell_once_per_material(tmp_path):
    """Two frames of a 4-atom Li2O2 cell count 2 Li and 2 O once (not per frame, not per
    formula unit LiO), as the paper's normalisation of element importance counts them."""
    from mlip_transfer.data.dataset import Frame, write_frames

    def frame(frame_id: str, material_id: str, species: tuple[str, ...]) -> Frame:
        n = len(species)
        return Frame(frame_id=frame_id, material_id=material_id, functional="r2scan",
                     species=species, lattice=np.eye(3) * 4.0,
                     frac_coords=np.arange(3 * n, dtype=float).reshape(n, 3) / (3 * n + 1),
                     energy=-1.0 * n)

    path = tmp_path / "frames.jsonl.gz"
    write_frames(path, [frame("a-0", "a", ("Li", "Li", "O", "O")),
                        frame("a-1", "a", ("Li", "Li", "O", "O")),
                        frame("b-0", "b", ("Na", "Cl"))])
    assert jobs.cell_atom_counts(path) == {"Li": 2, "O": 2, "Na": 1, "Cl": 1}
