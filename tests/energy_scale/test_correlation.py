"""Pearson correlation with bootstrap CIs, and the raw vs AtomRef-scaled energy comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from mlip_transfer.core.errors import DataError
from mlip_transfer.energy_scale.atomref import fit_atomref
from mlip_transfer.energy_scale.correlation import (
    PAPER_RHO,
    bootstrap_pearson,
    energy_scale_correlation,
    pearson,
    referenced_energies,
)

ELEMENTS = ["Li", "Na", "Mg", "Al", "Si", "Fe", "Ni", "O", "S", "Cl"]


def test_pearson_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = 0.3 * x + rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    with pytest.raises(DataError, match="constant"):
        pearson([1, 1, 1], [1, 2, 3])
    with pytest.raises(DataError, match="index 1"):
        pearson([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(DataError, match="3 values but y has 2"):
        pearson([1, 2, 3], [1, 2])


def test_bootstrap_interval_contains_rho_and_is_seeded():
    rng = np.random.default_rng(1)
    x = rng.normal(size=80)
    y = 0.5 * x + rng.normal(size=80)
    first = bootstrap_pearson(x, y, n_boot=500, seed=3)
    assert first["low"] < first["rho"] < first["high"] and first["n"] == 80
    assert first["rho"] == pytest.approx(pearson(x, y))
    assert bootstrap_pearson(x, y, n_boot=500, seed=3) == first
    assert bootstrap_pearson(x, y, n_boot=500, seed=4) != first
    wide = bootstrap_pearson(x, y, n_boot=500, seed=3, confidence=0.99)
    assert wide["low"] <= first["low"] and wide["high"] >= first["high"]


def _two_functionals(seed: int = 1, n: int = 200):
    """Binary materials whose energies are element references (unrelated between the two
    functionals) plus a shared interaction part: referencing must reveal the correlation."""
    rng = np.random.default_rng(seed)
    refs = {
        "gga": {el: rng.uniform(-9, -1) for el in ELEMENTS},
        "r2scan": {el: rng.uniform(-30, -2) for el in ELEMENTS},
    }
    rows = []
    for i in range(n):
        a, b = rng.choice(ELEMENTS, 2, replace=False)
        comp = Composition({a: int(rng.integers(1, 4)), b: int(rng.integers(1, 4))})
        interaction = rng.normal(0, 0.5)
        for functional, scale in (("gga", 1.0), ("r2scan", 1.2)):
            ref = sum(comp.get_atomic_fraction(el) * refs[functional][el] for el in (a, b))
            energy = ref + scale * interaction + rng.normal(0, 0.05)
            rows.append({
                "material_id": f"m-{i:03d}", "formula": comp.reduced_formula, "functional": functional,
                "relaxed_energy_per_atom": energy, "relaxed_energy_per_atom_uncorrected": energy + 0.1,
            })
    return pd.DataFrame(rows), refs


def test_referencing_recovers_a_hidden_correlation():
    materials, refs = _two_functionals()
    result = energy_scale_correlation(materials, refs, n_boot=200)
    assert result["n"] == 200 and result["dropped"] == []
    assert abs(result["raw"]["rho"]) < 0.4
    assert result["scaled"]["rho"] > 0.98
    assert result["paper"] == PAPER_RHO == {"raw": 0.0917, "scaled": 0.9250}
    # The same with AtomRefs fitted to each functional's own energies (Eq. 2), as in the paper.
    fits = {}
    for functional in ("gga", "r2scan"):
        rows = materials[materials["functional"] == functional]
        fits[functional] = fit_atomref(rows["formula"], rows["relaxed_energy_per_atom"])
    fitted = energy_scale_correlation(materials, fits, n_boot=200)
    assert fitted["raw"]["rho"] == pytest.approx(result["raw"]["rho"])
    assert fitted["scaled"]["rho"] > 0.95


def test_referenced_energies_layout_and_missing_elements():
    materials, refs = _two_functionals(n=20)
    table = referenced_energies(materials, refs, corrected=False)
    assert list(table.columns) == [
        "material_id", "formula", "raw_gga", "raw_r2scan", "scaled_gga", "scaled_r2scan"
    ]
    gga = materials[materials["functional"] == "gga"].set_index("material_id")
    first = table.iloc[0]
    assert first["raw_gga"] == pytest.approx(gga.at[first["material_id"], "relaxed_energy_per_atom_uncorrected"])
    frac = Composition(first["formula"]).fractional_composition
    shift = sum(frac[el] * refs["gga"][el.symbol] for el in frac)
    assert first["scaled_gga"] == pytest.approx(first["raw_gga"] - shift)

    partial = {"gga": refs["gga"], "r2scan": {k: v for k, v in refs["r2scan"].items() if k != "O"}}
    with pytest.raises(DataError, match="r2scan AtomRef energy for \\['O'\\]"):
        referenced_energies(materials, partial)
    kept = referenced_energies(materials, partial, on_missing="drop")
    has_o = {mid for mid, f in zip(table["material_id"], table["formula"]) if "O" in Composition(f)}
    assert set(kept.attrs["dropped"]) == has_o and not has_o & set(kept["material_id"])
