"""Profile one DimeNet++ force-matching step on the default run's Ge frames (issue 15).

    python benchmarks/ge_step_profile.py [FRAMES] [--steps 5] [--batch-size 2]

Prints the cell size (atoms, edges, triplets), the seconds per Adam step on one thread and the
torch profiler's table of the most expensive operators. FRAMES defaults to the Ge frames of a
finished default run (``results/elements/data/Ge/frames.jsonl.gz``).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mlip_transfer.data.dataset import read_frames
from mlip_transfer.core.allocator import keep_freed_memory
from mlip_transfer.elements.dimenet import DimeNetSettings, inputs_per_graph
from mlip_transfer.elements.edge_basis import EdgeInputs
from mlip_transfer.elements.graph import collate
from mlip_transfer.elements.training import TrainSettings, _take_step, frame_graphs, new_model, new_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", nargs="?", default="results/elements/data/Ge/frames.jsonl.gz")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after two warm-up steps)")
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()  # as the Ge jobs
    frames = read_frames(args.frames)[: args.batch_size]
    settings = DimeNetSettings()  # the study's 1/4-size DimeNet++, as the default config
    model = new_model(settings, seed=0)
    graphs = frame_graphs(frames, cutoff=settings.cutoff, progress=False)
    target = torch.cat([torch.as_tensor(f.forces, dtype=torch.float32) for f in frames])
    optimizer = new_optimizer(model, TrainSettings(max_steps=args.steps, learning_rate=1e-3))
    per_graph = inputs_per_graph(model, graphs, dtype=torch.float32, device="cpu")
    g = graphs[0]
    print(f"cell: {g.n_atoms} atoms, {g.n_edges} edges, {g.n_triplets} triplets; batch {len(graphs)}")

    def step() -> None:  # the trainer's own update, with the per-frame edge inputs it keeps
        _take_step(model, optimizer, collate(graphs), target, lr=1e-3, label="profile", step=0,
                   inputs=EdgeInputs.concatenate(per_graph))

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    print(f"{(time.perf_counter() - start) / args.steps:.3f} s per Adam step (one thread)")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
