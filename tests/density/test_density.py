"""Density benchmark: prototype structures, strain, the comparison table and the MP API path."""

import json
import math
from pathlib import Path

import mp_format
import pandas as pd
import pytest
from pymatgen.core import Structure

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.loaders.mp_api import MPAPIError
from mlip_transfer.density.benchmark import (
    density_summary,
    density_table,
    fetch_mp_structures,
    mp_reference_table,
    prototype_structure,
    read_experimental,
    save_mp_structures,
    strained,
)

ROOT = Path(__file__).resolve().parents[2]
SOL58 = ROOT / "resources/reference/sol58_experimental_lattice_constants.csv"
RESPONSES = Path(__file__).parents[1] / "fixtures/mp_api_summary_responses.json"


@pytest.mark.parametrize(
    ("system", "prototype", "a", "n_sites", "density", "nn"),
    [
        # Handbook densities at room temperature differ slightly from these ZPE-corrected a0.
        ("Cu", "fcc", 3.615, 1, 8.93, 3.615 / math.sqrt(2)),
        ("Fe", "bcc", 2.8665, 1, 7.87, 2.8665 * math.sqrt(3) / 2),
        ("Si", "diamond", 5.431, 2, 2.33, 5.431 * math.sqrt(3) / 4),
        ("NaCl", "b1", 5.640, 2, 2.165, 5.640 / 2),
        ("NiAl", "b2", 2.887, 2, 5.90, 2.887 * math.sqrt(3) / 2),
        ("GaAs", "b3", 5.653, 2, 5.32, 5.653 * math.sqrt(3) / 4),
    ],
)
def test_prototypes_have_known_densities_and_bond_lengths(system, prototype, a, n_sites, density, nn):
    structure = prototype_structure(system, prototype, a)
    assert len(structure) == n_sites
    assert structure.density == pytest.approx(density, rel=0.01)
    distances = structure.distance_matrix + 1e9 * (structure.distance_matrix == 0)
    nearest = min(min(structure.get_neighbors(site, nn * 1.05), key=lambda n: n.nn_distance).nn_distance
                  for site in structure)
    assert nearest == pytest.approx(nn, rel=1e-6)
    assert distances.min() >= nearest - 1e-9
    if len(structure.composition.elements) == 2:
        assert [str(e) for e in structure.composition.elements] == [system[: len(str(structure[0].specie))], str(structure[1].specie)]


def test_sol58_reads_all_solids():
    table = read_experimental(SOL58)
    assert len(table) == 58
    assert set(table["prototype"]) == {"fcc", "bcc", "diamond", "b1", "b2", "b3"}
    assert list(read_experimental(SOL58, systems=["NaCl", "Cu"])["system"]) == ["Cu", "NaCl"]
    with pytest.raises(ConfigError, match="not in"):
        read_experimental(SOL58, systems=["Unobtainium"])
    nacl = table.set_index("system").loc["NaCl"]
    assert nacl["density_exp"] == pytest.approx(prototype_structure("NaCl", "b1", 5.565).density)


def test_bad_rows_name_file_line_and_field(tmp_path):
    path = tmp_path / "solids.csv"
    path.write_text("system,structure,a0_exp_angstrom\nCu,fcc,3.6\nNaCl,b1,abc\n")
    with pytest.raises(DataError, match=r"solids.csv, line 3 \(NaCl\), field a0_exp_angstrom"):
        read_experimental(path)
    path.write_text("system,structure,a0_exp_angstrom\nCu,hcp,3.6\n")
    with pytest.raises(DataError, match=r"line 2 \(Cu\), field structure: unknown prototype 'hcp'"):
        read_experimental(path)
    path.write_text("system,structure,a0_exp_angstrom\nNaCl,fcc,3.6\n")
    with pytest.raises(DataError, match="NaCl has 2 element"):
        read_experimental(path)
    path.write_text("system,structure,a0_exp_angstrom\nXx,fcc,3.6\n")
    with pytest.raises(DataError, match=r"line 2 \(Xx\), field structure"):
        read_experimental(path)
    path.write_text("system,lattice\nCu,3.6\n")
    with pytest.raises(DataError, match="missing column"):
        read_experimental(path)
    with pytest.raises(ConfigError, match="positive"):
        prototype_structure("Cu", "fcc", -1.0)


