"""The per-element report on tiny synthetic data whose true shifts are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.energy_scale.compositions import composition_matrix
from mlip_transfer.energy_scale.element_outputs import element_markdown, write_element_report
from mlip_transfer.energy_scale.element_report import (
    ADD_DATA,
    CHECK_DFT,
    ENOUGH,
    ElementCriteria,
    element_report,
    matpes_expected_shifts,
)

REFERENCE = Path(__file__).resolve().parents[2] / "resources" / "reference"
# Made-up "source AtomRef" and true shifts (label − source prediction per unit fraction).
SOURCE = {"Li": -1.9, "O": -5.0, "Mg": -2.0, "Al": -3.7, "Si": -5.4, "Fe": -6.5, "Cu": -3.0}
TRUE = {"Li": 0.8, "O": -1.0, "Mg": 0.5, "Al": 0.2, "Si": -0.3, "Fe": -2.1, "Cu": -0.7}


def _data(materials, *, noise=0.0, seed=0, shift=None):
    """Frames of ``materials`` (id -> (composition, n_frames)); labels = prediction + true
    shift (+ ``shift`` on one element, + noise)."""
    rng = np.random.default_rng(seed)
    comps, groups = [], []
    for mid, (comp, n) in materials.items():
        comps += [comp] * n
        groups += [mid] * n
    matrix, elements = composition_matrix(comps)
    sizes = np.array([sum(c.values()) for c in comps], dtype=float)
    true = np.array([TRUE[el] + (shift or {}).get(el, 0.0) for el in elements])
    pred = rng.normal(-4.0, 1.0, len(comps))
    labels = pred + matrix @ true + rng.normal(0.0, noise, len(comps))
    return {
        "matrix": matrix, "elements": elements, "atoms": matrix * sizes[:, None], "labels": labels,
        "predictions": pred, "source": np.array([SOURCE[el] for el in elements]), "groups": groups,
    }  # fmt: skip


def _well_covered(n_per_element=6, frames=3):
    """Each of O, Al, Fe, Cu in many materials of varying ratios, elementals included."""
    materials = {}
    for i in range(n_per_element):
        materials[f"al{i}"] = ({"Al": 1}, frames)
        materials[f"o{i}"] = ({"O": 2}, frames)
        materials[f"fe{i}"] = ({"Fe": 1}, frames)
        materials[f"cu{i}"] = ({"Cu": 1}, frames)
        materials[f"alo{i}"] = ({"Al": 2, "O": 3 + i}, frames)
        materials[f"feo{i}"] = ({"Fe": 1 + i, "O": 1}, frames)
        materials[f"cuo{i}"] = ({"Cu": 2, "O": 1 + i}, frames)
    return materials


def test_collinear_pair_and_single_frame_element_are_flagged():
    materials = _well_covered()
    # Mg and Si only ever in Mg2Si: their references are not separately determined.
    materials |= {f"mg2si{i}": ({"Mg": 2, "Si": 1}, 3) for i in range(4)}
    materials["li2o"] = ({"Li": 2, "O": 1}, 1)  # Li: one frame
    report = element_report(**_data(materials, noise=0.002), criteria=ElementCriteria(n_resamples=100))
    mg, si, li = report.row("Mg"), report.row("Si"), report.row("Li")
    assert mg.collinear and si.collinear and mg.partners == ["Si"] and si.partners == ["Mg"]
    assert mg.residual_shift is None and mg.recommendation == ADD_DATA
    assert any("always occurs with Si" in reason for reason in mg.reasons)
    assert (li.n_frames, li.n_atoms, li.collinear, li.recommendation) == (1, 2, False, ADD_DATA)
    assert any("only 1 frame" in reason for reason in li.reasons)
    assert li.residual_shift == pytest.approx(TRUE["Li"], abs=0.05)  # determined, but by one frame
    for el in ("O", "Al", "Fe", "Cu"):
        row = report.row(el)
        assert (row.collinear, row.recommendation) == (False, ENOUGH), row
    assert report.counts[ADD_DATA] == 3 and report.counts["collinear"] == 2
    assert [row.element for row in report.rows] == ["Li", "O", "Mg", "Al", "Si", "Fe", "Cu"]


def test_five_ev_shift_on_one_element_is_the_only_settings_mismatch():
    materials = _well_covered() | {f"sio{i}": ({"Si": 1, "O": 1 + i}, 3) for i in range(6)}
    materials |= {f"si{i}": ({"Si": 1}, 3) for i in range(3)}
    # The expected shifts scatter a little around the truth, as real DFT references would.
    rng = np.random.default_rng(3)
    expected = {el: value + rng.normal(0, 0.05) for el, value in TRUE.items()}
    criteria = ElementCriteria(n_resamples=100)
    clean = element_report(**_data(materials, noise=0.005), expected=expected, criteria=criteria)
    assert clean.counts["mismatch"] == 0 and clean.counts[CHECK_DFT] == 0
    shifted = element_report(
        **_data(materials, noise=0.005, shift={"Si": 5.0}), expected=expected, criteria=criteria
    )
    assert [row.element for row in shifted.rows if row.mismatch] == ["Si"]
    si = shifted.row("Si")
    assert si.recommendation == CHECK_DFT and si.deviation == pytest.approx(5.0, abs=0.2)
    assert si.robust_z > criteria.mismatch_z
    assert all(row.recommendation == ENOUGH for row in shifted.rows if row.element != "Si")


def test_bootstrap_intervals_cover_the_truth_and_shrink_with_more_data():
    criteria = ElementCriteria(n_resamples=200, max_interval=10.0)
    covered, widths = [], {3: [], 12: []}
    for seed in range(10):
        for n, found in widths.items():
            data = _data(_well_covered(n, frames=2), noise=0.05, seed=seed)
            for row in element_report(**data, criteria=criteria).rows:
                covered.append(row.residual_low <= TRUE[row.element] <= row.residual_high)
                found.append(row.residual_high - row.residual_low)
    assert np.mean(covered) >= 0.85  # nominal 95 %; percentile bootstraps undercover slightly
    assert np.median(widths[12]) < 0.7 * np.median(widths[3])


def test_frames_resampling_and_no_bootstrap():
    data = _data(_well_covered(3), noise=0.01)
    by_frame = element_report(**data, criteria=ElementCriteria(n_resamples=50, resample="frames", seed=1))
    assert all(row.residual_low is not None and row.determined_share == 1.0 for row in by_frame.rows)
    bare = element_report(**data, criteria=ElementCriteria(n_resamples=0))
    assert all(row.residual_low is None and row.determined_share is None for row in bare.rows)
    assert bare.row("O").residual_shift == pytest.approx(TRUE["O"], abs=0.02)
    # Eq. 2 shift = refit on the labels − source AtomRef; the labels here hold a random GNN
    # part, so it differs from the residual shift (what the residual fit is for).
    assert bare.row("O").eq2_shift != pytest.approx(bare.row("O").residual_shift, abs=0.05)


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ConfigError, match="resample"):
        ElementCriteria(resample="atoms")
    data = _data(_well_covered(2))
    data["groups"] = data["groups"][:-1]
    with pytest.raises(DataError, match="inconsistent"):
        element_report(**data)


def test_outputs_are_standard_json_csv_markdown_and_a_figure(tmp_path):
    materials = _well_covered(3) | {"li2o": ({"Li": 2, "O": 1}, 1)}
    report = element_report(**_data(materials, noise=0.01), expected=TRUE, expected_label="truth",
                            criteria=ElementCriteria(n_resamples=20))
    paths = write_element_report(report, tmp_path / "out", title="synthetic")
    record = json.loads(paths["elements.json"].read_text(), parse_constant=_refuse)
    assert record["counts"] == report.counts and len(record["elements"]) == 5
    assert record["elements"][0]["element"] == "Li" and record["expected_shift_from"] == "truth"
    table = pd.read_csv(paths["elements.csv"])
    assert list(table["element"]) == ["Li", "O", "Al", "Fe", "Cu"]
    assert {"n_frames", "n_atoms", "residual_low", "collinear", "recommendation"} <= set(table.columns)
    assert paths["elements.png"].read_bytes()[:4] == b"\x89PNG"
    assert "| Li | 1 | 2 |" in element_markdown(report)


def test_matpes_expected_shifts_are_r2scan_minus_pbe_ground_states():
    shifts = matpes_expected_shifts(
        REFERENCE / "MatPES-PBE-Element-Refs.json.gz", REFERENCE / "MatPES-r2SCAN-Element-Refs.json.gz"
    )
    assert len(shifts) == 89 and all(np.isfinite(list(shifts.values())))
    # r2SCAN energies sit below PBE's: little for H, tens of eV/atom for heavy elements.
    assert all(value < 0 for value in shifts.values()) and shifts["H"] > -1 > -20 > shifts["Pb"]


def _refuse(token):
    raise ValueError(f"non-standard JSON token {token}")
