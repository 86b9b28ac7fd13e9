"""Ge DimeNet++ training and MD speed: torch_geometric's triplet path against the edge path.

    python benchmarks/ge_training_speed.py [--steps 10] [--frames 8] [--md-steps 20]

Both paths share one set of weights (the study's 1/4-size DimeNet++, 4 blocks, cutoff 5 Å) and
run in this one process on one thread:

* ``reference``: ``DimeNetPP(reference=True)``, torch_geometric's ``InteractionPPBlock.forward``
  on the per-triplet spherical basis (the code path before issue 15);
* ``edge``: the default ``DimeNetPP``, the same interactions on edge tensors only
  (:mod:`mlip_transfer.elements.edge_basis`).

Frames are 64-atom Ge cells sampled with the Stillinger-Weber reference at 1200 K (seeded, as the
default run's pool; ``--frames-file`` reads a frames file instead). Training is the trainer's own
Adam step (``training._take_step``, cosine learning rate, seeded batches of ``--batch-size``) from
the same initial weights. Checked, before any timing is believed: energies and forces of every
frame, and every step's loss, agree within ``--rtol``/``--atol``; otherwise the exit status is 1.
Printed: seconds and CPU (core) seconds per update of each path and their ratio in updates per
core-second, and the same for MD steps (graph building + forces + Langevin integration).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mlip_transfer.data.dataset import Frame, read_frames
from mlip_transfer.elements import training
from mlip_transfer.elements.dimenet import DimeNetPP, DimeNetSettings, energy_and_forces, inputs_per_graph
from mlip_transfer.elements.edge_basis import EdgeInputs
from mlip_transfer.elements.graph import PeriodicGraph, collate
from mlip_transfer.elements.md import DimeNetCalculator
from mlip_transfer.elements.sampling import (
    LangevinSettings,
    SamplingSettings,
    langevin_nvt,
    sample_frames,
)


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Losses and times of ``steps`` calls of one path."""

    losses: list[float]
    wall_s: float
    cpu_s: float
    steps: int
    setup_s: float = 0.0

    @property
    def cpu_per_step(self) -> float:
        return self.cpu_s / self.steps


def sample_ge_frames(n_frames: int, *, cell_repeats: int = 2, seed: int = 0) -> list[Frame]:
    """Seeded SW frames of Ge at 1200 K (64 atoms with ``cell_repeats=2``), as the default pool."""
    settings = SamplingSettings(cell_repeats=cell_repeats, equilibration_ps=0.1, interval_fs=40, trajectories=2)
    return sample_frames(
        element="Ge", temperature=1200, n_frames=n_frames, set_name="pool", settings=settings,
        seed=seed, progress=False,
    )


def paired_models(settings: DimeNetSettings, *, seed: int = 0) -> tuple[DimeNetPP, DimeNetPP]:
    """A reference-path and an edge-path model with the same seeded weights.

    The output layers are drawn at random rather than torch_geometric's zeros, so that energies,
    forces and every parameter's gradient are non-trivial from the first step.
    """
    torch.manual_seed(seed)
    edge = DimeNetPP(settings=settings)
    with torch.no_grad():
        for block in edge.output_blocks:
            block.lin.weight.normal_(0, 0.1)
    reference = DimeNetPP(settings=settings, reference=True)
    reference.load_state_dict(edge.state_dict())
    return reference, edge


def compare_predictions(
    reference: DimeNetPP, edge: DimeNetPP, graphs: Sequence[PeriodicGraph], *, rtol: float, atol: float
) -> list[str]:
    """Energies and forces of each graph by both models; one message per disagreement."""
    problems = []
    for k, graph in enumerate(graphs):
        (e_ref, f_ref), (e_new, f_new) = (
            energy_and_forces(model, collate([graph])) for model in (reference, edge)
        )
        for name, a, b in (("energy", e_ref, e_new), ("forces", f_ref, f_new)):
            if not torch.allclose(b, a, rtol=rtol, atol=atol):
                problems.append(f"graph {k}: {name} differ by up to {float((b - a).abs().max()):.3g}")
    return problems


def time_training(
    model: DimeNetPP, graphs: Sequence[PeriodicGraph], targets: Sequence[torch.Tensor], *,
    steps: int, batch_size: int, seed: int,
) -> Timing:
    """``steps`` Adam updates of the trainer's own step on its seeded batches.

    As the trainer does, the edge path computes each frame's edge inputs once (timed apart,
    as ``setup_s``, a once-per-training cost) and joins them per batch inside the timed step.
    """
    settings = training.TrainSettings(max_steps=steps, batch_size=batch_size, seed=seed, learning_rate=3e-3,
                                      final_learning_rate=3e-5)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    model.train()
    cpu0 = time.process_time()
    per_graph = inputs_per_graph(model, graphs, dtype=torch.float32, device="cpu")
    setup_s = time.process_time() - cpu0 if per_graph else 0.0
    losses, wall, cpu = [], 0.0, 0.0
    for step in range(steps):
        chosen = training._batch_indices(step, len(graphs), batch_size, seed)
        batch = collate([graphs[k] for k in chosen])
        target = torch.cat([targets[k] for k in chosen])
        wall0, cpu0 = time.perf_counter(), time.process_time()
        inputs = EdgeInputs.concatenate([per_graph[k] for k in chosen]) if per_graph else None
        row = training._take_step(
            model, optimizer, batch, target, lr=training.cosine_lr(step, settings), label="bench",
            step=step, inputs=inputs,
        )
        wall += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        losses.append(row["loss"])
    return Timing(losses=losses, wall_s=wall, cpu_s=cpu, steps=steps, setup_s=setup_s)


