"""Evaluate one model on the test split: label errors, stability relaxations, hull errors."""

import json
from pathlib import Path

from mlip_transfer.core.device import resolve_device
from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.dataset import iter_frames, read_materials
from mlip_transfer.data.split import read_split
from mlip_transfer.transfer.evaluation import evaluate_stability, static_energies
from mlip_transfer.transfer.frames import PAPER_ROWS, frames_by_split
from mlip_transfer.transfer.models import load_chgnet
from mlip_transfer.transfer.relaxation import relax_structures
from mlip_transfer.transfer.training import evaluate_errors


def main(smk) -> None:
    label = smk.wildcards.model
    with rule_log(smk.log[0], f"evaluate {label}") as log:
        settings = smk.params.evaluation
        model_ref = smk.input.model if hasattr(smk.input, "model") else smk.params.reference
        # The GPU when present (training.device: auto): static errors and relaxations on it, in
        # this process; on the CPU, relaxations run in spawned single-thread workers.
        device = resolve_device(smk.params.device)
        model = load_chgnet(model_ref, device=str(device))
        log.info("device %s", device)
        split = read_split(smk.input.split)
        frames = frames_by_split(iter_frames(smk.input.frames), split, functional=smk.params.functional)
        errors = evaluate_errors(model, frames["test"], batch_size=settings["batch_size"])
        log.info("test errors: %s", errors)
        # Relax each test material from its first (perturbed) frame; competitors are the model's
        # static energies on the reference relaxed structures (see evaluation.COMPETITOR_DEVIATION).
        by_material = {}
        for group in frames.values():
            for frame in group:
                by_material.setdefault(frame.material_id, []).append(frame)
        ordered = {m: sorted(fs, key=lambda f: f.extra.get("step", 0)) for m, fs in by_material.items()}
        test_ids = sorted({f.material_id for f in frames["test"]})
        starts = {m: ordered[m][0].to_structure() for m in test_ids}
        relaxed = relax_structures(
            starts,
            model_path_or_name=model_ref,
            fmax=settings["relax_fmax"],
            max_steps=settings["relax_max_steps"],
            processes=1 if device.type == "cuda" else smk.threads,
            device=str(device),
        )
        relaxed.to_csv(smk.output.relaxed, index=False)
        finals = {m: fs[-1].to_structure() for m, fs in ordered.items()}
        competitors = static_energies(model, finals, batch_size=settings["batch_size"])
        materials = read_materials(smk.input.materials)
        summary, per_material = evaluate_stability(
            model_label=label,
            relaxed=relaxed,
            reference_materials=materials,
            test_ids=test_ids,
            competitor_energies=competitors,
            functional=smk.params.functional,
        )
        per_material.to_csv(smk.output.hull, index=False)
        metrics = {
            "model": label,
            "paper_row": PAPER_ROWS.get(label),
            "energy_mae_mev": errors["energy_mae_mev_per_atom"],
            "force_mae_mev": errors["force_mae_mev_per_a"],
            "stress_mae_gpa": errors["stress_mae_gpa"],
            "magmom_mae": errors["magmom_mae_mub"],
            "n_test_frames": errors["n_frames"],
            **summary,
        }
        Path(smk.output.metrics).write_text(json.dumps(metrics, indent=2, default=str) + "\n")


# Relaxation workers are spawned and re-import this file: only the parent evaluates.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821
