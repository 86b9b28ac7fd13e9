"""GPU check (issue 16): the paper recipe's training, CUDA-vs-CPU agreement, relaxations, evaluation.

Runs in a few minutes on one GPU (at most 8 with the defaults):

1. trains the paper config's recipe (``config/paper.yaml``: batch 64, targets efsm, Huber
   3:1:0.1:1, Adam 1e-3 cosine to 1e-5; Method 3, the frozen GGA AtomRef) for ``--steps``
   optimiser steps on r2SCAN frames of the default data, once with the project's path
   (``mlip_transfer.transfer.trainer.train``) and once with chgnet's stock ``Trainer`` on the
   same frames; prints structures/s and peak device memory side by side;
2. checks that one batch's loss and parameter gradients on the device match the CPU's;
3. relaxes ``--relaxations`` structures on the device with the project's path and with chgnet's
   ``StructOptimizer``, and evaluates one batch with both single-point paths.

Prints a table and one ``RESULT {json}`` line (also ``--json FILE``); exits 1 if the agreement
check fails. ``--device cpu`` with tiny settings runs in the test suite
(``tests/transfer/test_gpu_check.py``), so the script cannot rot without a GPU.

What it needs on the GPU machine (no package index needed if these wheels are brought along;
versions are this project's lock, ``requirements/lock.txt``): a CUDA build of ``torch`` (2.6 or
newer, any CUDA 12 build matching the driver; the lock's CPU build is 2.13), ``chgnet==0.4.2``
(its wheel bundles the 0.3.0 weights), ``pymatgen==2026.10.24`` with its dependencies, ``ase==3.29.0``,
``numpy==2.4.6``, ``scipy==1.17.1``, ``pandas==3.1.1``, ``tqdm==4.70.1``,
``threadpoolctl==3.8.0``, ``PyYAML==6.0.3``; chgnet, pymatgen and numpy have compiled parts, so
their wheels must match the machine's Python. The project itself needs no install: run from a
checkout with ``PYTHONPATH=src``::

    PYTHONPATH=src python benchmarks/gpu_check.py --device cuda --json gpu_check.json
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --steps 2 --batch-size 4 \\
        --relaxations 1 --relax-steps 3   # the test suite's tiny run
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_throughput import (  # noqa: E402
    DEFAULT_DATASET,
    _quiet,
    evaluation_pair,
    r2scan_frames,
    relaxation_pair,
)

METHOD = "3_frozen_gga_atomref"
RATIOS = (3, 1, 0.1, 1)  # config/paper.yaml training.loss_ratios


def _peak_memory_mb(device) -> float | None:
    """Peak device memory since the last reset (CUDA), or this process's peak RSS (CPU)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_ours(source, frames, val_frames, *, device, batch_size: int, steps: int, out: Path):
    """Structures/s and peak memory of the project's path for ``steps`` optimiser steps."""
    from mlip_transfer.transfer.graphs import GraphCache
    from mlip_transfer.transfer.methods import build_model
    from mlip_transfer.transfer.settings import TrainSettings
    from mlip_transfer.transfer.trainer import train

    model, info = build_model(METHOD, train_frames=frames, source_model=copy.deepcopy(source))
    _reset_peak(device)
    start = time.perf_counter()
    result = train(
        model=model, train_frames=frames, val_frames=val_frames, method=METHOD,
        out_dir=out / "ours",
        settings=TrainSettings(epochs=1, batch_size=batch_size, device=str(device), seed=0,
                               loss_ratios=RATIOS, max_steps=steps),
        progress=False, graph_cache=GraphCache(model.graph_converter), info=info,
    )
    _sync(device)
    wall = time.perf_counter() - start
    epoch_s = float(result.history.query("split == 'train'")["wall_s"].iloc[-1])
    return {"wall_s": wall, "structures_per_s": len(frames) / wall,
            "train_epoch_structures_per_s": len(frames) / epoch_s,
            "peak_memory_mb": _peak_memory_mb(device),
            "val_energy_mae_mev_per_atom": result.summary["val_after"]["energy_mae_mev_per_atom"]}


