"""CHGNet fixtures of the trainer tests, built once per session (as when they were one module):
12 small r2SCAN frames, the source model, a graph cache
and the five methods' starting models."""

from __future__ import annotations

import pytest

from mlip_transfer.data.dataset import iter_frames
from mlip_transfer.transfer.graphs import GraphCache
from mlip_transfer.transfer.methods import METHODS, build_model

DATASET = "resources/default_dataset/frames.jsonl.gz"


@pytest.fixture(scope="session")
def frames(request):
    """12 small r2SCAN frames of the shipped default dataset, one per material.

    Order: 4 elemental, 4 compounds (train: 14 elements in 8 frames, so the Eq. 2 refit is rank
    deficient), then 1 + 1 (validation), then 1 + 1 spare.
    """
    elemental, compounds, seen = [], [], set()
    for frame in iter_frames(request.config.rootpath / DATASET):
        if frame.functional != "r2scan" or frame.magmoms is None or frame.material_id in seen:
            continue
        if len(set(frame.species)) == 1 and frame.n_atoms <= 4 and len(elemental) < 6:
            elemental.append(frame)
        elif len(set(frame.species)) > 1 and frame.n_atoms <= 6 and len(compounds) < 6:
            compounds.append(frame)
        else:
            continue
        seen.add(frame.material_id)
        if len(elemental) == len(compounds) == 6:
            break
    e, c = elemental, compounds
    return e[:4] + c[:4] + [e[4], c[4], e[5], c[5]]


@pytest.fixture(scope="session")
def train_frames(frames):
    return frames[:8]


@pytest.fixture(scope="session")
def val_frames(frames):
    return frames[8:10]


@pytest.fixture(scope="session")
def source():
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False, use_device="cpu")


@pytest.fixture(scope="session")
def cache(source):
    return GraphCache(source.graph_converter)


@pytest.fixture(scope="session")
def built(source, train_frames, cache):
    return {
        method: build_model(
            method, train_frames=train_frames, source_model=source, graph_cache=cache
        )
        for method in METHODS
    }

