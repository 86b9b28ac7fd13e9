import random

import pytest

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.split import read_split, split_materials, write_split

IDS = [f"mp-{i}" for i in range(1000)]


def test_fractions_are_met_to_within_one_material():
    assignment = split_materials(IDS, fractions=(0.8, 0.1, 0.1), seed=1)
    counts = {name: list(assignment.values()).count(name) for name in ("train", "val", "test")}
    assert counts == {"train": 800, "val": 100, "test": 100}


def test_split_does_not_depend_on_record_order():
    shuffled = IDS.copy()
    random.Random(5).shuffle(shuffled)
    assert split_materials(shuffled, seed=3) == split_materials(IDS, seed=3)


def test_seed_changes_the_split_and_same_seed_repeats_it():
    assert split_materials(IDS, seed=1) == split_materials(IDS, seed=1)
    assert split_materials(IDS, seed=1) != split_materials(IDS, seed=2)


def test_duplicated_ids_count_once():
    assert split_materials(IDS + IDS[:10], seed=0) == split_materials(IDS, seed=0)


def test_forced_ids_land_in_training_and_count_towards_it():
    forced = [f"mp-{i}" for i in range(0, 1000, 10)]
    assignment = split_materials(IDS, seed=0, force_train=forced)
    assert all(assignment[i] == "train" for i in forced)
    assert list(assignment.values()).count("train") == 800


def test_forcing_unknown_ids_is_an_error():
    with pytest.raises(DataError, match="force_train"):
        split_materials(IDS, force_train=["not-there"])


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.8, 0.1, 0.2), (1.1, -0.05, -0.05)])
def test_bad_fractions_are_rejected(fractions):
    with pytest.raises(ConfigError, match="fractions"):
        split_materials(IDS, fractions=fractions)


def test_split_file_round_trips_and_rejects_unknown_split_names(tmp_path):
    assignment = split_materials(IDS[:20], seed=0)
    write_split(tmp_path / "split.csv", assignment)
    assert read_split(tmp_path / "split.csv") == assignment
    (tmp_path / "bad.csv").write_text("material_id,split\nmp-1,training\n")
    with pytest.raises(DataError, match="'mp-1'.*split"):
        read_split(tmp_path / "bad.csv")