def train_stock(source, frames, val_frames, *, device, batch_size: int, out: Path):
    """The same for chgnet's ``Trainer`` (one epoch over the same frames = the same steps)."""
    from chgnet.data.dataset import StructureData, collate_graphs
    from chgnet.trainer import Trainer
    from torch.utils.data import DataLoader

    from mlip_transfer.data.dataset import KBAR_PER_GPA_VASP_SIGN

    def loader(chosen, shuffle):
        data = StructureData(
            structures=[f.to_structure() for f in chosen],
            energies=[f.energy_per_atom for f in chosen],
            forces=[f.forces.tolist() for f in chosen],
            stresses=[(f.stress * KBAR_PER_GPA_VASP_SIGN).tolist() for f in chosen],
            magmoms=[None if f.magmoms is None else f.magmoms.tolist() for f in chosen],
            structure_ids=[f.frame_id for f in chosen], shuffle=False)
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, collate_fn=collate_graphs)

    with _quiet():
        trainer = Trainer(
            model=copy.deepcopy(source), targets="efsm", energy_loss_ratio=RATIOS[0],
            force_loss_ratio=RATIOS[1], stress_loss_ratio=RATIOS[2], mag_loss_ratio=RATIOS[3],
            optimizer="Adam", scheduler="CosLR", criterion="Huber", epochs=1,
            learning_rate=1e-3, use_device=str(device), torch_seed=0, print_freq=10_000)
        _reset_peak(device)
        start = time.perf_counter()
        trainer.train(loader(frames, True), loader(val_frames, False), save_dir=str(out / "stock"),
                      train_composition_model=False)
    _sync(device)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "structures_per_s": len(frames) / wall,
            "peak_memory_mb": _peak_memory_mb(device),
            "val_energy_mae_mev_per_atom": 1000 * trainer.training_history["e"]["val"][-1]}


def agreement(source, frames, device) -> dict:
    """Loss and parameter gradients of one batch on ``device`` against the CPU's."""
    import torch
    from chgnet.data.dataset import collate_graphs
    from chgnet.trainer.trainer import CombinedLoss

    from mlip_transfer.transfer.forward import predict_efsm
    from mlip_transfer.transfer.graphs import GraphCache, GraphDataset, to_device

    loss_fn = CombinedLoss(target_str="efsm", criterion="Huber", energy_loss_ratio=RATIOS[0],
                           force_loss_ratio=RATIOS[1], stress_loss_ratio=RATIOS[2],
                           mag_loss_ratio=RATIOS[3], allow_missing_labels=True)
    dataset, _ = GraphDataset.from_frames(frames, GraphCache(source.graph_converter))
    graphs, targets = collate_graphs([dataset[i] for i in range(len(dataset))])

    def loss_and_grads(dev):
        model = copy.deepcopy(source).to(dev)
        model.composition_model.requires_grad_(False)
        model.train()
        batch, labels = to_device(graphs, targets, dev, forces=True)
        loss = loss_fn(labels, predict_efsm(model, batch))["loss"]
        loss.backward()
        grads = {n: p.grad.detach().cpu() for n, p in model.named_parameters()
                 if p.grad is not None}
        return float(loss), grads

    cpu_loss, cpu_grads = loss_and_grads(torch.device("cpu"))
    dev_loss, dev_grads = loss_and_grads(device)
    # Relative to each parameter's largest gradient: float32 sums in another order differ
    # by ~1e-6 of the scale; a wrong kernel differs by far more.
    worst = max(float((dev_grads[n] - g).abs().max() / g.abs().max().clamp_min(1e-12))
                for n, g in cpu_grads.items())
    loss_rel = abs(dev_loss - cpu_loss) / max(abs(cpu_loss), 1e-12)
    return {"n_structures": len(graphs), "cpu_loss": cpu_loss, "device_loss": dev_loss,
            "loss_rel_diff": loss_rel, "worst_grad_rel_diff": worst,
            "same_parameters": sorted(cpu_grads) == sorted(dev_grads),
            "ok": loss_rel < 1e-4 and worst < 1e-3 and sorted(cpu_grads) == sorted(dev_grads)}


