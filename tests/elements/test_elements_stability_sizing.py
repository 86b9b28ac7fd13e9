"""Si -> Ge: how many MD runs tell a failure rate from none, and RDF/ADF per seed (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_transfer.claims.verdicts import wilson_interval
from mlip_transfer.elements.stability_sizing import measured_core_s_per_step, stability_sizing
from mlip_transfer.elements.stillinger_weber import diamond_cell
from mlip_transfer.elements.structure import compare_structures


@pytest.mark.parametrize("rate", [0.35, 0.65])
def test_needed_runs_are_the_fewest_whose_intervals_do_not_overlap(rate):
    n = stability_sizing(failure_rate=rate, runs=4, duration_ps=1, timestep_fs=2)["needed_runs"]

    def apart(runs):
        return wilson_interval(0, runs)[1] < wilson_interval(round(rate * runs), runs)[0]

    assert apart(n) and not apart(n - 1)


def test_35_percent_needs_more_runs_than_65_and_4_runs_cannot_tell_either():
    low = stability_sizing(failure_rate=0.35, runs=4, duration_ps=1, timestep_fs=2)
    high = stability_sizing(failure_rate=0.65, runs=4, duration_ps=1, timestep_fs=2)
    assert low["needed_runs"] > high["needed_runs"] > 4
    assert not low["enough_runs"] and not low["paper_length"]
    assert "cannot show" in low["text"] and "too few runs" in low["text"]
    # 0 of 4 failing is compatible with rates up to ~49 %: the 35 % cannot be excluded.
    assert low["interval_if_none_fail"][1] > 0.35


def test_the_study_scale_is_enough_and_its_cost_is_priced_from_the_step():
    paper = stability_sizing(failure_rate=0.35, runs=100, duration_ps=100, timestep_fs=1,
                             core_s_per_step=0.062)
    assert paper["enough_runs"] and paper["paper_length"] and "cannot" not in paper["text"]
    # 100 runs x 2 methods x 100,000 steps x 62 core-ms
    assert paper["config_core_h"] == pytest.approx(100 * 2 * 1e5 * 0.062 / 3600)
    assert paper["paper_core_h"] == pytest.approx(paper["needed_runs"] * 2 * 1e5 * 0.062 / 3600)


def test_step_cost_is_measured_from_the_run_records():
    records = [{"wall_s": 3.0, "steps": 50}, {"wall_s": 1.0, "steps": 50}, {"steps": 10}]
    assert measured_core_s_per_step(records) == pytest.approx(0.04)
    assert measured_core_s_per_step([{"steps": 3}]) is None


def _frames(path, cell_atoms, noise, seed, n=3):
    rng = np.random.default_rng(seed)
    positions = cell_atoms.positions + noise * rng.normal(size=(n, len(cell_atoms), 3))
    np.savez(path, positions=positions.astype(np.float32), cell=cell_atoms.cell.array)
    return path


def test_structure_distances_come_per_seed_with_their_spread(tmp_path):
    crystal = diamond_cell("Ge", repeats=2)
    reference = _frames(tmp_path / "ref.npz", crystal, 0.1, 0)
    close = _frames(tmp_path / "a_s0.npz", crystal, 0.1, 1)
    far = _frames(tmp_path / "a_s1.npz", crystal, 0.4, 2)
    empty = tmp_path / "a_s2.npz"
    np.savez(empty, positions=np.zeros((0, len(crystal), 3), np.float32), cell=crystal.cell.array)
    _, out = compare_structures(frames={"a": [close, far, empty]}, reference=reference,
                                rdf_max=5.0, rdf_bins=50, adf_cutoff=3.2, adf_bins=36)
    entry = out["a"]
    assert entry["seed_files"] == ["a_s0", "a_s1"]  # the seed without stable frames left out
    for kind in ("rdf", "adf"):
        near, distant = entry[f"{kind}_difference_seeds"]
        assert near < distant
        assert entry[f"{kind}_difference_seed_min"] == near
        assert entry[f"{kind}_difference_seed_max"] == distant
        assert entry[f"{kind}_difference_seed_mean"] == pytest.approx((near + distant) / 2)
    assert out["stillinger-weber"]["rdf_difference"] == 0.0
