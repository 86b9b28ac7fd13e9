"""Profile training steps of the project's CHGNet path (issue 16): where a step's time goes.

    python benchmarks/training_profile.py [--n-frames 64] [--batch-size 16] [--threads 2]

Times the phases of each step (``to_device``; batch assembly, ``batch_graphs``; forward =
``CHGNet._compute`` + the fused gradient; backward + Adam) of the model as the trainer runs it
(projected layers, batch-wide assembly), then prints the torch profiler's table of the most
expensive operators over a few steps (self time, and total time with children).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_throughput import DEFAULT_DATASET, select_frames  # noqa: E402


def _time_assembly(phases: dict[str, float]) -> None:
    """Add the seconds spent assembling batches (``batch_graphs``) to ``phases["assembly"]``."""
    from mlip_transfer.transfer import forward

    original = forward.batch_graphs

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases["assembly"] += time.perf_counter() - t0

    forward.batch_graphs = timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-frames", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-table", action="store_true", help="timings only, no profiler table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from chgnet.model import CHGNet
    from chgnet.trainer.trainer import CombinedLoss

    from mlip_transfer.transfer.forward import predict_efsm
    from mlip_transfer.transfer.graphs import GraphCache, GraphDataset, make_loader, to_device
    from mlip_transfer.transfer.layers import project_before_gather

    frames, _ = select_frames(DEFAULT_DATASET, args.n_frames, 0, 0)
    model = CHGNet.load(use_device="cpu", verbose=False)
    model.composition_model.requires_grad_(False)
    project_before_gather(model)
    cache = GraphCache(model.graph_converter)
    dataset, _ = GraphDataset.from_frames(frames, cache)
    batches = list(make_loader(dataset, args.batch_size, shuffle_seed=0))
    loss_fn = CombinedLoss(target_str="efsm", criterion="Huber", energy_loss_ratio=3,
                           force_loss_ratio=1, stress_loss_ratio=0.1, mag_loss_ratio=1,
                           allow_missing_labels=True)
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    phases = {"to_device": 0.0, "assembly": 0.0, "forward": 0.0, "backward+adam": 0.0}
    _time_assembly(phases)

    def step(graphs, targets) -> None:
        t0 = time.perf_counter()
        graphs, targets = to_device(graphs, targets, torch.device("cpu"), forces=True)
        t1 = time.perf_counter()
        pred = predict_efsm(model, graphs)
        t2 = time.perf_counter()
        loss = loss_fn(targets, pred)["loss"]
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        t3 = time.perf_counter()
        phases["to_device"] += t1 - t0
        phases["forward"] += t2 - t1  # the assembly is inside; subtracted below
        phases["backward+adam"] += t3 - t2

    step(*batches[0])
    for k in phases:
        phases[k] = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    for graphs, targets in batches:
        step(graphs, targets)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(batches)
    print(f"{n} steps of batch {args.batch_size}: {wall / n:.3f} s per step "
          f"(CPU {cpu / n:.3f} s), {args.n_frames / wall:.1f} structures/s")
    phases["forward"] -= phases["assembly"]
    for k, v in phases.items():
        print(f"  {k:<14} {v / n:.3f} s per step ({100 * v / wall:.0f} %)")
    if args.no_table:
        return
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for graphs, targets in batches[:3]:
            step(graphs, targets)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
