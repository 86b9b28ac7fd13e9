"""The retention report: what a fine-tune forgot on the source functional.

Fine-tuning a universal potential on a few thousand high-fidelity structures can lose what the
source model knew: its error on the source functional, the short-range repulsion it never saw
in the new data, the stability of molecular dynamics. Peers do not measure it: chgnet's
``Trainer``, MACE's ``--foundation_model`` fine-tuning (its multihead replay *mitigates*
forgetting but reports no measure of it), matgl, SevenNet and DeePMD's ``dp --finetune`` report
errors on the new data only. After every fine-tune this module reports, for each model:

1. **Source-functional error.** Energy (meV/atom) and force (meV/Å) MAE against labels of the
   source model (``training.source_model``). The reference that works for any user data is the
   source model's own predictions on the test frames' structures (:func:`source_labelled`): the
   fine-tuned model is asked to reproduce the source model where the source model was right by
   construction. Where the dataset also holds frames of the source functional for the same test
   materials (the default data: GGA frames labelled by CHGNet v0.3.0; MP data: MPtrj DFT), the
   error against those labels is reported beside it. A change of functional shifts energies
   per composition on purpose (r2SCAN and GGA absolute energies differ by eV/atom; Methods 1,
   4 and 4r refit the AtomRef), so the raw energy MAE mostly restates that shift; the
   *relative* energy MAE removes each material's mean difference and measures the energy
   landscape the source model knew. What the labels themselves changed (the test labels
   against the source model's, :func:`compare_labels`) is recorded as ``label_change``: a
   fine-tune that learned the new labels perfectly still differs from the source by that much.
2. **Dimer walls** (:mod:`mlip_transfer.transfer.dimers`).
3. **NVT stability** (:mod:`mlip_transfer.transfer.retention_md`).

The reference (frames, source labels, the source model's dimer curves, MD starts) is built once
per run (:func:`build_reference`, rule ``retention_reference``) and read by every model's job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import write_csv_atomic, write_json_atomic
from mlip_transfer.data.dataset import Frame, read_frames, write_frames
from mlip_transfer.transfer.frames import capped_test_materials, seeded_subset
from mlip_transfer.transfer.retention_settings import RetentionSettings

logger = logging.getLogger("mlip_transfer.transfer.retention")
SOURCE_LABEL_FUNCTIONAL = "source-model"
REFERENCE_FILES = {
    "labelled": "source_labelled.jsonl.gz",
    "source_frames": "source_frames.jsonl.gz",
    "md_starts": "md_starts.jsonl.gz",
    "dimers": "source_dimers.csv",
    "summary": "reference.json",
}


@dataclass(frozen=True, kw_only=True)
class RetentionReference:
    """What every model of a run is compared with.

    Attributes:
        source_model: The source model (a chgnet name or a file).
        labelled: Test frames relabelled by the source model (:func:`source_labelled`).
        source_frames: The dataset's frames of the source functional of the same test
            materials, with their own labels (empty where there are none).
        md_starts: Start structures of the NVT runs.
        elements: The dimer elements.
        source_dimers: The source model's dimer curves (:func:`~.dimers.dimer_curves`).
        info: Where it came from (functionals, counts, the data's banner).
    """

    source_model: str
    labelled: list[Frame]
    source_frames: list[Frame]
    md_starts: list[Frame]
    elements: list[str]
    source_dimers: pd.DataFrame
    info: dict[str, Any]

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write the files of :data:`REFERENCE_FILES` into ``folder``; returns their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {key: folder / name for key, name in REFERENCE_FILES.items()}
        for key in ("labelled", "source_frames", "md_starts"):
            write_frames(paths[key], getattr(self, key))
        write_csv_atomic(paths["dimers"], self.source_dimers, index=False)
        write_json_atomic(paths["summary"], {"source_model": self.source_model,
                                             "elements": self.elements, **self.info})
        return paths

    @classmethod
    def read(cls, folder: str | Path) -> RetentionReference:
        folder = Path(folder)
        summary = json.loads((folder / REFERENCE_FILES["summary"]).read_text())
        frames = {key: read_frames(folder / REFERENCE_FILES[key])
                  for key in ("labelled", "source_frames", "md_starts")}
        return cls(
            source_model=summary.pop("source_model"), elements=summary.pop("elements"),
            source_dimers=pd.read_csv(folder / REFERENCE_FILES["dimers"]), info=summary,
            **frames,
        )  # fmt: skip


# --------------------------------------------------------------------------- selection


def dimer_elements(frames: Iterable[Frame], max_elements: int) -> list[str]:
    """The elements of the frames' materials, most frequent first (materials holding each;
    ties alphabetical), at most ``max_elements``."""
    per_material: dict[str, set[str]] = {}
    for frame in frames:
        per_material.setdefault(frame.material_id, set()).update(frame.species)
    counts = Counter(el for elements in per_material.values() for el in elements)
    return sorted(counts, key=lambda el: (-counts[el], el))[:max_elements]


def last_frames(frames: Iterable[Frame]) -> dict[str, Frame]:
    """Material id -> its frame of the highest relaxation step (file order breaks ties)."""
    last: dict[str, Frame] = {}
    for frame in frames:
        held = last.get(frame.material_id)
        if held is None or frame.extra.get("step", 0) >= held.extra.get("step", 0):
            last[frame.material_id] = frame
    return last


def source_labelled(model: Any, frames: Sequence[Frame], *, batch_size: int = 16) -> list[Frame]:
    """The frames with the model's energy, forces, stress and magmoms as labels.

    Predictions take the evaluation's batched path (fused force/stress gradient,
    :func:`~mlip_transfer.transfer.forward.predict_efsm`); frames the graph converter rejects
    are left out.
    """
    import torch

    from mlip_transfer.transfer.forward import frozen_parameters, predict_efsm
    from mlip_transfer.transfer.graphs import shared_graph_cache, to_device
    from mlip_transfer.transfer.metrics import model_device

    graphs = shared_graph_cache(model.graph_converter).graphs(frames)
    kept = [(g, f) for g, f in zip(graphs, frames, strict=True) if g is not None]
    device = model_device(model)
    out: list[Frame] = []
    model.eval()
    with frozen_parameters(model):
        for start in range(0, len(kept), batch_size):
            chunk = kept[start:start + batch_size]
            batch, _ = to_device([g for g, _ in chunk], {}, device, forces=True)
            prediction = predict_efsm(model, batch, create_graph=False)
            energies = prediction["e"].detach().cpu().numpy().reshape(-1)
            for k, (_, frame) in enumerate(chunk):
                out.append(dataclasses.replace(
                    frame,
                    functional=SOURCE_LABEL_FUNCTIONAL,
                    energy=float(energies[k]) * frame.n_atoms,
                    energy_uncorrected=None,
                    forces=prediction["f"][k].detach().cpu().numpy().astype(float),
                    stress=prediction["s"][k].detach().cpu().numpy().astype(float).reshape(3, 3),
                    magmoms=torch.abs(prediction["m"][k]).detach().cpu().numpy().astype(float)
                    .reshape(-1),
                ))  # fmt: skip
    return out


def build_reference(
    *,
    source_model: Any,
    source_name: str,
    test_frames: Sequence[Frame],
    source_frames: Sequence[Frame],
    settings: RetentionSettings,
    info: Mapping[str, Any] | None = None,
) -> RetentionReference:
    """The reference of a run from its (capped) test frames of the target functional and the
    frames of the source functional of the same materials.

    Args:
        source_model: The loaded source CHGNet.
        source_name: Its name or file (recorded).
        test_frames: Target-functional frames of the test materials.
        source_frames: Source-functional frames of the same materials (may be empty).
        settings: The report's settings.
        info: Provenance to record (functionals, data banner).
    """
    from mlip_transfer.transfer.dimers import dimer_curves

    if not test_frames:
        raise DataError("no test frames for the retention report", field="test")
    cap = settings.max_frames
    chosen = seeded_subset(test_frames, cap, seed=settings.seed) if cap else list(test_frames)
    chosen_source = (seeded_subset(source_frames, cap, seed=settings.seed) if cap
                     else list(source_frames))
    labelled = source_labelled(source_model, chosen, batch_size=settings.batch_size)
    # What the labels themselves changed: the test labels against the source model's.
    label_change = compare_labels(chosen, labelled)
    finals = last_frames(test_frames)
    n_md = settings.nvt.structures
    md_ids = capped_test_materials(finals, n_md) if n_md else []
    elements = dimer_elements(test_frames, settings.dimers.max_elements)
    curves = dimer_curves(source_model, elements, settings.dimers)
    materials = {f.material_id for f in test_frames}
    logger.info("retention reference: %d of %d test frames relabelled by %s, %d of %d %s "
                "frames, %d NVT starts, dimers of %s", len(labelled), len(test_frames),
                source_name, len(chosen_source), len(source_frames), settings.source_functional,
                len(md_ids), ", ".join(elements))
    return RetentionReference(
        source_model=str(source_name), labelled=labelled, source_frames=chosen_source,
        md_starts=[finals[m] for m in md_ids], elements=elements, source_dimers=curves,
        info={**dict(info or {}), "source_functional": settings.source_functional,
              "n_test_materials": len(materials), "n_test_frames": len(test_frames),
              "n_source_functional_frames": len(source_frames), "label_change": label_change},
    )  # fmt: skip


# --------------------------------------------------------------------------- one model


def compare_labels(predicted: Sequence[Frame], reference: Sequence[Frame]) -> dict[str, Any] | None:
    """Energy and force MAEs of ``predicted`` against ``reference`` (frames matched by id).

    Returns:
        ``energy_mae_mev`` (meV/atom), ``relative_energy_mae_mev`` (the same after removing each
        material's mean difference, over materials with at least two frames: the energy
        landscape of a material, without the per-composition offset a change of functional
        and AtomRef shifts on purpose), ``force_mae_mev`` (meV/Å, over components),
        ``n_frames``, ``n_materials``; None when no frame matches.
    """
    by_id = {f.frame_id: f for f in reference}
    pairs = [(p, by_id[p.frame_id]) for p in predicted
             if p.frame_id in by_id and None not in (p.energy, by_id[p.frame_id].energy)]
    if not pairs:
        return None
    table = pd.DataFrame({
        "material_id": [r.material_id for _, r in pairs],
        "diff": [p.energy_per_atom - r.energy_per_atom for p, r in pairs],
    })  # fmt: skip
    grouped = table.groupby("material_id")["diff"]
    several = grouped.transform("size") > 1
    relative = (table["diff"] - grouped.transform("mean"))[several]
    forces = [np.abs(np.asarray(p.forces) - np.asarray(r.forces)).reshape(-1) for p, r in pairs
              if p.forces is not None and r.forces is not None]
    force = np.concatenate(forces) if forces else np.array([])
    return {
        "energy_mae_mev": 1000 * float(table["diff"].abs().mean()),
        "relative_energy_mae_mev": 1000 * float(relative.abs().mean()) if len(relative) else None,
        "force_mae_mev": 1000 * float(np.nanmean(force)) if force.size else None,
        "n_frames": len(pairs),
        "n_materials": int(table["material_id"].nunique()),
    }


def _errors(model: Any, frames: Sequence[Frame], batch_size: int) -> dict[str, Any] | None:
    """:func:`compare_labels` of the model's predictions on the frames against their labels."""
    if not frames:
        return None
    return compare_labels(source_labelled(model, frames, batch_size=batch_size), frames)


