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
from mlip_transfer.elements.dimenet import DimeNetSettings, energy_and_forces
from mlip_transfer.elements.graph import collate
from mlip_transfer.elements.training import frame_graphs, new_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", nargs="?", default="results/elements/data/Ge/frames.jsonl.gz")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after two warm-up steps)")
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = read_frames(args.frames)[: args.batch_size]
    settings = DimeNetSettings()  # the study's 1/4-size DimeNet++, as the default config
    model = new_model(settings, seed=0)
    graphs = frame_graphs(frames, cutoff=settings.cutoff, progress=False)
    target = torch.cat([torch.as_tensor(f.forces, dtype=torch.float32) for f in frames])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = graphs[0]
    print(f"cell: {g.n_atoms} atoms, {g.n_edges} edges, {g.n_triplets} triplets; batch {len(graphs)}")

    def step() -> None:
        _, forces = energy_and_forces(model, collate(graphs), create_graph=True)
        loss = torch.mean((forces - target) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

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
