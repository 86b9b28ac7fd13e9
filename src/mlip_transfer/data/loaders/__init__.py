"""Readers that turn each supported data source into canonical frames.

* :mod:`.mp_trajectories`: the MPtrj / MP-r2SCAN trajectory JSON (streamed with ijson);
* :mod:`.extxyz`: user-supplied extended XYZ files (via ASE); their material ids
  (:mod:`.extxyz_materials`) and stress-unit checks (:mod:`.stress_units` by size,
  :mod:`.strain_stress` by the energies of strained frames);
* :mod:`.mp_api`: the Materials Project REST client for thermo docs, and their cache;
* :mod:`.mp_materials`: thermo docs -> the canonical materials table.
"""

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