def test_strain_scales_every_lattice_vector():
    structure = prototype_structure("NaCl", "b1", 5.6)
    squeezed = strained(structure, -0.10)
    assert squeezed.volume == pytest.approx(structure.volume * 0.9**3)
    assert squeezed.density == pytest.approx(structure.density / 0.9**3)
    assert (squeezed.frac_coords == structure.frac_coords).all()
    with pytest.raises(ConfigError):
        strained(structure, 0.7)


def relaxed_rows(reference, scale, failed=()):
    rows = []
    for row in reference.itertuples(index=False):
        final = strained(row.structure, scale - 1)
        bad = row.system in failed
        rows.append({
            "material_id": row.system, "failed": bad, "failure": "non_finite" if bad else None,
            "converged": not bad, "n_steps": 5,
            "structure_json": None if bad else json.dumps(final.as_dict()),
        })
    return pd.DataFrame(rows)


def test_density_table_and_summary_count_failures():
    reference = read_experimental(SOL58).head(5)
    # Every lattice vector 2 % too long: predicted density = experimental / 1.02^3.
    table = density_table(relaxed_rows(reference, 1.02, failed={"Na"}), reference, model="m")
    ok = table[~table["failed"]]
    assert (ok["ratio"] - 1.02**3).abs().max() < 1e-9
    assert math.isnan(table.set_index("system").loc["Na", "density_pred"])
    summary = density_summary(table)
    assert summary["n_failed"] == 1 and summary["n_solids"] == 5
    expected = (ok["density_exp"] * (1 - 1 / 1.02**3)).mean()
    assert summary["density_mae"] == pytest.approx(expected)
    assert summary["fraction_in_range"] == pytest.approx(4 / 5)  # the failed one is outside
    with pytest.raises(DataError, match="no relaxation result for Li"):
        density_table(relaxed_rows(reference.tail(3), 1.0), reference, model="m")


def ReplaySession() -> mp_format.ReplaySession:
    return mp_format.ReplaySession(RESPONSES)


def test_mp_path_picks_icsd_polymorph_and_records_missing(tmp_path, caplog):
    docs = fetch_mp_structures({"Cu": "fcc", "NaCl": "b1", "Si": "diamond"}, api_key="k",
                               session=ReplaySession())
    assert [(d["system"], d["material_id"]) for d in docs] == [("Cu", "mp-30"), ("NaCl", "mp-22862")]
    path = save_mp_structures(tmp_path / "mp.json.gz", docs, requested=["Cu", "NaCl", "Si"])
    reference = mp_reference_table(path)
    assert list(reference["system"]) == ["Cu", "NaCl"]
    assert "Si" in caplog.text
    nacl = reference.set_index("system").loc["NaCl"]
    assert nacl["density_exp"] == pytest.approx(Structure.from_dict(docs[1]["structure"]).density)
    # Without the prototype's space group the lower-energy rocksalt still wins over CsCl-type.
    loose = fetch_mp_structures(["Cu", "NaCl", "Si"], api_key="k", session=ReplaySession())
    assert [d["material_id"] for d in loose] == ["mp-30", "mp-22862"]


def test_mp_path_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(ConfigError):
        fetch_mp_structures(["Cu"], session=ReplaySession())

    class Denied:
        def get(self, url, **kwargs):
            return mp_format.Response(403, {"detail": "invalid key"})

    with pytest.raises(MPAPIError, match="403"):
        fetch_mp_structures(["Cu"], api_key="bad", session=Denied())
    broken = tmp_path / "broken.json"
    broken.write_text('{"docs": [{"material_id": "mp-1", "system": "Cu", "structure": {"lattice": 1}}]}')
    with pytest.raises(DataError, match=r"broken.json, document 0 \(mp-1\), field structure"):
        mp_reference_table(broken)
