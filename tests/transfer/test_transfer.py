"""Which frames train, validate and test: seeded subsets that cover every element and nest."""

import random

import numpy as np
import pytest

from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.frames import frames_by_split, seeded_subset

ELEMENTS = ["Na", "Cl", "Li", "F", "Mg", "O", "Pm", "Si"]


def frame(index, species, functional="r2scan", material=None):
    n = len(species)
    return Frame(
        frame_id=f"f{index}",
        material_id=material or f"m{index // 3}",
        functional=functional,
        species=tuple(species),
        lattice=np.eye(3) * 4,
        frac_coords=np.linspace(0, 0.9, 3 * n).reshape(n, 3),
        energy=-3.0 * n,
    )


@pytest.fixture(scope="module")
def frames():
    rng = random.Random(1)
    common = ["Na", "Cl", "Li", "F", "Mg", "O"]
    pool = [frame(i, rng.sample(common, 2)) for i in range(200)]
    # Rare elements: one frame each, as an elemental reference would be.
    return pool + [frame(200, ["Pm"]), frame(201, ["Si", "Si"])]


def test_subsets_cover_every_element_nest_and_ignore_order(frames):
    sizes = [10, 25, 60, 150]
    subsets = [seeded_subset(frames, size, seed=3) for size in sizes]
    for size, subset in zip(sizes, subsets):
        assert len(subset) == size
        assert {el for f in subset for el in f.species} == set(ELEMENTS)
    for small, large in zip(subsets, subsets[1:]):
        assert {f.frame_id for f in small} <= {f.frame_id for f in large}
    shuffled = list(frames)
    random.Random(0).shuffle(shuffled)
    assert {f.frame_id for f in seeded_subset(shuffled, 25, seed=3)} == {f.frame_id for f in subsets[1]}
    other_seed = seeded_subset(frames, 25, seed=4)
    assert {f.frame_id for f in other_seed} != {f.frame_id for f in subsets[1]}
    # Smaller than the cover: a part of it, still nested.
    tiny = seeded_subset(frames, 2, seed=3)
    assert len(tiny) == 2 and {f.frame_id for f in tiny} <= {f.frame_id for f in subsets[0]}
    assert seeded_subset(frames, 10_000, seed=3) == list(frames)


def test_frames_by_split_groups_one_functional_and_caps_training(frames):
    split = {f.material_id: ("train" if i % 5 else "val") for i, f in enumerate(frames)}
    mixed = frames + [frame(300, ["Na"], functional="gga", material=frames[0].material_id)]
    grouped = frames_by_split(mixed, split, functional="r2scan", max_train_frames=20, seed=0)
    assert len(grouped["train"]) == 20 and grouped["test"] == []
    assert all(f.functional == "r2scan" for group in grouped.values() for f in group)
    assert all(split[f.material_id] == "val" for f in grouped["val"])
