"""Ge DimeNet++ training and MD speed: today's code path (before issue 15) against the new one.

    python benchmarks/ge_training_speed.py [--steps 10] [--frames 8] [--md-steps 20] [--repeats 1]
        [--ablation] [--no-compile]

Both paths start from one set of weights (the study's 1/4-size DimeNet++, 4 blocks, cutoff 5 Å),
train on the same seeded batches and each run in a fresh worker process on one thread, as a
training job does:

* ``reference``: the code path before issue 15: torch_geometric's per-triplet interactions
  (``DimeNetPP(reference=True)``), forces by autograd through the positions, plain Adam, the loss
  differentiated by everything (``loss.backward()``), glibc's default allocator;
* ``edge``: the trainer as the default run uses it (``training._take_step``, ``training.new_optimizer``): the
  interactions on edge tensors (:mod:`mlip_transfer.elements.edge_basis`), forces through basis
  derivatives computed once per frame, the loss differentiated by the weights only, fused Adam,
  and the allocator setting of the jobs (:func:`mlip_transfer.core.allocator.keep_freed_memory`);
* ``edge-compiled``: the same with ``TrainSettings(compile=True)``
  (:mod:`mlip_transfer.elements.compiled`), whose compile time is printed apart as a
  once-per-process cost (Inductor's on-disk cache decides whether it is ~1 min or ~6 s).

``--ablation`` adds the two crossed runs (reference with the jobs' allocator, edge with glibc's
default), which split the gain into code and allocator.

Frames are 64-atom Ge cells sampled with the Stillinger-Weber reference at 1200 K (seeded, as the
default run's pool; ``--frames-file`` reads a frames file instead). Checked, before any timing is
believed: energies and forces of every frame, and every step's loss, agree within
``--rtol``/``--atol``; otherwise the exit status is 1. Printed: seconds and CPU (core) seconds per
update of each path and their ratio in updates per core-second, and the same for MD steps (graph
building + forces + Langevin integration).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mlip_transfer.core.allocator import keep_freed_memory
from mlip_transfer.data.dataset import Frame, read_frames, write_frames
from mlip_transfer.elements import training
from mlip_transfer.elements.compiled import CompiledForces
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

# name: (model path, allocator, compiled forces); the first three always run, the others with
# --ablation.
RUNS = {
    "reference": ("reference", "default", False),
    "edge": ("edge", "kept", False),
    "edge-compiled": ("edge", "kept", True),
    "reference+allocator": ("reference", "kept", False),
    "edge-allocator": ("edge", "default", False),
}


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Losses and times of ``steps`` calls of one path."""

    losses: list[float]
    wall_s: float
    cpu_s: float
    steps: int
    setup_s: float = 0.0
    setup_wall_s: float = 0.0

    @property
    def cpu_per_step(self) -> float:
        return self.cpu_s / self.steps


@dataclass(kw_only=True)
class WorkerResult:
    """What one worker process measured: predictions per frame, training and MD timings."""

    energies: list[float] = field(default_factory=list)
    forces: list[list[list[float]]] = field(default_factory=list)
    train: dict | None = None
    md: dict | None = None


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


