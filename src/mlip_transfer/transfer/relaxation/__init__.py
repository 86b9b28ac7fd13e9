"""Relax structures with a CHGNet model and count failed relaxations instead of crashing.

Each structure is relaxed with ASE's FIRE on a :class:`~chgnet.model.dynamics.CHGNetCalculator`,
cell included (``FrechetCellFilter``) unless ``relax_cell=False``, until the largest force (cell
forces included) is below ``fmax`` or ``max_steps`` steps have run.

Outcomes, one row per structure (column ``failure``):

================  ======================================================================  ========
``None``          converged                                                                kept
``not_converged`` still above ``fmax`` after ``max_steps`` steps; energy of the last step  kept
``isolated_atom`` an atom is more than 6 Å from its nearest neighbour (periodic images     failed
                  counted), the paper's criterion of a failed relaxation; checked on the
                  start and the final structure, and whenever CHGNet refuses a structure
                  with an isolated atom in the middle of a relaxation
``non_finite``    NaN or infinite energy, forces or stress at some step                    failed
``error``         any other exception (its type and text in ``message``)                  failed
================  ======================================================================  ========

``failed`` is true for the last three: their energy is not usable (``energy_per_atom`` is NaN).

Modules: :mod:`.outcomes` (settings, result row, isolated-atom check, counts), :mod:`.fire`
(one relaxation on any ASE calculator), :mod:`.pool` (many, with worker processes).

Measured on the 2-core machine (CHGNet v0.3.0 from the default dataset's r2SCAN structures,
median 6-7 atoms, median 22-24 FIRE steps, fmax 0.05): ~0.06 s per step and ~1.4 s per
structure on one process; two processes ~0.09 s per step each, 16 structures in 21 s wall
including ~4 s of worker start.
"""

from mlip_transfer.transfer.relaxation.fire import relax_one
from mlip_transfer.transfer.relaxation.outcomes import (
    FAILURE_REASONS,
    ISOLATION_CUTOFF,
    RESULT_COLUMNS,
    RelaxSettings,
    failure_counts,
    final_structures,
    isolated_sites,
    nearest_neighbor_distances,
)
from mlip_transfer.transfer.relaxation.pool import relax_structures

__all__ = [
    "FAILURE_REASONS",
    "ISOLATION_CUTOFF",
    "RESULT_COLUMNS",
    "RelaxSettings",
    "failure_counts",
    "final_structures",
    "isolated_sites",
    "nearest_neighbor_distances",
    "relax_one",
    "relax_structures",
]
