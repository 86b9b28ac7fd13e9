"""Build the embedded default dataset: surrogate GGA/GGA+U and r2SCAN labels from pretrained
potentials ("teachers", :mod:`.teacher_models`).

Real WBM crystals (PBE-relaxed) and MatPES elemental ground states are perturbed (random lattice
strain, atomic rattle) and relaxed separately, from the same start, with each teacher:

* ``chgnet-0.3.0`` (GGA/GGA+U): ``CHGNet.load()``, trained on MPtrj (MP2020-corrected energies);
* ``chgnet-r2scan`` (r2SCAN): ``CHGNet.load(model_name="r2scan")``, the paper's Method-4 model;
* ``diep`` (r2SCAN): DIEP 2.0.0, trained from scratch on MatPES r2SCAN (no magnetic moments).

Each frame records its teacher (``extra.teacher``, and in its id); ``materials.csv`` has one row
per material and teacher. A parse of the dataset takes the GGA frames and one r2SCAN teacher's.

Up to ``frames_per_trajectory`` frames of each relaxation (first, last and evenly spaced between)
become canonical frames (see :mod:`mlip_transfer.data.dataset`). The GGA teacher mimics corrected
energies, so its uncorrected twin subtracts the real MP2020 correction of the WBM entry
(elemental references carry none); r2SCAN energies have no corrections.

Elemental references have material ids ``elem-<Symbol>`` (``elem-Fe``); their structures are the
MatPES-PBE ground states, whose MatPES ids are recorded in ``provenance.json``.

Every random choice derives from ``(seed, material_id)`` alone, and each relaxation runs on one
torch thread, so a subset build reproduces the full build's records exactly and the output is
byte-identical across runs on one machine (``build_summary.json`` differs only in wall time).

Modules, one job each:

* :mod:`.settings`: :class:`BuildSettings` and the fixed names;
* :mod:`.candidates`: the starting structures and the seeded draw of materials;
* :mod:`.relax`: perturbation of a structure and its relaxation with one teacher;
* :mod:`.teacher_models`: the teachers by name;
* :mod:`.teachers`: labelling of materials by every teacher, in a worker pool;
* :mod:`.build`: assembly and writing of the dataset folder;
* :mod:`.cli`: ``python -m mlip_transfer.data.surrogate``.
"""

from mlip_transfer.data.surrogate.build import build_surrogate_dataset, materials_table
from mlip_transfer.data.surrogate.candidates import (
    Candidate,
    load_candidates,
    select_materials,
    with_elemental_references,
)
from mlip_transfer.data.surrogate.cli import main
from mlip_transfer.data.surrogate.relax import kept_steps, perturb
from mlip_transfer.data.surrogate.settings import (
    DEFAULT_ELEMENTAL_PATH,
    DEFAULT_OUT_DIR,
    DEFAULT_WBM_PATH,
    ELEMENT_PREFIX,
    FUNCTIONALS,
    SUMMARY_FILE,
    BuildSettings,
)
from mlip_transfer.data.surrogate.teacher_models import TEACHERS, Teacher, teacher
from mlip_transfer.data.surrogate.teachers import build_material

__all__ = [
    "DEFAULT_ELEMENTAL_PATH",
    "DEFAULT_OUT_DIR",
    "DEFAULT_WBM_PATH",
    "ELEMENT_PREFIX",
    "FUNCTIONALS",
    "SUMMARY_FILE",
    "TEACHERS",
    "BuildSettings",
    "Candidate",
    "Teacher",
    "build_material",
    "build_surrogate_dataset",
    "kept_steps",
    "load_candidates",
    "main",
    "materials_table",
    "perturb",
    "select_materials",
    "teacher",
    "with_elemental_references",
]
