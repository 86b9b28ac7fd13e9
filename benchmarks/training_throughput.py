"""Training throughput: chgnet's stock path against this project's, on the same data, in one run.

Stock path: ``chgnet.data.dataset.StructureData`` (a structure is converted to a graph the first
time it is accessed, then kept by its ``functools.cache``) + ``DataLoader`` + ``Trainer.train``.
Project path: ``mlip_transfer.transfer.trainer.train`` (graphs converted once by a ``GraphCache`` and
shared across epochs, methods and, through an on-disk cache, across processes).

Settings are the same for both: the pretrained CHGNet v0.3.0 with its AtomRef frozen (Method 3),
targets efsm, Huber loss 3:1:0.1:1, Adam, lr 1e-3 cosine to 1e-5, batch 16, validation after
every epoch (so the project's path skips its validation before training, which the workflow's
trainings keep for the step-0 rows). Each variant runs in its own subprocess so its peak
resident memory (``ru_maxrss``) is its own:

* ``stock``: chgnet's Trainer;
* ``ours``: the project's path with a cold on-disk graph cache (converts, writes the cache);
* ``ours-warm``: the project's path again, graphs read from that cache (what a second method
  rule does);
* ``ours-per-graph`` and ``ours-stock-layers`` (only when asked for with ``--variants``): the
  project's path with a cold cache of its own, but one change undone: chgnet's graph-by-graph
  batch assembly (``TrainSettings.batched_collation=False``), or chgnet's own convolution
  layers (``project_before_gather=False``): what each change buys.

``--batch-sizes 16 64`` repeats the whole comparison per batch size. ``--run-dir`` (default
``results``) also prints the training structures/s that each method's job of a finished run
recorded (``training/<method>/train_summary.json``: ``train_structures_per_s``, one torch
thread, epochs only).

With ``--repeats N`` the variants run N times in alternating order and the median is shown
(the machine may be shared). Throughput = training structures x epochs / wall time of the
whole training call (graph conversion, validation and checkpoint writing included; model
loading excluded).

Example::

    python benchmarks/training_throughput.py --n-frames 200 --epochs 2 --batch-sizes 16 64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO / "resources" / "default_dataset"
VARIANTS = ("stock", "ours", "ours-warm", "ours-per-graph", "ours-stock-layers")
DEFAULT_VARIANTS = ("stock", "ours", "ours-warm")
CACHE_READERS = ("ours-warm",)  # reads the on-disk graph cache "ours" writes


def select_frames(dataset: Path, n_train: int, n_val: int, seed: int):
    """A seeded sample of r2SCAN frames of the dataset, split into train and validation."""
    import numpy as np

    from mlip_transfer.data.dataset import FRAMES_FILE, iter_frames

    frames = [f for f in iter_frames(dataset / FRAMES_FILE) if f.functional == "r2scan"]
    if len(frames) < n_train + n_val:
        sys.exit(f"the dataset has {len(frames)} r2SCAN frames; {n_train + n_val} requested")
    order = np.random.default_rng(seed).permutation(len(frames))
    chosen = [frames[i] for i in order[: n_train + n_val]]
    return chosen[:n_train], chosen[n_train:]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from chgnet.model import CHGNet

    train_frames, val_frames = select_frames(
        Path(args.dataset), args.n_frames, args.n_val, args.seed
    )
    model = CHGNet.load(use_device="cpu", verbose=False)
    rss_before = _rss_mb()
    out = Path(args.workdir) / args.worker
    start = time.perf_counter()
    if args.worker == "stock":
        from chgnet.data.dataset import StructureData, collate_graphs
        from chgnet.trainer import Trainer
        from torch.utils.data import DataLoader

        from mlip_transfer.data.dataset import KBAR_PER_GPA_VASP_SIGN

        def data(frames):
            return StructureData(
                structures=[f.to_structure() for f in frames],
                energies=[f.energy_per_atom for f in frames],
                forces=[f.forces.tolist() for f in frames],
                stresses=[
                    (f.stress * KBAR_PER_GPA_VASP_SIGN).tolist() for f in frames
                ],  # VASP kBar
                magmoms=[None if f.magmoms is None else f.magmoms.tolist() for f in frames],
                structure_ids=[f.frame_id for f in frames],
                shuffle=False,
            )

        train_loader = DataLoader(
            data(train_frames), batch_size=args.batch_size, shuffle=True, collate_fn=collate_graphs
        )
        val_loader = DataLoader(
            data(val_frames), batch_size=args.batch_size, shuffle=False, collate_fn=collate_graphs
        )
        trainer = Trainer(
            model=model,
            targets="efsm",
            energy_loss_ratio=3,
            force_loss_ratio=1,
            stress_loss_ratio=0.1,
            mag_loss_ratio=1,
            optimizer="Adam",
            scheduler="CosLR",
            criterion="Huber",
            epochs=args.epochs,
            learning_rate=1e-3,
            use_device="cpu",
            torch_seed=args.seed,
            print_freq=10_000,
        )
        trainer.train(train_loader, val_loader, save_dir=str(out), train_composition_model=False)
        extra = {"val_energy_mae_mev_per_atom": 1000 * trainer.training_history["e"]["val"][-1]}
    else:
        from mlip_transfer.transfer.gradients import GradientRecorder
        from mlip_transfer.transfer.graphs import GraphCache
        from mlip_transfer.transfer.methods import build_model
        from mlip_transfer.transfer.settings import TrainSettings
        from mlip_transfer.transfer.trainer import train

        method = "3_frozen_gga_atomref"
        model, info = build_model(method, train_frames=train_frames, source_model=model)
        per_graph = args.worker == "ours-per-graph"
        stock_layers = args.worker == "ours-stock-layers"
        cache_name = f"graph_cache_{args.worker}" if per_graph or stock_layers else "graph_cache"
        cache_dir = Path(args.workdir) / cache_name  # the ablations' caches are cold, like ours
        cache = GraphCache(model.graph_converter, cache_dir=cache_dir)
        result = train(
            model=model,
            train_frames=train_frames,
            val_frames=val_frames,
            method=method,
            out_dir=out,
            settings=TrainSettings(
                epochs=args.epochs, batch_size=args.batch_size, device="cpu", seed=args.seed,
                batched_collation=not per_graph, project_before_gather=not stock_layers,
                validate_before=False,  # stock's Trainer validates after each epoch only
            ),
            gradients=GradientRecorder(),
            progress=False,
            graph_cache=cache,
            info=info,
        )
        train_rows = result.history[result.history["split"] == "train"]
        extra = {
            "val_energy_mae_mev_per_atom": result.summary["val_after"]["energy_mae_mev_per_atom"],
            "graphs_converted": cache.n_converted,
            "graphs_loaded_from_disk": cache.n_loaded,
            "graph_conversion_s": cache.conversion_s,
            "train_epoch_s": train_rows["wall_s"].tolist(),
            "s_per_epoch_per_100_frames": float(
                train_rows["wall_s"].mean() / len(train_frames) * 100
            ),
        }
    wall = time.perf_counter() - start
    return {
        "variant": args.worker,
        "n_train": len(train_frames),
        "n_val": len(val_frames),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "wall_s": wall,
        "structures_per_s": len(train_frames) * args.epochs / wall,
        "peak_rss_mb": _rss_mb(),
        "rss_before_training_mb": rss_before,
        **extra,
    }


def _reverse_keeping_cache_order(variants: list[str]) -> list[str]:
    """The variants reversed, but "ours" (which writes the graph cache) before its readers."""
    order = list(reversed(variants))
    if "ours" in order:
        order.remove("ours")
        first_reader = min((order.index(v) for v in CACHE_READERS if v in order), default=None)
        order.insert(len(order) if first_reader is None else first_reader, "ours")
    return order


def run_summaries(run_dir: Path) -> dict[str, dict]:
    """Training structures/s each method's job of a finished run recorded."""
    out = {}
    for path in sorted(Path(run_dir).glob("training/*/train_summary.json")):
        content = json.loads(path.read_text())
        out[path.parent.name] = {
            key: content.get(key)
            for key in ("train_structures_per_s", "torch_threads", "n_train", "device")
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Variants: " + ", ".join(VARIANTS),
    )
    parser.add_argument(
        "--dataset",
        default=str(DEFAULT_DATASET),
        help="canonical dataset folder (default: %(default)s)",
    )
    parser.add_argument(
        "--n-frames", type=int, default=200, help="training frames (default: %(default)s)"
    )
    parser.add_argument(
        "--n-val", type=int, default=32, help="validation frames (default: %(default)s)"
    )
    parser.add_argument("--epochs", type=int, default=2, help="(default: %(default)s)")
    parser.add_argument(
        "--batch-sizes", "--batch-size", type=int, nargs="+", default=[16, 64],
        help="one comparison per batch size (default: %(default)s)",
    )
    parser.add_argument(
        "--run-dir", default=str(REPO / "results"),
        help="finished run whose training jobs' structures/s to print (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="torch threads (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="frame sample and shuffling seed (default: %(default)s)"
    )
    parser.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (default: %(default)s)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of each variant, in alternating order; the median is reported (default: %(default)s)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        args.batch_size = args.worker_batch
        result = worker(args)
        print("RESULT " + json.dumps(result))
        return 0

    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    if any(v in variants for v in CACHE_READERS) and "ours" not in variants:
        parser.error("ours-warm reads the graph cache that ours writes; run both")
    summary: dict = {"batch_sizes": {}}
    for batch_size in args.batch_sizes:
        summary["batch_sizes"][str(batch_size)] = compare(args, variants, batch_size)
    summary["default_run"] = run_summaries(Path(args.run_dir))
    if summary["default_run"]:
        print(f"\ntraining jobs of the run in {args.run_dir} (train_summary.json):")
        for method, row in summary["default_run"].items():
            print(f"  {method:<26} {row['train_structures_per_s']:.1f} structures/s "
                  f"({row['torch_threads']} thread(s), {row['n_train']} frames, {row['device']})")
    else:
        print(f"\nno finished run in {args.run_dir} (make run writes "
              "results/training/<method>/train_summary.json: train_structures_per_s)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def compare(args: argparse.Namespace, variants: list[str], batch_size: int) -> dict:
    """Every variant at one batch size, ``args.repeats`` times alternating; printed, returned."""
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for repeat in range(args.repeats):
        # Alternate the order so slow drift of the machine's load hits every variant alike;
        # "ours" always precedes "ours-warm", whose on-disk graph cache it writes.
        order = variants if repeat % 2 == 0 else _reverse_keeping_cache_order(variants)
        with tempfile.TemporaryDirectory(prefix="mlip_transfer_bench_") as workdir:
            for variant in order:
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    variant,
                    "--workdir",
                    workdir,
                    "--dataset",
                    args.dataset,
                    "--n-frames",
                    str(args.n_frames),
                    "--n-val",
                    str(args.n_val),
                    "--epochs",
                    str(args.epochs),
                    "--worker-batch",
                    str(batch_size),
                    "--threads",
                    str(args.threads),
                    "--seed",
                    str(args.seed),
                ]
                print(
                    f"repeat {repeat + 1}/{args.repeats}: running {variant} ...",
                    file=sys.stderr,
                    flush=True,
                )
                done = subprocess.run(command, check=False, capture_output=True, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode or not lines:
                    sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
                    sys.exit(f"variant {variant} failed (exit {done.returncode})")
                runs[variant].append(json.loads(lines[-1][len("RESULT ") :]))
    # Per variant, the run with the median throughput (the upper median for an even count).
    results = {}
    for variant, rs in runs.items():
        ranked = sorted(rs, key=lambda r: r["structures_per_s"])
        results[variant] = {
            **ranked[len(ranked) // 2],
            "all_structures_per_s": [r["structures_per_s"] for r in rs],
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
        }

    print(
        f"\n{args.n_frames} training + {args.n_val} validation r2SCAN frames, {args.epochs} epochs, "
        f"batch {batch_size}, {args.threads} threads"
    )
    print(
        f"{'variant':<17} {'wall s':>8} {'structures/s':>13} {'peak RSS MB':>12} {'RSS before MB':>14} "
        f"{'val E meV/atom':>15}"
    )
    for name, r in results.items():
        print(
            f"{name:<17} {r['wall_s']:8.1f} {r['structures_per_s']:13.2f} {r['peak_rss_mb']:12.0f} "
            f"{r['rss_before_training_mb']:14.0f} {r['val_energy_mae_mev_per_atom']:15.1f}"
        )
        if len(r["all_structures_per_s"]) > 1:
            print(
                f"{'':<17} all runs (structures/s): "
                + ", ".join(f"{x:.2f}" for x in r["all_structures_per_s"])
            )
    summary = {"results": results}
    if "stock" in results:
        for name in VARIANTS[1:]:
            if name in results:
                ratio = results[name]["structures_per_s"] / results["stock"]["structures_per_s"]
                summary[f"ratio_{name}_over_stock"] = ratio
                print(f"throughput ratio {name} / stock: {ratio:.3f}; peak RSS "
                      f"{results[name]['max_peak_rss_mb']:.0f} MB vs stock "
                      f"{results['stock']['max_peak_rss_mb']:.0f} MB")
    if "ours" in results:
        print(
            f"ours: {results['ours']['s_per_epoch_per_100_frames']:.2f} s per training epoch per 100 frames; "
            f"graphs converted {results['ours']['graphs_converted']} "
            f"({results['ours']['graph_conversion_s']:.1f} s)"
        )
    if "ours-warm" in results:
        print(
            f"ours-warm: graphs converted {results['ours-warm']['graphs_converted']}, "
            f"loaded from disk {results['ours-warm']['graphs_loaded_from_disk']}"
        )
    return summary


if __name__ == "__main__":
    sys.exit(main())
