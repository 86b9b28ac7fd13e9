"""Evaluation and relaxation throughput: the project's paths against chgnet's own, same structures.

* evaluation: ``mlip_transfer.transfer.metrics.evaluate_errors`` (cached graphs, forces and
  stress from one gradient, no parameter gradients) against ``CHGNet.predict_structure(...,
  task="efsm")`` (converts each structure, two gradient passes), both batched alike; in
  structures/s.
* relaxation: ``mlip_transfer.transfer.relaxation.relax_structures`` (ASE FIRE +
  ``FrechetCellFilter`` on ``CHGNetCalculator``, in this process) against chgnet's
  ``StructOptimizer.relax`` (FIRE + ``FrechetCellFilter`` too), same fmax and step limit; in
  relaxations/s.

Both use the pretrained CHGNet 0.3.0 on the first structures of r2SCAN frames of the default
dataset. With ``--repeats N`` each pair runs N times in alternating order and the median is shown
(the machine may be shared). :func:`evaluation_pair` and :func:`relaxation_pair` are reused by
``gpu_check.py``.

Example::

    python benchmarks/inference_throughput.py --n-structures 64 --relaxations 8 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO / "resources" / "default_dataset"


def r2scan_frames(dataset: Path, n: int, *, one_per_material: bool = False):
    """The first ``n`` r2SCAN frames of the dataset (one per material if asked)."""
    from mlip_transfer.data.dataset import FRAMES_FILE, iter_frames

    chosen, seen = [], set()
    for frame in iter_frames(Path(dataset) / FRAMES_FILE):
        if frame.functional != "r2scan" or (one_per_material and frame.material_id in seen):
            continue
        seen.add(frame.material_id)
        chosen.append(frame)
        if len(chosen) == n:
            break
    return chosen


def _quiet():
    """chgnet prints per call and warns about its volume tensor; neither is wanted here."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def evaluate_ours(model, frames, batch_size: int) -> float:
    """Seconds for the project's batched single-point path (graph conversion included)."""
    from mlip_transfer.transfer.graphs import GraphCache
    from mlip_transfer.transfer.metrics import evaluate_errors

    start = time.perf_counter()
    evaluate_errors(model, frames, batch_size=batch_size,
                    graph_cache=GraphCache(model.graph_converter))
    return time.perf_counter() - start


def evaluate_stock(model, frames, batch_size: int) -> float:
    """Seconds for ``CHGNet.predict_structure(task="efsm")`` on the same structures."""
    structures = [f.to_structure() for f in frames]
    start = time.perf_counter()
    with _quiet():
        model.predict_structure(structures, task="efsm", batch_size=batch_size)
    return time.perf_counter() - start


def relax_ours(frames, *, device: str, fmax: float, steps: int) -> tuple[float, int]:
    """Seconds and total FIRE steps of the project's relaxation path (one process)."""
    from mlip_transfer.transfer.relaxation import relax_structures

    structures = {f.material_id: f.to_structure() for f in frames}
    start = time.perf_counter()
    with _quiet():
        table = relax_structures(structures, model_path_or_name="0.3.0", fmax=fmax,
                                 max_steps=steps, processes=1, progress=False, device=device)
    return time.perf_counter() - start, int(table["n_steps"].fillna(0).sum())


def relax_stock(model, frames, *, device: str, fmax: float, steps: int) -> tuple[float, int]:
    """Seconds and total FIRE steps of chgnet's ``StructOptimizer`` on the same structures."""
    from chgnet.model import StructOptimizer

    with _quiet():
        optimizer = StructOptimizer(model=model, optimizer_class="FIRE", use_device=device)
    start, n_steps = time.perf_counter(), 0
    for frame in frames:
        with _quiet():
            result = optimizer.relax(frame.to_structure(), fmax=fmax, steps=steps,
                                     relax_cell=True, verbose=False)
        n_steps += len(result["trajectory"].energies) - 1  # the start is logged too
    return time.perf_counter() - start, n_steps


