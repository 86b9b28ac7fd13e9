"""What one retention job costs at a config's settings, without a workflow run.

Usage:
    python benchmarks/retention_cost.py [--model r2scan] [--config config/config.yaml]

Takes ``--materials`` WBM materials of the small shipped dataset (``resources/default_dataset``,
chosen by a hash of the id) as test materials, builds the retention reference with the
config's ``evaluation.retention`` settings (source model ``training.source_model``), then one
model's report, on one torch thread; prints wall and CPU seconds of each part and the report's
numbers. A job adds ~4 s of imports and the model load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import torch
import yaml

from mlip_transfer.data.dataset import iter_frames
from mlip_transfer.transfer.models import load_chgnet
from mlip_transfer.transfer.retention import build_reference, retention_report
from mlip_transfer.transfer.retention_jobs import settings_from_config

DATASET = "resources/default_dataset/frames.jsonl.gz"


def timed(what: str, start: tuple[float, float]) -> tuple[float, float]:
    print(f"{what}: wall {time.time() - start[0]:.1f} s, CPU {time.process_time() - start[1]:.1f} s",
          flush=True)
    return time.time(), time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="r2scan", help="model file or chgnet name (default r2scan)")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--materials", type=int, default=30, help="test materials (default 30)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = yaml.safe_load(open(args.config))
    settings = settings_from_config(config["evaluation"], config["training"])
    frames = list(iter_frames(DATASET))
    wbm = sorted({f.material_id for f in frames if f.material_id.startswith("wbm")},
                 key=lambda m: hashlib.sha256(m.encode()).hexdigest())[: args.materials]
    test = [f for f in frames if f.material_id in wbm and f.functional == "r2scan"]
    gga = [f for f in frames if f.material_id in wbm and f.functional == "gga"]
    clock = time.time(), time.process_time()
    reference = build_reference(
        source_model=load_chgnet(config["training"]["source_model"]),
        source_name=config["training"]["source_model"], test_frames=test, source_frames=gga,
        settings=settings,
    )
    clock = timed(f"reference ({len(test)} + {len(gga)} frames)", clock)
    summary, _, md = retention_report(label=args.model, model=load_chgnet(args.model),
                                      reference=reference, settings=settings)
    timed("one model's report", clock)
    print(json.dumps({k: summary[k] for k in ("source_labels", "source_frames", "nvt")}, indent=1))
    print("walls (model, source, reason):", [
        (w["element"], round(w["wall_ev"], 1), round(w["source_wall_ev"], 1), w["reason"])
        for w in summary["dimers"]["walls"]])
    print(md.to_string())
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