def run(args: argparse.Namespace) -> dict:
    """Every check; the JSON-ready result."""
    import torch
    from chgnet.model import CHGNet

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device (a CPU build of torch?)")
    torch.set_num_threads(args.threads)
    with _quiet():
        source = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    n_train = args.steps * args.batch_size
    frames = r2scan_frames(args.dataset, n_train + args.n_val)
    train_frames, val_frames = frames[:n_train], frames[n_train:]
    result: dict = {"device": str(device), "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "steps": args.steps, "batch_size": args.batch_size, "n_train": n_train,
                    "threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        result["ours"] = train_ours(source, train_frames, val_frames, device=device,
                                    batch_size=args.batch_size, steps=args.steps, out=Path(tmp))
        result["stock"] = train_stock(source, train_frames, val_frames, device=device,
                                      batch_size=args.batch_size, out=Path(tmp))
    result["training_ratio_ours_over_stock"] = (
        result["ours"]["structures_per_s"] / result["stock"]["structures_per_s"])
    result["agreement"] = agreement(source, train_frames[: args.agree_batch], device)
    on_device = copy.deepcopy(source).to(device)
    result["evaluation"] = evaluation_pair(on_device, train_frames[: args.batch_size],
                                           args.batch_size)
    result["relaxation"] = relaxation_pair(
        on_device, r2scan_frames(args.dataset, args.relaxations, one_per_material=True),
        device=str(device), fmax=0.05, steps=args.relax_steps)
    return result


def report(result: dict) -> None:
    """The human-readable table."""
    ours, stock = result["ours"], result["stock"]
    unit = "GPU MB" if result["device"].startswith("cuda") else "RSS MB (process)"
    print(f"\ndevice {result['device']} ({result['gpu'] or 'no GPU'}), torch {result['torch']}; "
          f"{result['steps']} steps of batch {result['batch_size']}")
    print(f"{'path':<8} {'structures/s':>13} {'peak ' + unit:>20} {'val E meV/atom':>15}")
    for name, r in (("ours", ours), ("stock", stock)):
        print(f"{name:<8} {r['structures_per_s']:13.2f} {r['peak_memory_mb']:20.0f} "
              f"{r['val_energy_mae_mev_per_atom']:15.1f}")
    print(f"training ratio ours / stock: {result['training_ratio_ours_over_stock']:.2f}")
    a = result["agreement"]
    print(f"agreement {result['device']} vs cpu on {a['n_structures']} structures: loss "
          f"rel diff {a['loss_rel_diff']:.1e}, worst gradient rel diff "
          f"{a['worst_grad_rel_diff']:.1e} -> {'OK' if a['ok'] else 'MISMATCH'}")
    ev, rx = result["evaluation"], result["relaxation"]
    print(f"evaluation batch of {ev['n_structures']}: ours {ev['ours_structures_per_s']:.1f}, "
          f"predict_structure {ev['stock_structures_per_s']:.1f} structures/s")
    print(f"relaxations ({rx['n_relaxations']}): ours {rx['ours_relaxations_per_s']:.3f}, "
          f"StructOptimizer {rx['stock_relaxations_per_s']:.3f} relaxations/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--device", default="cuda", help="(default: %(default)s)")
    parser.add_argument("--dataset", default=str(DEFAULT_DATASET))
    parser.add_argument("--steps", type=int, default=12,
                        help="optimiser steps per training path (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--n-val", type=int, default=16, help="(default: %(default)s)")
    parser.add_argument("--agree-batch", type=int, default=16,
                        help="structures in the agreement batch (default: %(default)s)")
    parser.add_argument("--relaxations", type=int, default=4, help="(default: %(default)s)")
    parser.add_argument("--relax-steps", type=int, default=100, help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    result = run(args)
    report(result)
    print("RESULT " + json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["agreement"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
