"""The data stage's jobs: the functions the Snakemake scripts call, on a small default parse."""

import json
from pathlib import Path

import pytest

from mlip_transfer.data import jobs
from mlip_transfer.data.dataset import read_materials
from mlip_transfer.data.split import read_split
from mlip_transfer.data.summary import frame_table

DEFAULT = Path(__file__).parents[2] / "resources/default_dataset"


def test_source_settings_pick_the_configured_source():
    sections = dict(default={"max_materials": 3, "teacher": "diep"}, mp={"r2scan_json": "a.json"},
                    extxyz={"paths": ["x.xyz"]}, default_folder="folder")
    assert jobs.source_settings("default", **sections) == {
        "path": "folder", "max_materials": 3, "teacher": "diep"
    }
    assert jobs.source_settings("mp", **sections) == {"r2scan_json": "a.json"}
    assert jobs.source_settings("extxyz", **sections) == {"paths": ["x.xyz"]}


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    jobs.parse_dataset(source="default", default={"max_materials": 5}, mp={}, extxyz={},
                       filters={}, default_folder=DEFAULT, out_dir=out)
    return out


def test_split_job_splits_the_materials_with_frames_and_writes_statistics(parsed):
    settings = {"fractions": [0.8, 0.1, 0.1], "seed": 42, "elemental_references_in_train": True}
    stats = jobs.split_dataset(
        materials=parsed / "materials.csv", frames=parsed / "frames.jsonl.gz",
        provenance=parsed / "provenance.json", split=parsed / "split.csv",
        statistics=parsed / "dataset_statistics.json", settings=settings,
    )
    assignment = read_split(parsed / "split.csv")
    assert set(assignment) == set(frame_table(parsed / "frames.jsonl.gz")["material_id"])
    materials = read_materials(parsed / "materials.csv")
    references = set(materials.loc[materials["is_elemental_reference"], "material_id"])
    assert all(assignment[m] == "train" for m in references & set(assignment))
    assert json.loads((parsed / "dataset_statistics.json").read_text()) == stats
    assert stats["data_source"] == "surrogate-default"