def evaluation_pair(model, frames, batch_size: int, repeats: int = 1) -> dict:
    """Structures/s of both evaluation paths, alternating, medians over ``repeats``.

    The project's path gets a copy of ``model`` with its layers projected, as
    ``load_chgnet`` gives every evaluation job; chgnet's gets ``model`` itself.
    """
    import copy

    from mlip_transfer.transfer.layers import project_before_gather

    ours_model = copy.deepcopy(model)
    project_before_gather(ours_model)
    times: dict[str, list[float]] = {"ours": [], "stock": []}
    for repeat in range(repeats):
        order = ("ours", "stock") if repeat % 2 == 0 else ("stock", "ours")
        for name in order:
            if name == "ours":
                times[name].append(evaluate_ours(ours_model, frames, batch_size))
            else:
                times[name].append(evaluate_stock(model, frames, batch_size))
    out = {f"{k}_structures_per_s": len(frames) / statistics.median(v) for k, v in times.items()}
    out["ratio_ours_over_stock"] = out["ours_structures_per_s"] / out["stock_structures_per_s"]
    return {"n_structures": len(frames), "batch_size": batch_size, **out}


def relaxation_pair(model, frames, *, device: str, fmax: float, steps: int,
                    repeats: int = 1) -> dict:
    """Relaxations/s (and FIRE steps/s) of both relaxation paths, alternating, medians."""
    runs: dict[str, list[tuple[float, int]]] = {"ours": [], "stock": []}
    for repeat in range(repeats):
        order = ("ours", "stock") if repeat % 2 == 0 else ("stock", "ours")
        for name in order:
            if name == "ours":
                runs[name].append(relax_ours(frames, device=device, fmax=fmax, steps=steps))
            else:
                runs[name].append(relax_stock(model, frames, device=device, fmax=fmax,
                                              steps=steps))
    out: dict = {"n_relaxations": len(frames), "fmax": fmax, "max_steps": steps}
    for name, rs in runs.items():
        wall = statistics.median(r[0] for r in rs)
        out[f"{name}_relaxations_per_s"] = len(frames) / wall
        out[f"{name}_fire_steps"] = rs[0][1]
    out["ratio_ours_over_stock"] = out["ours_relaxations_per_s"] / out["stock_relaxations_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    parser.add_argument("--n-structures", type=int, default=64,
                        help="structures evaluated (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="(default: %(default)s)")
    parser.add_argument("--relaxations", type=int, default=8,
                        help="structures relaxed, one per material (default: %(default)s)")
    parser.add_argument("--relax-steps", type=int, default=100, help="(default: %(default)s)")
    parser.add_argument("--fmax", type=float, default=0.05, help="eV/Å (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the evaluation (relaxations use 1; default: "
                        "%(default)s)")
    parser.add_argument("--repeats", type=int, default=1, help="(default: %(default)s)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    import torch
    from chgnet.model import CHGNet
    from threadpoolctl import threadpool_limits

    with _quiet():
        model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "evaluation": evaluation_pair(
        model, r2scan_frames(args.dataset, args.n_structures), args.batch_size, args.repeats)}
    torch.set_num_threads(1)  # the relaxation path's own setting, for both
    with threadpool_limits(1):
        result["relaxation"] = relaxation_pair(
            model, r2scan_frames(args.dataset, args.relaxations, one_per_material=True),
            device="cpu", fmax=args.fmax, steps=args.relax_steps, repeats=args.repeats)
    ev, rx = result["evaluation"], result["relaxation"]
    print(f"evaluation, {ev['n_structures']} structures, batch {ev['batch_size']}, "
          f"{args.threads} threads: ours {ev['ours_structures_per_s']:.1f}, stock "
          f"{ev['stock_structures_per_s']:.1f} structures/s, ratio "
          f"{ev['ratio_ours_over_stock']:.2f}")
    print(f"relaxation, {rx['n_relaxations']} structures, fmax {rx['fmax']}, <= "
          f"{rx['max_steps']} steps, 1 thread: ours {rx['ours_relaxations_per_s']:.3f} "
          f"({rx['ours_fire_steps']} FIRE steps), StructOptimizer "
          f"{rx['stock_relaxations_per_s']:.3f} ({rx['stock_fire_steps']}) relaxations/s, "
          f"ratio {rx['ratio_ours_over_stock']:.2f}")
    print("RESULT " + json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
