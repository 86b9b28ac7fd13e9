"""One scaling-law job: train a method on a seeded subset of the training split, record its
validation errors (size 0: the untrained starting model, the paper's zero point)."""

import json
from pathlib import Path

import pandas as pd
import torch

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.dataset import iter_frames
from mlip_transfer.data.split import read_split
from mlip_transfer.scaling.laws import epochs_for_size
from mlip_transfer.transfer.frames import frames_by_split, optimizer_settings, seeded_subset
from mlip_transfer.transfer.training import build_model, evaluate_errors, train

smk = snakemake  # noqa: F821
method, size, seed = smk.wildcards.method, int(smk.wildcards.size), int(smk.wildcards.seed)
with rule_log(smk.log[0], f"scaling {method} n={size} seed={seed}") as log:
    torch.set_num_threads(smk.threads)
    settings, scaling = smk.params.training, smk.params.scaling
    frames = frames_by_split(
        iter_frames(smk.input.frames), read_split(smk.input.split), functional=settings["functional"]
    )
    subset = seeded_subset(frames["train"], size, seed=seed)
    if size > len(frames["train"]):
        log.warning("size %d exceeds the %d training frames: all are used", size, len(subset))
    atomref_frames = frames["train"] if scaling["atomref_frames"] == "all" else subset
    model, info = build_model(
        method, train_frames=atomref_frames, source_model_name=settings["source_model"], seed=seed
    )
    out_dir = Path(smk.params.out_dir)
    epochs = epochs_for_size(
        len(subset), epochs=scaling["epochs"], min_steps=scaling["min_steps"],
        batch_size=settings["batch_size"],
    )
    if epochs == 0:
        errors = evaluate_errors(model, frames["val"], batch_size=settings["batch_size"])
        energy, force = errors["energy_mae_mev_per_atom"], errors["force_mae_mev_per_a"]
        pd.DataFrame(
            [{"epoch": 0, "split": "val", "energy_mae": energy / 1000, "force_mae": force / 1000}]
        ).to_csv(smk.output.history, index=False)
        steps = 0
    else:
        result = train(
            model=model,
            train_frames=subset,
            val_frames=frames["val"],
            method=method,
            out_dir=out_dir,
            epochs=epochs,
            **optimizer_settings(settings),
            seed=seed,
            gradient_layers=None,
            info=info,
            keep_checkpoints=1,
            validate_every=None,  # only the last epoch counts: no model selection
        )
        # The last epoch's validation errors: no model selection on the validation split.
        val = result.history[result.history["split"] == "val"].sort_values("epoch").iloc[-1]
        energy, force = 1000 * float(val["energy_mae"]), 1000 * float(val["force_mae"])
        steps = epochs * -(-len(subset) // settings["batch_size"])
    record = {
        "method": method,
        "size": size,
        "n_train_frames": len(subset),
        "seed": seed,
        "epochs": epochs,
        "steps": steps,
        "n_val_frames": len(frames["val"]),
        "atomref_frames": scaling["atomref_frames"],
        "energy_mae_mev_per_atom": energy,
        "force_mae_mev_per_a": force,
    }
    Path(smk.output.result).write_text(json.dumps(record, indent=2) + "\n")
    log.info("result: %s", record)
