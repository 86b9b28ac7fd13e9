"""Assemble the surrogate dataset: choose the materials, label them, write the dataset folder."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import write_json_atomic
from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.data import dataset
from mlip_transfer.data.surrogate.candidates import (
    Candidate,
    load_candidates,
    select_materials,
    with_elemental_references,
)
from mlip_transfer.data.surrogate.progress import BuildProgress
from mlip_transfer.data.surrogate.settings import (
    DEFAULT_ELEMENTAL_PATH,
    DEFAULT_OUT_DIR,
    DEFAULT_WBM_PATH,
    ELEMENT_PREFIX,
    SUMMARY_FILE,
    BuildSettings,
)
from mlip_transfer.data.surrogate.teacher_models import teacher
from mlip_transfer.data.surrogate.teachers import build_all
from mlip_transfer.energy_scale import energies

logger = logging.getLogger("mlip_transfer.data.surrogate")


def materials_table(
    frames: Sequence[dataset.Frame], candidates: dict[str, Candidate]
) -> pd.DataFrame:
    """Per material and teacher: relaxed (final-frame) energies and formation energies."""
    rows = []
    for frame in frames:
        if not frame.extra.get("final"):
            continue
        rows.append({
            "material_id": frame.material_id,
            "formula": candidates[frame.material_id].structure.composition.reduced_formula,
            "functional": frame.functional,
            "teacher": frame.extra["teacher"],
            "relaxed_energy_per_atom": frame.energy_per_atom,
            "relaxed_energy_per_atom_uncorrected": frame.energy_per_atom_uncorrected,
            "is_elemental_reference": candidates[frame.material_id].is_elemental_reference,
        })
    table = pd.DataFrame(rows).sort_values(["material_id", "functional", "teacher"],
                                           ignore_index=True)
    for suffix in ("", "_uncorrected"):
        column = f"relaxed_energy_per_atom{suffix}"
        # Each teacher's formation energies use that teacher's own relaxed elements.
        refs = {
            name: energies.elemental_reference_energies(
                table[table["teacher"] == name], functional=teacher(name).functional, column=column
            )
            for name in table["teacher"].unique()
        }
        table[f"formation_energy_per_atom{suffix}"] = [
            energies.formation_energy_per_atom(
                candidates[row.material_id].structure.composition,
                getattr(row, column),
                refs[row.teacher],
                record=row.material_id,
            )
            for row in table.itertuples(index=False)
        ]
    return table.loc[:, [*dataset.MATERIAL_COLUMNS, "teacher"]]


def _frame_order(frame: dataset.Frame) -> tuple:
    return frame.material_id, frame.functional, frame.extra["teacher"], frame.extra["step"]


def _versions() -> dict[str, str]:
    out = {}
    for package in ("chgnet", "torch", "pymatgen", "ase", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _drawn_ids(
    candidates: dict[str, Candidate], settings: BuildSettings, material_ids: Sequence[str] | None
) -> list[str]:
    """The requested materials, or the seeded draw of ``settings.n_materials`` WBM ones."""
    if material_ids is not None:
        return sorted(set(material_ids))
    wbm_ids = [mid for mid, c in candidates.items() if not c.is_elemental_reference]
    return select_materials(wbm_ids, n=settings.n_materials, seed=settings.seed)


def _without_failed_references(
    results: list[dict[str, Any]], failed: dict[str, str], candidates: dict[str, Candidate]
) -> list[str]:
    """Materials that relaxed but have an element whose reference failed (no formation energy)."""
    failed_elements = {
        mid[len(ELEMENT_PREFIX):] for mid in failed if candidates[mid].is_elemental_reference
    }
    dropped = sorted(
        r["material_id"] for r in results if not r["error"] and failed_elements & {
            el.symbol for el in candidates[r["material_id"]].structure.composition.elements}
    )
    for mid in dropped:
        logger.warning("dropping %s: its elemental reference failed", mid)
    return dropped


def _write_provenance(
    out_dir: Path,
    *,
    settings: BuildSettings,
    material_ids: list[str] | None,
    inputs: Sequence[Path],
    chosen: Sequence[str],
    candidates: dict[str, Candidate],
) -> None:
    SURROGATE_DEFAULT.write(
        out_dir,
        build_settings=asdict(settings),
        material_ids=material_ids,
        teachers={name: asdict(teacher(name)) for name in settings.teachers},
        inputs={path.name: {"sha256": _sha256(path)} for path in inputs},
        elemental_reference_origins={
            mid: candidates[mid].origin for mid in chosen if candidates[mid].is_elemental_reference
        },
        package_versions=_versions(),
    )


def build_surrogate_dataset(
    *,
    wbm_path: str | Path = DEFAULT_WBM_PATH,
    elemental_path: str | Path = DEFAULT_ELEMENTAL_PATH,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    settings: BuildSettings | None = None,
    material_ids: Sequence[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the surrogate dataset and write it to ``out_dir``.

    Writes ``frames.jsonl.gz``, ``materials.csv``, ``provenance.json`` and
    ``build_summary.json``. Each material's result goes to ``build_progress.jsonl`` in
    ``out_dir`` as soon as it is relaxed (:mod:`.progress`): an interrupted build, rerun with the
    same settings (``processes`` may differ) and inputs, relaxes only what is missing and writes
    the same files. The progress file is removed once the dataset is written.

    Args:
        wbm_path: WBM records (``material_id``, ``structure``, ``energy``, ``corrected_energy``).
        elemental_path: MatPES-PBE elemental ground states, element -> record with ``structure``.
        out_dir: Output folder (created).
        settings: Build settings; defaults to :class:`BuildSettings()`.
        material_ids: Build exactly these materials (WBM ids and/or ``elem-<Symbol>``) instead
            of a seeded draw of ``settings.n_materials``; the elemental references of their
            elements are always added.
        progress: Show a tqdm progress bar.

    With ``settings.processes > 1`` the workers are spawned, which re-imports the calling
    script: call this from a script only under ``if __name__ == "__main__":`` (the CLI, pytest
    and notebooks are fine).

    Returns:
        The build summary (also written to ``build_summary.json``).

    Raises:
        DataError: Unknown material id, malformed input, or an element without a reference.
        ConfigError: Invalid settings.
    """
    settings = settings or BuildSettings()
    wbm_path, elemental_path, out_dir = Path(wbm_path), Path(elemental_path), Path(out_dir)
    began = time.perf_counter()
    candidates = load_candidates(wbm_path=wbm_path, elemental_path=elemental_path)
    draw = _drawn_ids(candidates, settings, material_ids)
    chosen = with_elemental_references(draw, candidates)
    logger.info("building %d materials (%d elemental references) with %d process(es)",
                len(chosen), sum(candidates[m].is_elemental_reference for m in chosen),
                settings.processes)

    journal = BuildProgress(out_dir=out_dir, settings=settings,
                            inputs={path.name: _sha256(path) for path in (wbm_path, elemental_path)})
    recorded = journal.load()
    journal.start(recorded)
    resumed = [r for r in recorded if r["material_id"] in set(chosen)]
    done = {r["material_id"] for r in resumed}
    results = resumed + build_all([candidates[mid] for mid in chosen if mid not in done], settings,
                                  progress=progress, on_result=journal.append)
    failed = {r["material_id"]: r["error"] for r in results if r["error"]}
    dropped = _without_failed_references(results, failed, candidates)
    kept = [r for r in results if not r["error"] and r["material_id"] not in dropped]
    if not kept:
        raise DataError(f"every relaxation failed, e.g. {next(iter(failed.items()))}")
    frames = sorted((frame for r in kept for frame in r["frames"]), key=_frame_order)
    table = materials_table(frames, candidates)

    dataset.write_frames(out_dir / dataset.FRAMES_FILE, frames)
    dataset.write_materials(out_dir / dataset.MATERIALS_FILE, table)
    _write_provenance(out_dir, settings=settings, material_ids=None if material_ids is None else draw,
                      inputs=(wbm_path, elemental_path), chosen=chosen, candidates=candidates)
    summary = _summary(kept, frames, candidates, failed, dropped, time.perf_counter() - began,
                       teachers=settings.teachers)
    summary["resumed_materials"] = len(resumed)
    write_json_atomic(out_dir / SUMMARY_FILE, summary, sort_keys=True)  # NaN -> null
    journal.finish()
    logger.info("wrote %d frames of %d materials to %s in %.0f s", len(frames), len(kept), out_dir,
                summary["wall_time_s"])
    return summary


