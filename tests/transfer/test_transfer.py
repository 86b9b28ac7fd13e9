"""Which frames train, validate and test: seeded subsets that cover every element and nest."""

import random

import numpy as np
import pytest

from mlip_transfer.data.dataset import Frame
from mlip_transfer.transfer.frames import (
    capped_test_materials,
    capped_validation,
    frames_by_split,
    seeded_subset,
)

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


def test_train_method_fits_the_atomref_on_the_whole_split_and_trains_on_the_cap(
        frames, tmp_path, monkeypatch):
    """Issue 14: the AtomRef fit sees every training frame, the GNN only the capped subset."""
    from pathlib import Path

    import pandas as pd
    import yaml

    from mlip_transfer.data.dataset import write_frames
    from mlip_transfer.transfer import jobs, methods, trainer

    split = {f.material_id: ("val" if i % 10 == 0 else "train") for i, f in enumerate(frames)}
    write_frames(tmp_path / "frames.jsonl.gz", frames)
    pd.DataFrame({"material_id": list(split), "split": list(split.values())}).to_csv(
        tmp_path / "split.csv", index=False)
    seen = {}

    def spy_build_model(method, *, train_frames, **_):  # what the AtomRef fit is given
        seen["fit"] = list(train_frames)
        return None, {"method": method}

    monkeypatch.setattr(methods, "build_model", spy_build_model)
    monkeypatch.setattr(trainer, "train", lambda **kwargs: seen.update(kwargs))
    smoke = yaml.safe_load((Path(__file__).parents[2] / "config" / "smoke.yaml").read_text())
    training = {**smoke["training"], "max_train_frames": 20, "functional": "r2scan"}
    jobs.train_method(frames=tmp_path / "frames.jsonl.gz", split=tmp_path / "split.csv",
                      method="4_refit_atomref", out_dir=tmp_path / "out", training=training)
    train_ids = {f.frame_id for f in frames if split[f.material_id] == "train"}
    assert {f.frame_id for f in seen["fit"]} == train_ids and len(train_ids) > 20
    assert [f.frame_id for f in seen["train_frames"]] == [
        f.frame_id for f in seeded_subset([f for f in frames if f.frame_id in train_ids], 20, seed=0)]
    assert seen["info"]["n_atomref_frames"] == len(train_ids) and seen["info"]["n_train_frames"] == 20
    # max_val_frames: the validation frames are one seeded subset, whatever the method.
    val = [f for f in frames if split[f.material_id] == "val"]
    assert {f.frame_id for f in seen["val_frames"]} == {f.frame_id for f in val}
    jobs.train_method(frames=tmp_path / "frames.jsonl.gz", split=tmp_path / "split.csv",
                      method="1_scratch", out_dir=tmp_path / "out1",
                      training={**training, "max_val_frames": 7})
    assert [f.frame_id for f in seen["val_frames"]] == [
        f.frame_id for f in seeded_subset(val, 7, seed=training["seed"])]


def test_validation_cap_ignores_the_job_seed_and_keeps_every_element(frames):
    capped = capped_validation(frames, {"max_val_frames": 12, "seed": 0})
    assert len(capped) == 12 and {el for f in capped for el in f.species} == set(ELEMENTS)
    assert capped == seeded_subset(frames, 12, seed=0)
    assert capped_validation(frames, {"max_val_frames": None, "seed": 5}) == list(frames)
    assert capped_validation(frames, {"seed": 5}) == list(frames)


def test_test_material_cap_is_one_choice_for_every_model_and_nests():
    ids = [f"mp-{i}" for i in range(40)]
    ten, twenty = capped_test_materials(ids, 10), capped_test_materials(reversed(ids), 20)
    assert len(ten) == 10 and ten == sorted(ten) and set(ten) <= set(twenty)
    assert ten != sorted(ids)[:10]  # hashed, not the first ids
    assert capped_test_materials(ids + ids, None) == sorted(ids)
    assert capped_test_materials(ids, 100) == sorted(ids)


def test_the_fair_reference_takes_the_teachers_relaxations_of_the_test_materials_only():
    import pandas as pd

    from mlip_transfer.transfer.reference_hull import fair_reference

    materials = pd.DataFrame({"material_id": ["a", "b", "c", "a"],
                              "functional": ["r2scan", "r2scan", "r2scan", "gga"],
                              "relaxed_energy_per_atom": [-1.0, -2.0, -3.0, -9.0]})
    relaxed = pd.DataFrame({"material_id": ["a", "b"], "energy_per_atom": [-1.5, float("nan")],
                            "failed": [False, True]})
    table, replaced = fair_reference(materials, relaxed, functional="r2scan")
    assert replaced == 1  # b failed: it keeps the dataset's energy
    assert table["relaxed_energy_per_atom"].tolist() == [-1.5, -2.0, -3.0, -9.0]
    assert materials["relaxed_energy_per_atom"].tolist() == [-1.0, -2.0, -3.0, -9.0]  # a copy
