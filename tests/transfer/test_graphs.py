"""Graphs and labels: chgnet's training units, each structure converted once."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mlip_transfer.data.dataset import KBAR_PER_GPA_VASP_SIGN
from mlip_transfer.transfer import graphs as G

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def test_targets_are_chgnet_training_units_same_as_structuredata(frames):
    from chgnet.data.dataset import StructureData

    frame = frames[3]
    stock = StructureData(
        structures=[frame.to_structure()],
        energies=[frame.energy_per_atom],
        forces=[frame.forces.tolist()],
        stresses=[(frame.stress * KBAR_PER_GPA_VASP_SIGN).tolist()],  # VASP kBar, as MPtrj
        magmoms=[frame.magmoms.tolist()],
        shuffle=False,
    )[0][1]
    ours = G.frame_targets(frame)
    for key in "efsm":
        torch.testing.assert_close(ours[key], stock[key])
    torch.testing.assert_close(ours["s"], torch.tensor(frame.stress, dtype=torch.float32))  # GPa
    missing = G.frame_targets(dataclasses.replace(frame, energy=None, stress=None, magmoms=None))
    assert math.isnan(missing["e"]) and torch.isnan(missing["s"]).all() and missing["m"] is None


def test_graph_cache_converts_each_structure_once_and_persists(source, frames, tmp_path):
    cache = G.GraphCache(source.graph_converter, cache_dir=tmp_path)
    first = cache.graphs(frames)
    again = cache.graphs(frames[:5])
    G.GraphDataset.from_frames(frames, cache)
    assert cache.n_converted == len(frames)
    assert again[0] is first[0]
    assert not first[0].atom_frac_coord.requires_grad  # cached leaves never collect gradients
    moved = dataclasses.replace(frames[0], frac_coords=frames[0].frac_coords + 0.01)
    cache.graphs([moved])  # same frame id, other structure: a new graph
    assert cache.n_converted == len(frames) + 1
    other = G.GraphCache(source.graph_converter, cache_dir=tmp_path)  # another process, same disk
    loaded = other.graphs(frames)
    assert other.n_converted == 0 and other.n_loaded == len(frames) + 1
    torch.testing.assert_close(loaded[2].atom_graph, first[2].atom_graph)
    torch.testing.assert_close(loaded[2].lattice, first[2].lattice)