def retention_report(
    *,
    label: str,
    model: Any,
    reference: RetentionReference,
    settings: RetentionSettings,
    calculator: Any = None,
    is_source: bool = False,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """One model's retention report against a run's reference.

    Args:
        label: The model's label (Table 1 row).
        model: The loaded CHGNet model.
        reference: :class:`RetentionReference` of the run.
        settings: The report's settings.
        calculator: An ASE calculator for the NVT runs instead of chgnet's (tests).
        is_source: The model is the source model itself (its row is the baseline; recorded).

    Returns:
        ``(summary, dimers, md)``: the ``retention.json`` content, the dimer curves with the
        source model's beside them (``source_energy``) and one row per NVT run.
    """
    from mlip_transfer.transfer.dimers import dimer_curves, wall_table
    from mlip_transfer.transfer.retention_md import count_stable, nvt_runs

    source_labels = _errors(model, reference.labelled, settings.batch_size)
    source_frames = _errors(model, reference.source_frames, settings.batch_size)
    curves = dimer_curves(model, reference.elements, settings.dimers)
    walls = wall_table(curves, settings=settings.dimers, source=reference.source_dimers)
    source = reference.source_dimers[["element", "distance", "energy"]].rename(
        columns={"energy": "source_energy"})
    curves = curves.assign(distance=curves["distance"].round(6)).merge(
        source.assign(distance=source["distance"].round(6)), on=["element", "distance"],
        how="left")
    md = nvt_runs(model, reference.md_starts, settings.nvt, seed=settings.seed,
                  calculator=calculator)
    lost = walls[walls["lost"]]
    summary = {
        "model": label,
        "source_model": reference.source_model,
        "is_source_model": is_source,
        "source_labels": source_labels and {
            **source_labels,
            "reference": f"source model {reference.source_model} on the test frames' structures",
        },
        "source_frames": source_frames and {
            **source_frames,
            "reference": f"the dataset's {settings.source_functional} frames of the test "
            "materials, their own labels",
        },
        "dimers": {
            "n_elements": len(walls), "n_lost": len(lost),
            "lost": dict(zip(lost["element"], lost["reason"], strict=True)),
            "walls": walls.drop(columns=["lost"]).to_dict("records"),
        },
        "nvt": {**count_stable(md), "duration_ps": settings.nvt.duration_ps,
                "temperature": settings.nvt.temperature},
        "reference": reference.info,
        "settings": settings.to_dict(),
    }  # fmt: skip
    logger.info("%s retention: source labels %s; %s frames %s; dimer walls lost %d/%d %s; "
                "NVT stable %d/%d", label, _short(source_labels), settings.source_functional,
                _short(source_frames), len(lost), len(walls), summary["dimers"]["lost"],
                summary["nvt"]["n_stable"], summary["nvt"]["n_runs"])
    return summary, curves, md


def _short(errors: Mapping[str, Any] | None) -> str:
    if not errors:
        return "n/a"
    return (f"E {errors['energy_mae_mev']:.1f} meV/atom (within materials "
            f"{errors['relative_energy_mae_mev']}), F {errors['force_mae_mev']} meV/Å "
            f"({errors['n_frames']} frames)")


def table1_columns(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The Table 1 columns of one ``retention.json`` (:data:`RETENTION_COLUMNS`)."""
    labels = summary.get("source_labels") or {}
    frames = summary.get("source_frames") or {}
    return {
        "model": summary["model"],
        "source_energy_mae_mev": labels.get("energy_mae_mev", np.nan),
        "source_relative_energy_mae_mev": labels.get("relative_energy_mae_mev", np.nan),
        "source_force_mae_mev": labels.get("force_mae_mev", np.nan),
        "source_frames_energy_mae_mev": frames.get("energy_mae_mev", np.nan),
        "source_frames_relative_energy_mae_mev": frames.get("relative_energy_mae_mev", np.nan),
        "source_frames_force_mae_mev": frames.get("force_mae_mev", np.nan),
        "dimer_walls_lost": summary["dimers"]["n_lost"],
        "n_dimer_elements": summary["dimers"]["n_elements"],
        "nvt_stable": summary["nvt"]["n_stable"],
        "n_nvt_runs": summary["nvt"]["n_runs"],
    }


def table1_rows(reports: Sequence[Mapping[str, Any]], models: set[str]) -> list[dict]:
    """Table 1 columns of each retention report whose model has a row (others are dropped)."""
    return [table1_columns(report) for report in reports if report["model"] in models]


def table1_sentence(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """Header lines: what the retention columns compare with (from the first report)."""
    if not reports:
        return []
    first = reports[0]
    reference, settings = first["reference"], first["settings"]
    labels = next((r["source_labels"] for r in reports if r.get("source_labels")), None) or {}
    change = reference.get("label_change") or {}
    dimers, nvt = settings["dimers"], settings["nvt"]

    def mev(value: Any) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    sentence = (
        f"Retention (what each fine-tune forgot on the source functional): errors against "
        f"the source model {first['source_model']}'s labels on {labels.get('n_frames', 0)} "
        f"test frames of {labels.get('n_materials', 0)} materials; the relative energy MAE "
        "removes each material's mean difference (a change of functional shifts energies per "
        f"composition on purpose). The test labels themselves differ from the source model's "
        f"by {mev(change.get('relative_energy_mae_mev'))} meV/atom (relative) and "
        f"{mev(change.get('force_mae_mev'))} meV/Å: a fine-tune that learned them exactly is "
        f"that far from the source. Dimer walls: X–X from {dimers['r_min']} to "
        f"{dimers['r_max']} Å for the {first['dimers']['n_elements']} most frequent test "
        "elements, lost below "
        f"{dimers['min_wall_ev']} eV or {dimers['min_wall_ratio']} x the source model's wall. "
        f"NVT: {nvt['structures']} test structures, {nvt['steps']} steps of "
        f"{nvt['timestep_fs']} fs at {nvt['temperature']:g} K. Against the dataset's "
        f"{reference.get('source_functional', 'source-functional')} frames: the CSV's "
        "`source_frames_*` columns."
    )
    return [sentence, ""]
