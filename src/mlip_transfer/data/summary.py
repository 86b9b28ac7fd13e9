"""Tabular views and size statistics of a canonical dataset, for reports and figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlip_transfer.data.dataset import FRAMES_FILE, MATERIALS_FILE, iter_frames, read_materials
from mlip_transfer.data.split import read_split


def frame_table(frames_path: str | Path, split: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per frame: ids, functional, size, elements, energies and split (no arrays)."""
    rows = []
    for frame in iter_frames(frames_path):
        rows.append(
            {
                "frame_id": frame.frame_id,
                "material_id": frame.material_id,
                "functional": frame.functional,
                "n_atoms": frame.n_atoms,
                "elements": tuple(sorted(set(frame.species))),
                "energy_per_atom": frame.energy_per_atom,
                "energy_per_atom_uncorrected": frame.energy_per_atom_uncorrected,
                "max_force": None if frame.forces is None else float(np.linalg.norm(frame.forces, axis=1).max()),
            }
        )
    table = pd.DataFrame(rows)
    if split is not None:
        table["split"] = table["material_id"].map(split)
    return table


def load_dataset_tables(data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frame table (with split if ``split.csv`` exists) and materials table of a dataset folder."""
    data_dir = Path(data_dir)
    split_path = data_dir / "split.csv"
    split = read_split(split_path) if split_path.exists() else None
    return frame_table(data_dir / FRAMES_FILE, split), read_materials(data_dir / MATERIALS_FILE)


def dataset_statistics(frames: pd.DataFrame, materials: pd.DataFrame) -> dict:
    """Sizes a reader asks for first: materials, frames per functional, elements, atoms per frame."""
    elements = sorted({el for els in frames["elements"] for el in els})
    stats = {
        "materials": int(frames["material_id"].nunique()),
        "elemental_references": int(materials.loc[materials["is_elemental_reference"], "material_id"].nunique()),
        "frames": len(frames),
        "frames_per_functional": {k: int(v) for k, v in frames.groupby("functional").size().items()},
        "elements": len(elements),
        "element_symbols": elements,
        "atoms_per_frame": {
            "min": int(frames["n_atoms"].min()),
            "median": float(frames["n_atoms"].median()),
            "max": int(frames["n_atoms"].max()),
        },
    }
    if "split" in frames.columns:
        stats["materials_per_split"] = {
            k: int(v) for k, v in frames.groupby("split")["material_id"].nunique().items()
        }
        stats["frames_per_split"] = {k: int(v) for k, v in frames.groupby("split").size().items()}
    return stats