def predictions(model: DimeNetPP, graphs: Sequence[PeriodicGraph]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Energy and forces of each graph on its own."""
    energies, forces = [], []
    for graph in graphs:
        energy, force = energy_and_forces(model, collate([graph]))
        energies.append(energy.detach().numpy())
        forces.append(force.detach().numpy())
    return energies, forces


def compare_predictions(
    reference: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
    edge: tuple[Sequence[np.ndarray], Sequence[np.ndarray]], *, rtol: float, atol: float,
) -> list[str]:
    """One message per graph and quantity whose values differ beyond the tolerances."""
    problems = []
    for name, a_all, b_all in (("energy", reference[0], edge[0]), ("forces", reference[1], edge[1])):
        for k, (a, b) in enumerate(zip(a_all, b_all)):
            a, b = np.asarray(a), np.asarray(b)
            if not np.allclose(b, a, rtol=rtol, atol=atol):
                problems.append(f"graph {k}: {name} differ by up to {float(np.abs(b - a).max()):.3g}")
    return problems


def legacy_take_step(model: DimeNetPP, optimizer: torch.optim.Optimizer, batch, target: torch.Tensor,
                     *, lr: float) -> float:
    """The trainer's update as it was before issue 15 (the reference's step)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, forces = energy_and_forces(model, batch, create_graph=True)  # through the positions
    loss = torch.mean((forces - target) ** 2)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def time_training(
    model: DimeNetPP, graphs: Sequence[PeriodicGraph], targets: Sequence[torch.Tensor], *,
    steps: int, batch_size: int, seed: int, compile_: bool = False,
) -> Timing:
    """``steps`` Adam updates on the trainer's seeded batches, by the step of the model's path.

    As the trainer does, the edge path computes each frame's edge inputs once and joins them per
    batch inside the timed step; that, and compiling the forces (``compile_``, on the first
    batch), are once-per-training costs, timed apart as ``setup_s``.
    """
    settings = training.TrainSettings(max_steps=steps, batch_size=batch_size, seed=seed, learning_rate=3e-3,
                                      final_learning_rate=3e-5, compile=compile_)
    if model.reference:
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    else:
        optimizer = training.new_optimizer(model, settings)
    model.train()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    per_graph = inputs_per_graph(model, graphs, dtype=torch.float32, device="cpu")
    forces_of = CompiledForces(model) if compile_ else None
    if forces_of is not None:  # compile on the first batch (its forces are not used)
        chosen = training._batch_indices(0, len(graphs), batch_size, seed)
        forces_of(collate([graphs[k] for k in chosen]), EdgeInputs.concatenate([per_graph[k] for k in chosen]))
        if forces_of.failed:
            raise RuntimeError(f"torch.compile failed: {forces_of.failed}")
    setup_s = time.process_time() - cpu0 if per_graph else 0.0
    setup_wall_s = time.perf_counter() - wall0 if per_graph else 0.0
    losses, wall, cpu = [], 0.0, 0.0
    for step in range(steps):
        chosen = training._batch_indices(step, len(graphs), batch_size, seed)
        batch = collate([graphs[k] for k in chosen])
        target = torch.cat([targets[k] for k in chosen])
        lr = training.cosine_lr(step, settings)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if per_graph is None:
            loss = legacy_take_step(model, optimizer, batch, target, lr=lr)
        else:
            inputs = EdgeInputs.concatenate([per_graph[k] for k in chosen])
            loss = training._take_step(model, optimizer, batch, target, lr=lr, label="bench", step=step,
                                       inputs=inputs, forces_of=forces_of)["loss"]
        wall += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        losses.append(loss)
    return Timing(losses=losses, wall_s=wall, cpu_s=cpu, steps=steps, setup_s=setup_s,
                  setup_wall_s=setup_wall_s)


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


def run_worker(args: argparse.Namespace) -> WorkerResult:
    """One run of :data:`RUNS` in this (fresh) process."""
    path, allocator, compile_ = RUNS[args.worker]
    if allocator == "kept" and not keep_freed_memory():
        print("note: no glibc mallopt here, the allocator stays as it is", file=sys.stderr)
    torch.set_num_threads(1)
    frames = read_frames(args.frames_file)[: args.frames]
    settings = DimeNetSettings(num_blocks=args.blocks)
    graphs = training.frame_graphs(frames, cutoff=settings.cutoff)
    targets = [torch.as_tensor(np.asarray(f.forces), dtype=torch.float32) for f in frames]
    reference, edge = paired_models(settings, seed=args.seed)
    model = reference if path == "reference" else edge
    energies, forces = predictions(model, graphs)
    result = WorkerResult(energies=[float(e[0]) for e in energies], forces=[f.tolist() for f in forces])
    run = time_training(model, graphs, targets, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                        compile_=compile_)
    result.train = asdict(run)
    if args.md_steps and not compile_:  # MD runs eager: the same as "edge"
        result.md = asdict(time_md(model, frames[0], steps=args.md_steps, seed=args.seed))
    return result


