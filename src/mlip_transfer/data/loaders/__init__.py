"""Readers that turn each supported data source into canonical frames.

* :mod:`.mp_trajectories`: the MPtrj / MP-r2SCAN trajectory JSON (streamed with ijson);
* :mod:`.extxyz`: user-supplied extended XYZ files (via ASE); their material ids
  (:mod:`.extxyz_materials`) and stress-unit checks (:mod:`.stress_units` by size,
  :mod:`.strain_stress` by the energies of strained frames);
* :mod:`.mp_api`: the Materials Project REST client for thermo docs, and their cache;
* :mod:`.mp_materials`: thermo docs -> the canonical materials table.

The names below are loaded on first use (PEP 562): a job that needs one reader (say the MP REST
client, for the density references) does not import the others (``ase.io`` alone costs
seconds; ``tests/core/test_import_costs.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlip_transfer.data.loaders.extxyz import ExtxyzConfig, iter_extxyz_frames, load_extxyz
    from mlip_transfer.data.loaders.mp_api import (
        MPAPIError,
        fetch_thermo_docs,
        fetch_thermo_for_trajectory_file,
        load_thermo_docs,
        save_thermo_docs,
    )
    from mlip_transfer.data.loaders.mp_materials import thermo_docs_to_materials
    from mlip_transfer.data.loaders.mp_trajectories import (
        iter_mp_trajectories,
        load_mp_trajectories,
        parse_mp_frame,
        read_material_ids,
    )

# Exported name -> the submodule that defines it.
_EXPORTS = {
    "ExtxyzConfig": "extxyz",
    "iter_extxyz_frames": "extxyz",
    "load_extxyz": "extxyz",
    "MPAPIError": "mp_api",
    "fetch_thermo_docs": "mp_api",
    "fetch_thermo_for_trajectory_file": "mp_api",
    "load_thermo_docs": "mp_api",
    "save_thermo_docs": "mp_api",
    "thermo_docs_to_materials": "mp_materials",
    "iter_mp_trajectories": "mp_trajectories",
    "load_mp_trajectories": "mp_trajectories",
    "parse_mp_frame": "mp_trajectories",
    "read_material_ids": "mp_trajectories",
}

__all__ = [
    "ExtxyzConfig",
    "MPAPIError",
    "fetch_thermo_docs",
    "fetch_thermo_for_trajectory_file",
    "iter_extxyz_frames",
    "iter_mp_trajectories",
    "load_extxyz",
    "load_mp_trajectories",
    "load_thermo_docs",
    "parse_mp_frame",
    "read_material_ids",
    "save_thermo_docs",
    "thermo_docs_to_materials",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` (once; Python caches it in ``sys.modules``)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
