"""Energy-scale figures (paper Figs. 1a-d, 2a-b, MatPES check): plot functions and notebooks.

A small synthetic dataset and synthetic versions of the files in ``<output>/energy_scale/``
are generated here with the library's own fits (``fit_atomref``, ``referenced_energies``,
``energy_scale_correlation``, ``element_feature_importance``); nothing is shipped as data.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from figure_checks import cell_labels, offsets
from matplotlib.colors import to_rgba
from pymatgen.core import Composition, Element

from mlip_transfer.core.files import dumps_json
from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.data.dataset import Frame, write_frames, write_materials
from mlip_transfer.data.split import write_split
from mlip_transfer.energy_scale.atomref import N_ELEMENTS, fit_atomref
from mlip_transfer.energy_scale.correlation import (
    energy_scale_correlation,
    pearson,
    referenced_energies,
)
from mlip_transfer.energy_scale.importance import (
    SCALE_CORRECTED,
    SCALE_UNCORRECTED,
    element_feature_importance,
)
from mlip_transfer.plots import atomrefs as ar
from mlip_transfer.plots import energy_scale as es
from mlip_transfer.plots.figure_data import figure_summary
from mlip_transfer.plots.periodic_table import (
    BELOW_CUTOFF_COLOR,
    MISSING_COLOR,
    compact_number,
    ptable_heatmap,
)
from mlip_transfer.plots.style import save_figure

REPO = Path(__file__).resolve().parents[2]
# fmt: off
POOL = (
    "H", "Li", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "V", "Cr",
    "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Se", "Br", "Sr", "Mo", "Ag", "Sn", "Te", "I", "Ba", "W", "La", "Bi",
)
# fmt: on
R2SCAN_UNFITTED = ("Yb", "Po", "At", "Rn", "Fr", "Ra")  # weight ~0 in CHGNet's MP-r2SCAN AtomRef
ANION_CORRECTION = {"O": -0.687, "Cl": -0.614, "F": -0.46, "S": -0.5, "Se": -0.47, "Br": -0.53, "Te": -0.42}
U_CORRECTION = {"V": -1.7, "Cr": -1.9, "Mn": -1.7, "Fe": -2.3, "Co": -1.6, "Ni": -2.5, "Mo": -4.7, "W": -4.9}


def _true_references(rng):
    """Element -> (GGA reference, r2SCAN reference), eV/atom: tens of eV/atom apart."""
    refs = {}
    for z in range(1, N_ELEMENTS + 1):
        gga = rng.uniform(-10.0, -1.5)
        shift = rng.uniform(-30.0, -1.0) if z % 7 else rng.uniform(-70.0, -40.0)
        refs[Element.from_Z(z).symbol] = (gga, gga + shift)
    return refs


def make_inputs(root: Path, *, n_materials: int = 90, seed: int = 0) -> tuple[Path, Path]:
    """Write a synthetic dataset folder and energy-scale folder; return ``(data_dir, energy_dir)``."""
    rng = np.random.default_rng(seed)
    refs = _true_references(rng)
    data_dir, energy_dir = root / "data", root / "energy_scale"
    energy_dir.mkdir(parents=True)

    frames, rows, split, species_of = [], [], {}, {}
    for i in range(n_materials):
        material_id = f"mat-{i:03d}"
        elements = rng.choice(POOL, size=int(rng.integers(1, 4)), replace=False)
        species = [el for el in elements for _ in range(int(rng.integers(1, 4)))]
        if i == n_materials - 1:
            species.append("Xe")  # only in a test material: no refit AtomRef for Xe
        split[material_id] = "test" if i == n_materials - 1 else ("train" if i % 5 else "val")
        species_of[material_id] = species
        frac = {el: species.count(el) / len(species) for el in set(species)}
        binding = rng.normal(-0.8, 0.6) if len(frac) > 1 else rng.normal(0, 0.05)
        corr = sum(f * (ANION_CORRECTION.get(el, 0) + U_CORRECTION.get(el, 0)) for el, f in frac.items())
        corr *= any(el in ANION_CORRECTION for el in frac)
        for index, functional in enumerate(("gga", "r2scan")):
            relaxed = sum(f * refs[el][index] for el, f in frac.items()) + binding + rng.normal(0, 0.08)
            formation = binding + (corr if functional == "gga" else 0.0) + rng.normal(0, 0.03)
            rows.append(
                {
                    "material_id": material_id,
                    "formula": Composition("".join(species)).reduced_formula,
                    "functional": functional,
                    "relaxed_energy_per_atom": relaxed + (corr if functional == "gga" else 0.0),
                    "relaxed_energy_per_atom_uncorrected": relaxed,
                    "formation_energy_per_atom": formation,
                    "formation_energy_per_atom_uncorrected": formation - (corr if functional == "gga" else 0),
                    "is_elemental_reference": len(frac) == 1,
                }
            )
            for step in range(2):
                n = len(species)
                energy = (relaxed + 0.05 * (1 - step) + rng.normal(0, 0.02)) * n
                frames.append(
                    Frame(
                        frame_id=f"{material_id}-{functional}-{step}",
                        material_id=material_id,
                        functional=functional,
                        species=tuple(species),
                        lattice=np.eye(3) * 2.6 * n ** (1 / 3),
                        frac_coords=rng.random((n, 3)),
                        energy=energy,
                        energy_uncorrected=energy,
                        source="synthetic",
                    )
                )
    write_frames(data_dir / "frames.jsonl.gz", frames)
    materials = pd.DataFrame(rows)
    write_materials(data_dir / "materials.csv", materials)
    write_split(data_dir / "split.csv", split)
    SURROGATE_DEFAULT.write(data_dir)

    # atomrefs.csv / atomref_fits.json: Eq. 2 on training frames, beside "shipped" fits.
    table, fits, refit = [], {}, {}
    for index, functional in enumerate(("gga", "r2scan")):
        train = [f for f in frames if f.functional == functional and split[f.material_id] == "train"]
        fit = fit_atomref([f.species for f in train], [f.energy_per_atom for f in train])
        refit[functional] = fit
        fits[functional] = {
            "rank": fit.rank,
            "n_samples": fit.n_samples,
            "n_elements": fit.n_elements,
            "missing": fit.reasons,
            "residual_mae": fit.residual_mae,
            "residual_rmse": fit.residual_rmse,
        }
        for el, value in fit.energies.items():
            table.append((functional, "refit", el, Element(el).Z, value, fit.counts[el]))
        for el, pair in refs.items():
            if not (functional == "r2scan" and el in R2SCAN_UNFITTED):
                table.append(
                    (functional, "shipped", el, Element(el).Z, pair[index] + rng.normal(0, 0.3), np.nan)
                )
    atomrefs = pd.DataFrame(table, columns=["functional", "kind", "element", "Z", "energy", "n_structures"])
    atomrefs.to_csv(energy_dir / "atomrefs.csv", index=False)
    (energy_dir / "atomref_fits.json").write_text(json.dumps(fits, indent=2))

    shipped = {
        functional: dict(zip(group["element"], group["energy"]))
        for functional, group in atomrefs[atomrefs["kind"] == "shipped"].groupby("functional")
    }
    referenced = referenced_energies(materials, refit, on_missing="drop")
    referenced.to_csv(energy_dir / "referenced_energies.csv", index=False)
    correlation = {"data_source": SURROGATE_DEFAULT.name}
    for kind, references in (("refit", refit), ("shipped", shipped)):
        result = energy_scale_correlation(materials, references, on_missing="drop", n_boot=200)
        correlation[kind] = {"raw": result["raw"], "scaled": result["scaled"]}
    correlation["paper"] = result["paper"]
    (energy_dir / "correlation.json").write_text(json.dumps(correlation, indent=2))

    # element_importance.csv: a tree on the formation-energy difference, with/without corrections.
    parts = []
    wide = materials[~materials["is_elemental_reference"]].pivot(index="material_id", columns="functional")
    formulas = [Composition("".join(species_of[mid])) for mid in wide.index]
    for corrected, column, scale in (
        (True, "formation_energy_per_atom", SCALE_CORRECTED),
        (False, "formation_energy_per_atom_uncorrected", SCALE_UNCORRECTED),
    ):
        delta = wide[(column, "gga")] - wide[(column, "r2scan")]
        # Rescaled from the paper's 34,927 materials to this dataset's size (values ~0-1).
        part = element_feature_importance(formulas, delta.to_numpy(), scale=scale * len(wide) / 34_927 * 40)
        parts.append(part.assign(corrections=corrected))
    importance = pd.concat(parts)[["corrections", "element", "importance", "atom_count", "normalised"]]
    importance.to_csv(energy_dir / "element_importance.csv", index=False)

    # matpes_shift.csv/json: DFT elemental shift near the true one, against the fitted shifts.
    both = sorted(set(refit["gga"].energies) & set(refit["r2scan"].energies), key=lambda el: Element(el).Z)
    pbe = np.array([refs[el][0] + rng.normal(0, 0.3) for el in both])
    r2scan = np.array([refs[el][1] + rng.normal(0, 0.6) for el in both])
    shift = pd.DataFrame(
        {
            "element": both,
            "matpes_pbe": pbe,
            "matpes_r2scan": r2scan,
            "matpes_shift": r2scan - pbe,
            "refit_shift": [refit["r2scan"].energies[el] - refit["gga"].energies[el] for el in both],
            "shipped_shift": [shipped["r2scan"].get(el, np.nan) - shipped["gga"][el] for el in both],
        }
    )
    shift.to_csv(energy_dir / "matpes_shift.csv", index=False)
    stats = {}
    for kind in ("refit", "shipped"):
        ok = shift[np.isfinite(shift[f"{kind}_shift"])]
        stats[kind] = {
            "pearson": pearson(ok["matpes_shift"], ok[f"{kind}_shift"]),
            "mad": float((ok[f"{kind}_shift"] - ok["matpes_shift"]).abs().mean()),
            "n": len(ok),
        }
    (energy_dir / "matpes_shift.json").write_text(json.dumps(stats, indent=2))
    return data_dir, energy_dir


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("energy_scale_inputs"))


def _read(energy_dir: Path, name: str):
    path = energy_dir / name
    return json.loads(path.read_text()) if name.endswith(".json") else pd.read_csv(path)


def test_synthetic_inputs_look_like_the_paper(inputs):
    _, energy_dir = inputs
    correlation = _read(energy_dir, "correlation.json")
    assert correlation["refit"]["raw"]["rho"] < 0.7 < correlation["refit"]["scaled"]["rho"]
    atomrefs = _read(energy_dir, "atomrefs.csv")
    refit = atomrefs[atomrefs["kind"] == "refit"]
    assert "Xe" not in set(refit["element"])  # absent from training: no row, not a zero
    assert "Yb" not in set(atomrefs.query("functional == 'r2scan'")["element"])


def test_each_plot_function_draws_its_data(inputs, tmp_path):
    """Each figure, read back from the figure object: the labelled axes and the plotted numbers
    equal the input tables; the summary saved beside the image is the same record."""
    data_dir, energy_dir = inputs
    from mlip_transfer.data.summary import frame_table

    frames = frame_table(data_dir / "frames.jsonl.gz")
    counts = es.structure_element_counts(frames, "r2scan")
    referenced = _read(energy_dir, "referenced_energies.csv")
    atomrefs = _read(energy_dir, "atomrefs.csv")
    importance = _read(energy_dir, "element_importance.csv")
    matpes = _read(energy_dir, "matpes_shift.csv")
    correlation = _read(energy_dir, "correlation.json")
    source = SURROGATE_DEFAULT
    figures = {
        "occurrence": es.plot_element_occurrence(counts, cutoff=3, source=source, n_structures=90),
        "relaxed": es.plot_relaxed_energies(referenced, source=source),
        "atomrefs": ar.plot_atomrefs(atomrefs, source=source),
        "referenced": ar.plot_referenced_energies(referenced, correlation, source=source),
        "importance": es.plot_element_importance(importance, source=source),
        "matpes": ar.plot_matpes_shift(matpes, _read(energy_dir, "matpes_shift.json"), source=source),
    }
    drawn = {}
    for name, fig in figures.items():
        # Every figure carries the data-source banner.
        assert any(SURROGATE_DEFAULT.banner in text.get_text() for text in fig.texts), name
        save_figure(fig, tmp_path / name, ["png"], dpi=60)
        drawn[name] = figure_summary(fig)  # of the drawn (and closed) figure
        assert json.loads((tmp_path / f"{name}.json").read_text()) == json.loads(dumps_json(drawn[name]))

    # Fig. 1a: every element's structure count written in its cell.
    cells = cell_labels(drawn["occurrence"]["axes"][0])
    assert {el: cells.get(el) for el in counts} == {el: compact_number(n) for el, n in counts.items()}

    # Fig. 1b: one point per material at (r2SCAN, GGA) raw energy; the histograms count them all.
    scatter, top, _ = drawn["relaxed"]["axes"]
    assert scatter["xlabel"].startswith("r2SCAN") and scatter["ylabel"].startswith("GGA")
    np.testing.assert_allclose(offsets(scatter), referenced[["raw_r2scan", "raw_gga"]].to_numpy())
    assert sum(top["bars"][0]["heights"]) == len(referenced)

    # Fig. 2a: the refit r2SCAN AtomRef line at each Z is the fitted energy (NaN where not fitted).
    refs, shifts = drawn["atomrefs"]["axes"]
    lines = {line["label"]: line for line in refs["lines"]}
    refit = atomrefs.query("functional == 'r2scan' and kind == 'refit'").set_index("Z")["energy"]
    (label,) = [key for key in lines if key.startswith("r2SCAN, refit")]
    y = pd.Series(lines[label]["y"], index=np.array(lines[label]["x"]).astype(int))
    np.testing.assert_allclose(y[refit.index], refit)
    assert y.drop(refit.index).isna().all()
    assert shifts["ylabel"].startswith("r2SCAN − GGA")

    # Fig. 2b: raw and scaled panels plot every material; the CI text is the correlation's.
    raw, scaled = (drawn["referenced"]["axes"][i] for i in (0, 3))
    np.testing.assert_allclose(offsets(scaled), referenced[["scaled_r2scan", "scaled_gga"]].to_numpy())
    assert raw["scatter"][0]["n_points"] == len(referenced)
    assert f"ρ = {correlation['refit']['scaled']['rho']:.3f}" in scaled["texts"][0]

    # Figs. 1c/1d: each panel labels exactly the elements of its half of the table.
    for ax, corrected in zip(drawn["importance"]["axes"], (True, False)):
        rows = importance[importance["corrections"].astype(str) == str(corrected)]
        labels = cell_labels(ax)
        assert set(labels) == set(rows["element"]), corrected
        top = rows.loc[rows["normalised"].idxmax()]
        assert labels[top["element"]] == f"{top['normalised']:.2f}", corrected

    # MatPES check: refit and shipped AtomRef shifts against the MatPES shift, one point per element.
    shift = drawn["matpes"]["axes"][0]
    for index, column in enumerate(("refit_shift", "shipped_shift")):
        np.testing.assert_allclose(offsets(shift, index), matpes[["matpes_shift", column]].to_numpy())


def test_structure_counts_count_frames_of_one_functional():
    frames = pd.DataFrame(
        {
            "material_id": ["a", "a", "b", "b"],
            "functional": ["r2scan", "r2scan", "r2scan", "gga"],
            "elements": [("Fe", "O"), ("Fe", "O"), ("O",), ("Li",)],
        }
    )
    assert es.structure_element_counts(frames, "r2scan") == {"Fe": 2, "O": 3}


def test_periodic_table_greys_missing_and_below_cutoff_elements():
    fig, ax = plt.subplots()
    ptable_heatmap({"Fe": 5000.0, "O": 100.0, "Li": float("nan")}, ax=ax, log=True, cutoff=1000)
    faces = {
        text.get_text(): patch.get_facecolor()
        for text, patch in zip([t for t in ax.texts if t.get_fontsize() == 10], ax.patches)
    }
    assert faces["O"] == to_rgba(BELOW_CUTOFF_COLOR)
    assert faces["Li"] == faces["Xe"] == to_rgba(MISSING_COLOR)
    assert faces["Fe"] not in (to_rgba(BELOW_CUTOFF_COLOR), to_rgba(MISSING_COLOR))
    assert len(ax.patches) == 118
    plt.close(fig)


def test_fig2b_heads_its_comparison_with_the_shipped_atomref_rho():
    """The number comparable to the paper's 0.925 is ρ with fixed (shipped) AtomRefs; the
    refit is fitted to the same energies, so it is shown as in-sample, after it."""
    referenced = pd.DataFrame({"raw_r2scan": [-1.0, -2.0, -3.0, -4.0],
                               "raw_gga": [-1.5, -2.1, -3.3, -3.9],
                               "scaled_r2scan": [0.1, 0.2, 0.3, 0.4],
                               "scaled_gga": [0.12, 0.18, 0.33, 0.41]})

    def stats(rho):
        return {"rho": rho, "low": rho - 0.01, "high": rho + 0.01, "n": 4}

    correlation = {"refit": {"raw": stats(0.2), "scaled": stats(0.99)},
                   "shipped": {"raw": stats(0.2), "scaled": stats(0.81)},
                   "paper": {"raw": 0.0917, "scaled": 0.925}}
    fig = ar.plot_referenced_energies(referenced, correlation, source=SURROGATE_DEFAULT)
    (box,) = [t.get_text() for ax in fig.axes for t in ax.texts if "raw → scaled" in t.get_text()]
    plt.close(fig)
    lines = box.splitlines()
    shipped = next(i for i, line in enumerate(lines) if line.startswith("shipped AtomRefs"))
    refit = next(i for i, line in enumerate(lines) if line.startswith("refit (in-sample)"))
    assert shipped < refit and "(headline)" in lines[shipped] and "0.81" in lines[shipped]
    assert "0.99" in lines[refit]