def _spawn(name: str, args: argparse.Namespace, frames_file: Path, out: Path) -> WorkerResult:
    command = [sys.executable, __file__, "--worker", name, "--worker-out", str(out),
               "--frames-file", str(frames_file)]
    for option in ("steps", "batch_size", "frames", "blocks", "md_steps", "seed"):
        command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    subprocess.run(command, check=True)
    return WorkerResult(**json.loads(out.read_text()))


def _report(results: dict[str, WorkerResult], n_frames: int) -> None:
    train = {name: Timing(**r.train) for name, r in results.items()}
    for name, run in train.items():
        what = "edge inputs of {} frames{}".format(n_frames, " and compiling" if "compiled" in name else "")
        setup = f" (+ {run.setup_s:.3f} core-s, {run.setup_wall_s:.1f} s once: {what})" if run.setup_s else ""
        print(f"train {name:>19}: {run.wall_s / run.steps:.3f} s, {run.cpu_per_step:.3f} core-s per update{setup}")
    base = train["reference"].cpu_per_step
    for name, run in train.items():
        if name != "reference":
            print(f"training: {base / run.cpu_per_step:.2f}x more updates per core-second ({name} / reference)")
    md = {name: Timing(**r.md) for name, r in results.items() if r.md}
    for name, run in md.items():
        print(f"MD {name:>19}: {run.wall_s / run.steps * 1000:.1f} ms, {run.cpu_per_step * 1000:.1f} core-ms per step")
    if "edge" in md:
        print(f"MD: {md['reference'].cpu_per_step / md['edge'].cpu_per_step:.2f}x more steps per core-second")


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--ablation", action="store_true", help="also the two crossed runs (code vs allocator)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled run (no C++ compiler)")
    parser.add_argument("--repeats", type=int, default=1, help="fresh worker pairs, median ratio printed (default 1)")
    parser.add_argument("--worker", choices=sorted(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        Path(args.worker_out).write_text(json.dumps(asdict(run_worker(args))))
        return 0
    frames = (read_frames(args.frames_file)[: args.frames] if args.frames_file
              else sample_ge_frames(args.frames, cell_repeats=args.cell_repeats, seed=args.seed))
    graph = training.frame_graphs(frames[:1], cutoff=DimeNetSettings().cutoff)[0]
    print(f"{len(frames)} frames: {graph.n_atoms} atoms, {graph.n_edges} edges, {graph.n_triplets} triplets "
          f"per cell; batch {args.batch_size}, {args.blocks} blocks, one thread, one fresh process per run")
    names = list(RUNS) if args.ablation else list(RUNS)[:3]
    if args.no_compile:
        names.remove("edge-compiled")
    problems, ratios = [], {name: [] for name in names[1:]}
    with tempfile.TemporaryDirectory() as tmp:
        frames_file = Path(tmp) / "frames.jsonl.gz"
        write_frames(frames_file, frames)
        for repeat in range(args.repeats):
            if args.repeats > 1:
                print(f"-- repeat {repeat + 1} of {args.repeats}")
            results = {name: _spawn(name, args, frames_file, Path(tmp) / f"{name}.json") for name in names}
            _report(results, len(frames))
            ref = results["reference"]
            for name in names[1:]:
                new = results[name]
                problems += [f"{name}: {p}" for p in compare_predictions(
                    (ref.energies, ref.forces), (new.energies, new.forces), rtol=args.rtol, atol=args.atol)]
                problems += [f"{name}: {p}" for p in compare_losses(Timing(**ref.train), Timing(**new.train),
                                                                    rtol=args.rtol)]
                ratios[name].append(Timing(**ref.train).cpu_per_step / Timing(**new.train).cpu_per_step)
    if args.repeats > 1:
        for name, values in ratios.items():
            print(f"training, {name} / reference over {args.repeats} repeats: median {np.median(values):.2f}x, "
                  f"min {min(values):.2f}x, max {max(values):.2f}x")
    if problems:
        print("DISAGREEMENT between the paths:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"agreement: energies, forces and {args.steps} step losses within rtol {args.rtol:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