def compare_losses(reference: Timing, edge: Timing, *, rtol: float) -> list[str]:
    """One message per step whose losses differ by more than ``rtol`` (relative)."""
    return [
        f"step {k + 1}: loss {a:.7g} (reference) vs {b:.7g} (edge)"
        for k, (a, b) in enumerate(zip(reference.losses, edge.losses))
        if not abs(a - b) <= rtol * abs(a)
    ]


def time_md(model: DimeNetPP, frame: Frame, *, steps: int, seed: int) -> Timing:
    """``steps`` Langevin steps at 1200 K from ``frame`` (graph, forces, integration each step)."""
    atoms = _atoms(frame)
    atoms.calc = DimeNetCalculator(model=model)
    dynamics = langevin_nvt(atoms, temperature=1200, settings=LangevinSettings(),
                            rng=np.random.default_rng(seed))
    dynamics.run(1)  # warm-up
    wall0, cpu0 = time.perf_counter(), time.process_time()
    dynamics.run(steps)
    return Timing(losses=[], wall_s=time.perf_counter() - wall0, cpu_s=time.process_time() - cpu0,
                  steps=steps)


def _atoms(frame: Frame):
    from ase import Atoms

    return Atoms(symbols=list(frame.species), scaled_positions=np.asarray(frame.frac_coords),
                 cell=np.asarray(frame.lattice), pbc=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--steps", type=int, default=10, help="timed Adam updates per path (default 10)")
    parser.add_argument("--batch-size", type=int, default=2, help="frames per update (default 2)")
    parser.add_argument("--frames", type=int, default=8, help="SW frames to sample (default 8)")
    parser.add_argument("--frames-file", help="read frames from this file instead of sampling them")
    parser.add_argument("--cell-repeats", type=int, default=2, help="diamond cells per direction (2: 64 atoms)")
    parser.add_argument("--blocks", type=int, default=4, help="interaction blocks (default 4)")
    parser.add_argument("--md-steps", type=int, default=20, help="timed MD steps per path (0: skip MD)")
    parser.add_argument("--seed", type=int, default=0, help="weights, batches and MD velocities")
    parser.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance of the checks")
    parser.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance of energies/forces")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    frames = (read_frames(args.frames_file)[: args.frames] if args.frames_file
              else sample_ge_frames(args.frames, cell_repeats=args.cell_repeats, seed=args.seed))
    settings = DimeNetSettings(num_blocks=args.blocks)
    graphs = training.frame_graphs(frames, cutoff=settings.cutoff)
    targets = [torch.as_tensor(np.asarray(f.forces), dtype=torch.float32) for f in frames]
    g = graphs[0]
    print(f"{len(frames)} frames: {g.n_atoms} atoms, {g.n_edges} edges, {g.n_triplets} triplets per cell; "
          f"batch {args.batch_size}, {args.blocks} blocks, one thread")
    reference, edge = paired_models(settings, seed=args.seed)
    problems = compare_predictions(reference, edge, graphs, rtol=args.rtol, atol=args.atol)
    runs = {}
    for name, model in (("reference", reference), ("edge", edge)):
        runs[name] = time_training(model, graphs, targets, steps=args.steps, batch_size=args.batch_size,
                                   seed=args.seed)
    problems += compare_losses(runs["reference"], runs["edge"], rtol=args.rtol)
    for name, run in runs.items():
        setup = f" (+ {run.setup_s:.3f} core-s once: edge inputs of {len(graphs)} frames)" if run.setup_s else ""
        print(f"train {name:>9}: {run.wall_s / run.steps:.3f} s, {run.cpu_per_step:.3f} core-s per update{setup}")
    ratio = runs["reference"].cpu_per_step / runs["edge"].cpu_per_step
    print(f"training: {ratio:.2f}x more updates per core-second (edge / reference)")
    if args.md_steps:
        md = {name: time_md(model, frames[0], steps=args.md_steps, seed=args.seed)
              for name, model in (("reference", reference), ("edge", edge))}
        for name, run in md.items():
            print(f"MD {name:>9}: {run.wall_s / run.steps * 1000:.1f} ms, "
                  f"{run.cpu_per_step * 1000:.1f} core-ms per step")
        print(f"MD: {md['reference'].cpu_per_step / md['edge'].cpu_per_step:.2f}x more steps per core-second")
    if problems:
        print("DISAGREEMENT between the paths:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"agreement: energies, forces and {args.steps} step losses within rtol {args.rtol:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
