"""NVT stability counting of the retention report on built cases (ASE calculators, no model)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes

from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.retention_md import count_stable, md_atoms, nvt_runs
from mlip_transfer.transfer.retention_settings import NVTSettings

SETTINGS = NVTSettings(structures=1, steps=40, timestep_fs=1.0, temperature=300, check_every=5)


class Pull(Calculator):
    """Springs of stiffness ``k`` to the start positions plus a pull of ``pull`` eV/Å toward
    the centroid; NaN forces from call ``nan_after`` on."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, *, k=5.0, pull=0.0, nan_after=None):
        super().__init__()
        self.k, self.pull, self.nan_after, self.calls, self.start = k, pull, nan_after, 0, None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        positions = self.atoms.positions
        if self.start is None:
            self.start = positions.copy()
        offset = positions - self.start
        inward = positions.mean(axis=0) - positions
        norm = np.linalg.norm(inward, axis=1, keepdims=True) + 1e-9
        forces = -self.k * offset + self.pull * inward / norm
        self.calls += 1
        if self.nan_after is not None and self.calls > self.nan_after:
            forces = forces * np.nan
        energy = 0.5 * self.k * float((offset**2).sum())
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}


def copper() -> Frame:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)  # 4 atoms
    return Frame(frame_id="cu-0", material_id="cu", functional="r2scan",
                 species=tuple(atoms.get_chemical_symbols()), lattice=atoms.cell.array,
                 frac_coords=atoms.get_scaled_positions(), energy=None)


def test_small_cells_are_repeated_to_the_minimum_size():
    atoms = md_atoms(copper(), min_atoms=8)
    assert len(atoms) == 8 and sorted(atoms.cell.lengths()) == pytest.approx([3.6, 3.6, 7.2])


def test_stable_runaway_overlapping_and_nan_runs_are_counted_with_their_time_to_failure():
    import dataclasses

    import pandas as pd

    start = [copper()]
    squeezed = copper()
    coords = squeezed.frac_coords.copy()
    coords[1] = coords[0] + [0.4 / 3.6, 0, 0]  # two atoms 0.4 Å apart (min_distance 0.6)
    squeezed = dataclasses.replace(squeezed, frac_coords=coords)
    runs = [
        nvt_runs(None, start, SETTINGS, calculator=Pull()),
        nvt_runs(None, start, SETTINGS, calculator=Pull(k=0.0, pull=400.0)),
        nvt_runs(None, [squeezed], SETTINGS, calculator=Pull(k=50.0)),
        nvt_runs(None, start, SETTINGS, calculator=Pull(nan_after=12)),
    ]
    table = pd.concat(runs, ignore_index=True)
    assert list(table["stable"]) == [True, False, False, False]
    assert list(table["reason"]) == ["", "runaway", "overlap", "nan"]
    assert table.loc[0, "steps"] == 40 and pd.isna(table.loc[0, "failed_at_ps"])
    assert table.loc[0, "max_temperature"] < 900  # 3 x 300 K
    # Failures are caught at a check (every 5 fs) before the run's 40 fs end: the squeezed
    # pair at the first, NaN forces from the 13th call at the third.
    assert 0 < table.loc[1, "failed_at_ps"] < 0.040
    assert table.loc[2, "failed_at_ps"] == pytest.approx(0.005)
    assert table.loc[3, "failed_at_ps"] == pytest.approx(0.015)
    counted = count_stable(table)
    assert counted == {"n_runs": 4, "n_stable": 1,
                       "failures": {"runaway": 1, "overlap": 1, "nan": 1},
                       "first_failure_ps": pytest.approx(0.005)}
