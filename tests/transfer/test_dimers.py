"""The repulsive-wall flags of the retention report on constructed dimer curves (no model)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlip_transfer.core.errors import ConfigError
from mlip_transfer.transfer import dimers
from mlip_transfer.transfer.retention_settings import DimerSettings, RetentionSettings

SETTINGS = DimerSettings()
R = SETTINGS.distances


def morse(r, *, depth=2.0, r0=2.0, a=2.0):
    """A Morse pair curve: a wall of tens of eV at 0.6 Å."""
    return depth * (1 - np.exp(-a * (r - r0))) ** 2 - depth


def test_the_grid_and_the_box_keep_chgnet_images_out():
    assert R[0] == 0.6 and R[-1] == 3.0 and len(R) == 25
    with pytest.raises(ConfigError, match="periodic image"):
        DimerSettings(box=8.0)
    with pytest.raises(ConfigError, match="unknown keys"):
        RetentionSettings.from_config({"dimers": {"r_lo": 0.5}})


def test_a_rising_wall_is_kept_and_a_curve_falling_to_the_shortest_distance_is_lost():
    kept = dimers.wall_check(dimers.wall(R, morse(R)), settings=SETTINGS)
    assert kept["r_min"] == pytest.approx(2.0) and kept["wall_ev"] > 20
    assert kept["hole_ev"] == pytest.approx(0.0) and not kept["lost"] and kept["reason"] == ""
    # Attractive all the way in: the minimum is the shortest distance, there is no wall.
    falling = dimers.wall_check(dimers.wall(R, -5.0 / R), settings=SETTINGS)
    assert falling["r_min"] == pytest.approx(0.6) and falling["wall_ev"] == 0.0
    assert falling["lost"] and falling["reason"] == "no_wall"
    # A shallow bump of 0.5 eV below the minimum is no wall either (min_wall_ev 1).
    shallow = dimers.wall(R, np.minimum(morse(R), -1.5))
    assert shallow["wall_ev"] == pytest.approx(0.5)
    assert dimers.wall_check(shallow, settings=SETTINGS)["reason"] == "no_wall"


def test_a_wall_far_below_the_source_models_is_lost_and_a_hole_behind_a_high_barrier_is_not():
    source = dimers.wall(R, morse(R))
    weak = dimers.wall(R, 0.3 * morse(R))
    check = dimers.wall_check(weak, settings=SETTINGS, source=source)
    assert check["lost"] and check["reason"] == "weaker_than_source"
    assert check["source_wall_ev"] == pytest.approx(source["wall_ev"])
    # The same weak wall without a source to compare with is kept (it is still > 1 eV).
    assert not dimers.wall_check(weak, settings=SETTINGS)["lost"]
    # The source model's own turnover below 0.8 Å: a 10 eV barrier still keeps atoms apart,
    # and it is more than half the source's wall (a softer Morse curve here, 18.7 eV).
    soft = morse(R, a=1.0)
    holed = soft.copy()
    holed[R < 0.8] = holed[R == 0.8][0] - 5.0
    wall = dimers.wall(R, holed)
    assert wall["r_peak"] == pytest.approx(0.8) and wall["hole_ev"] == pytest.approx(5.0)
    assert wall["wall_ev"] == pytest.approx(soft[R == 0.8][0] + 2.0)
    check = dimers.wall_check(wall, settings=SETTINGS, source=dimers.wall(R, soft))
    assert not check["lost"] and check["source_wall_ev"] == pytest.approx(soft[0] + 2.0)
    # A NaN energy is reported as such, never as a kept wall.
    broken = morse(R)
    broken[3] = math.nan
    assert dimers.wall_check(dimers.wall(R, broken), settings=SETTINGS)["reason"] == "nan"


def test_the_wall_table_flags_per_element_against_the_source_curves():
    def curves(scale_o):
        return pd.DataFrame({
            "element": ["Si"] * len(R) + ["O"] * len(R),
            "distance": np.concatenate([R, R]),
            "energy": np.concatenate([morse(R), scale_o * morse(R)]),
        })

    table = dimers.wall_table(curves(0.2), settings=SETTINGS, source=curves(1.0))
    assert list(table["element"]) == ["Si", "O"]
    assert list(table["lost"]) == [False, True]
    assert list(table["reason"]) == ["", "weaker_than_source"]
