import numpy as np
import pandas as pd
import pytest

from mlip_transfer.data.dataset import Frame
from mlip_transfer.energy_scale.refits import (
    atomref_table,
    fit_functional_atomrefs,
    fit_summary,
    read_atomref_table,
)

TRUE = {"gga": {"Na": -1.3, "Cl": -1.8, "O": -4.9}, "r2scan": {"Na": -20.1, "Cl": -30.5, "O": -70.2}}
SPECIES = [("Na",), ("Cl", "Cl"), ("O", "O"), ("Na", "Cl"), ("Na", "Na", "O"), ("Na", "O", "O", "Cl")]


def frames_for(functional, offset=0.0):
    frames = []
    for index, species in enumerate(SPECIES):
        energy = sum(TRUE[functional][el] for el in species) + offset * len(species)
        frames.append(
            Frame(
                frame_id=f"m{index}-{functional}",
                material_id=f"m{index}",
                functional=functional,
                species=species,
                lattice=np.eye(3) * 5,
                frac_coords=np.random.default_rng(index).random((len(species), 3)),
                energy=energy,
            )
        )
    return frames


def materials_for(functional):
    rows = []
    for index, species in enumerate(SPECIES):
        e = np.mean([TRUE[functional][el] for el in species])
        formula = "".join(species)
        rows.append(
            {
                "material_id": f"m{index}",
                "formula": formula,
                "functional": functional,
                "relaxed_energy_per_atom": e,
                "relaxed_energy_per_atom_uncorrected": e,
                "formation_energy_per_atom": 0.0,
                "formation_energy_per_atom_uncorrected": 0.0,
                "is_elemental_reference": len(set(species)) == 1,
            }
        )
    return pd.DataFrame(rows)


def test_refit_uses_only_the_fit_split_and_recovers_the_references():
    split = {f"m{i}": "train" for i in range(6)}
    # A test-split frame with a wild energy must not enter the fit.
    outlier = frames_for("r2scan", offset=100.0)[0]
    outlier = Frame(**{**outlier.__dict__, "material_id": "m99", "frame_id": "x"})
    split["m99"] = "test"
    frames = frames_for("gga") + frames_for("r2scan") + [outlier]
    fits = fit_functional_atomrefs(frames, materials_for("gga"), split=split, fit_split="train")
    for functional in ("gga", "r2scan"):
        fit, fit_on = fits[functional]
        assert fit.energies == pytest.approx(TRUE[functional], abs=1e-9)
        assert "6 frames" in fit_on


def test_functional_without_frames_falls_back_to_relaxed_materials_and_says_so():
    split = {f"m{i}": "train" for i in range(6)}
    materials = pd.concat([materials_for("gga"), materials_for("r2scan")])
    fits = fit_functional_atomrefs(frames_for("r2scan"), materials, split=split)
    fit, fit_on = fits["gga"]
    assert "no frames" in fit_on
    assert fit.energies == pytest.approx(TRUE["gga"], abs=1e-9)
    assert fit_summary(fits)["gga"]["fit_on"] == fit_on


def test_atomref_table_round_trips_refit_and_shipped(tmp_path):
    split = {f"m{i}": "train" for i in range(6)}
    fits = fit_functional_atomrefs(frames_for("gga") + frames_for("r2scan"), materials_for("gga"), split=split)
    table = atomref_table({f: fit for f, (fit, _) in fits.items()})
    table.to_csv(tmp_path / "a.csv", index=False)
    loaded = read_atomref_table(tmp_path / "a.csv")
    assert loaded[("r2scan", "refit")] == pytest.approx(TRUE["r2scan"])
    assert len(loaded[("gga", "shipped")]) == 94
    # CHGNet's MP-r2SCAN fit leaves out elements absent from MP-r2SCAN (Yb, Po, ...), not zero.
    assert "Yb" not in loaded[("r2scan", "shipped")]