def _per_teacher(kept: list[dict], frames: list[dataset.Frame],
                 teachers: Sequence[str]) -> dict[str, dict[str, Any]]:
    per_teacher = {}
    for name in teachers:
        stats = [r["status"][name] for r in kept]
        per_teacher[name] = {
            "functional": teacher(name).functional,
            "frames": sum(frame.extra["teacher"] == name for frame in frames),
            "unconverged": sorted(
                r["material_id"] for r in kept if not r["status"][name]["converged"]
            ),
            "median_steps": float(np.median([s["n_steps"] for s in stats])) if stats else 0.0,
            "max_abs_force_start": max((s["max_force_start"] for s in stats), default=0.0),
            "max_abs_force_final": max((s["max_force_final"] for s in stats), default=0.0),
        }
    for entry in per_teacher.values():
        entry["n_unconverged"] = len(entry["unconverged"])
    return per_teacher


def _summary(kept: list[dict], frames: list[dataset.Frame], candidates: dict[str, Candidate],
             failed: dict[str, str], dropped: list[str], wall: float, *,
             teachers: Sequence[str]) -> dict[str, Any]:
    atoms = np.array([frame.n_atoms for frame in frames])
    elements = sorted({s for frame in frames for s in frame.species})
    n_refs = sum(candidates[r["material_id"]].is_elemental_reference for r in kept)
    return {
        "materials": len(kept) - n_refs,
        "elemental_references": n_refs,
        "frames": len(frames),
        "per_teacher": _per_teacher(kept, frames, teachers),
        # Frames left out for a force spike, listed: every other kept snapshot is a frame.
        "dropped_frames": [d for r in kept for d in r["dropped_frames"]],
        "n_elements": len(elements),
        "elements": elements,
        "atoms_per_frame": {
            "min": int(atoms.min()) if atoms.size else 0,
            "median": float(np.median(atoms)) if atoms.size else 0.0,
            "max": int(atoms.max()) if atoms.size else 0,
        },
        "failed": failed,
        "dropped_for_failed_reference": dropped,
        "n_failed": len(failed) + len(dropped),
        "n_dropped_frames": sum(len(r["dropped_frames"]) for r in kept),
        "wall_time_s": round(wall, 1),
    }
