"""The Langevin NVT set-up shared by the reference sampling and the stability runs."""

import numpy as np
import pytest
from ase import units
from ase.constraints import FixCom

from mlip_transfer.elements.md import MDSettings
from mlip_transfer.elements.sampling import LangevinSettings, SamplingSettings, langevin_nvt
from mlip_transfer.elements.stillinger_weber import diamond_cell


def test_both_settings_carry_the_shared_integrator_defaults():
    for settings in (SamplingSettings(), MDSettings()):
        assert isinstance(settings, LangevinSettings)
        assert (settings.timestep_fs, settings.friction_per_fs) == (2.0, 0.02)


def test_langevin_set_up_has_no_drift_and_repeats_with_the_seed():
    def start(seed):
        atoms = diamond_cell("Si", repeats=1)
        dynamics = langevin_nvt(
            atoms, temperature=600.0, settings=LangevinSettings(), rng=np.random.default_rng(seed)
        )
        return atoms, dynamics

    atoms, dynamics = start(1)
    assert isinstance(atoms.constraints[0], FixCom)
    assert np.abs(atoms.get_momenta().sum(axis=0)).max() == pytest.approx(0.0, abs=1e-10)
    assert dynamics.dt == pytest.approx(LangevinSettings().timestep_fs * units.fs)
    np.testing.assert_array_equal(atoms.get_momenta(), start(1)[0].get_momenta())
