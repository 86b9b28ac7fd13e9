"""The energy-based stress-unit check: labelled stresses against the energies of strained frames.

Two frames of one material whose cells differ by a small homogeneous strain ``ε`` (same
species, same fractional positions up to a small rattle) tell the stress without any unit
guess: with ASE's convention (``σ = (1/V) ∂E/∂ε``, positive = tensile, the canonical one)

    E_b - E_a ≈ Σ_ij (V_a σ_a,ij + V_b σ_b,ij) / 2 ε_ij  (+ the mean forces' work on the rattle),

a trapezoid rule in the logarithmic strain ``ε``, second-order accurate.
Per material, the ratio ``s`` of the energy change to the work the labelled stress predicts is
fitted by least squares over its pairs. ``s ≈ 1`` in the declared unit is a pass; a file whose
median ``s`` is more than :data:`AGREE` off in the declared unit but within it in another unit
gets a warning naming the file, the materials and that unit. Unlike the magnitude check of
:mod:`.stress_units` this tells GPa from kBar (a factor of 10), and a negative ``s`` points to
the opposite sign convention (VASP's).

It is cheap: frames are compared only within a group of equal species lists and material id,
at most :data:`FRAMES_PER_GROUP` frames per group, with one vectorised test of their cells that
discards pairs without a strain in range (MD frames in one cell); at most
:data:`PAIRS_PER_MATERIAL` pairs per material and :data:`MATERIALS_PER_FILE` materials are
fitted. Without a usable pair it does nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import units

from mlip_transfer.data.dataset import Frame
from mlip_transfer.data.loaders.stress_units import STRESS_UNITS

log = logging.getLogger("mlip_transfer.data.parse")

AGREE = 3.0  # a ratio within [1/3, 3] of 1 agrees
FRAMES_PER_GROUP = 8
PAIRS_PER_MATERIAL = 8  # usable pairs fitted per material
MATERIALS_PER_FILE = 200  # materials with a usable pair, at most; their median decides
STRAIN_RANGE = (1e-3, 0.06)  # largest |ε_ij| of a usable pair
MAX_ROTATION = 1e-3  # largest antisymmetric part of the deformation gradient
MAX_RATTLE = 0.1  # Å, largest non-affine displacement with forces to correct for it
MAX_RATTLE_WITHOUT_FORCES = 0.01  # Å
MIN_WORK_PER_ATOM = 1e-3  # eV: smaller energy changes and works are noise


def small_strain(lattice_a: np.ndarray, lattice_b: np.ndarray) -> np.ndarray | None:
    """The symmetric (logarithmic) strain that takes cell ``a`` (rows = lattice vectors) to ``b``.

    Returns:
        ``ε`` (3x3), or None if the cells differ by a rotation or by a strain outside
        :data:`STRAIN_RANGE`.
    """
    deformation = np.linalg.solve(lattice_a, lattice_b).T  # b_i = D a_i
    if np.max(np.abs(deformation - deformation.T)) / 2 > MAX_ROTATION:
        return None
    small = float(np.max(np.abs((deformation + deformation.T) / 2 - np.eye(3))))
    if not STRAIN_RANGE[0] / 2 <= small <= 2 * STRAIN_RANGE[1]:  # cheap: skip most pairs here
        return None
    # Logarithmic (Hencky) strain: the sum of the small increments, so the trapezoid rule
    # stays second-order accurate for finite strains too.
    values, vectors = np.linalg.eigh((deformation + deformation.T) / 2)
    if np.min(values) <= 0:
        return None
    strain = (vectors * np.log(values)) @ vectors.T
    largest = float(np.max(np.abs(strain)))
    return strain if STRAIN_RANGE[0] <= largest <= STRAIN_RANGE[1] else None


def _rattle(a: Frame, b: Frame) -> np.ndarray:
    """The non-affine displacements from ``a`` to ``b`` in ``b``'s cell, Å (mean removed)."""
    delta = b.frac_coords - a.frac_coords
    delta -= np.round(delta)
    cartesian = delta @ b.lattice
    return cartesian - cartesian.mean(axis=0)


def pair_terms(a: Frame, b: Frame) -> tuple[float, float] | None:
    """``(elastic energy change, work of the labelled stress)`` in eV, or None if unusable.

    The energy change is corrected by the mean forces' work on the rattle, so slightly rattled
    frames still count; the labelled stress is the canonical one, in GPa.
    """
    if a.species != b.species or a.stress is None or b.stress is None:
        return None
    strain = small_strain(a.lattice, b.lattice)
    if strain is None:
        return None
    rattle = _rattle(a, b)
    largest = float(np.max(np.linalg.norm(rattle, axis=1)))
    with_forces = a.forces is not None and b.forces is not None
    if largest > (MAX_RATTLE if with_forces else MAX_RATTLE_WITHOUT_FORCES):
        return None
    change = b.energy - a.energy
    if with_forces:
        change += float(np.sum((a.forces + b.forces) / 2 * rattle))
    # The integrand is V σ (eV); σ in eV/Å³.
    integrand = (abs(np.linalg.det(a.lattice)) * a.stress + abs(np.linalg.det(b.lattice)) * b.stress)
    work = float(np.sum(integrand / 2 * units.GPa * strain))
    if max(abs(change), abs(work)) < MIN_WORK_PER_ATOM * a.n_atoms:
        return None
    return change, work


def _strained_pairs(frames: Sequence[Frame]) -> list[tuple[int, int]]:
    """Index pairs whose cells may differ by a strain in :data:`STRAIN_RANGE` (one vectorised
    test of all pairs, so frames of an MD run in one cell cost next to nothing)."""
    lattices = np.array([frame.lattice for frame in frames])
    if len(frames) < 2 or np.any(np.abs(np.linalg.det(lattices)) < 1e-9):
        return []
    transposed = np.einsum("iab,jbc->ijac", np.linalg.inv(lattices), lattices)  # D_ij^T
    largest = np.max(np.abs((transposed + transposed.swapaxes(-1, -2)) / 2 - np.eye(3)),
                     axis=(-1, -2))
    near = (largest >= STRAIN_RANGE[0] / 2) & (largest <= 2 * STRAIN_RANGE[1])
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(near, k=1)), strict=True)]


def material_ratio(frames: Sequence[Frame]) -> float | None:
    """Least-squares ratio of energy changes to stress works over all usable pairs, or None."""
    terms = []
    for i, j in _strained_pairs(frames):
        if (pair := pair_terms(frames[i], frames[j])) is not None:
            terms.append(pair)
            if len(terms) == PAIRS_PER_MATERIAL:
                break
    if not terms:
        return None
    change, work = np.array(terms).T
    denominator = float(np.sum(work * work))
    return float(np.sum(work * change) / denominator) if denominator > 0 else None


def _agrees(ratio: float) -> bool:
    return 1 / AGREE <= ratio <= AGREE


def _alternative(ratio: float, declared: str) -> tuple[str, float] | None:
    """The unit under which ``ratio`` (in the declared unit) would agree best, with its ratio."""
    candidates = {
        unit: abs(ratio) * STRESS_UNITS[declared] / factor
        for unit, factor in STRESS_UNITS.items()
        if unit != "eV/A3"
    }
    unit = min(candidates, key=lambda u: abs(math.log(candidates[u])))
    return (unit, candidates[unit]) if _agrees(candidates[unit]) else None


def _message(file: str, declared: str, ratios: dict[str, float], best: tuple[str, float]) -> str:
    median = float(np.median(list(ratios.values())))
    off = sorted(m for m, r in ratios.items() if not _agrees(r))
    named = ", ".join(off[:5]) + (f" and {len(off) - 5} more" if len(off) > 5 else "")
    unit, ratio = best
    sign = ""
    if median < 0:
        sign = (" The sign is opposite too: the stress must follow ASE's convention "
                "(positive = tensile), so VASP's values need negating.")
    reading = f"read as {unit} it would be {ratio:.3g}" if unit != declared else "its size fits"
    return (
        f"{file}: in material(s) {named}, the energy change between homogeneously strained frames "
        f"is {median:.3g} times (median over {len(ratios)} material(s)) the work the labelled "
        f"stress predicts in {declared}; {reading}.{sign} "
        f"Check data.extxyz.stress_unit (now {declared!r})."
    )


def energy_stress_warning(
    groups: dict[object, list[Frame]], *, declared: str, file: str
) -> str | None:
    """A warning if the energies of strained frames contradict the declared stress unit.

    Args:
        groups: Frames that may be one material (same species, same material id), each group
            at most a few frames.
        declared: The configured unit (a key of :data:`STRESS_UNITS`).
        file: The file, named in the warning.

    Returns:
        The warning text, or None if the energies agree, or no group holds a usable pair.
    """
    ratios = {}
    for frames in groups.values():
        ratio = material_ratio(frames)
        if ratio is not None:
            ratios.setdefault(frames[0].material_id, ratio)
            if len(ratios) == MATERIALS_PER_FILE:
                break
    if not ratios:
        return None
    median = float(np.median(list(ratios.values())))
    if _agrees(median):
        return None
    best = _alternative(median, declared)
    return None if best is None else _message(file, declared, ratios, best)


@dataclass
class StrainedFrames:
    """Collects, while a file is read, the few frames per group the check compares."""

    groups: dict[object, list[Frame]] = field(default_factory=dict)

    def add(self, frame: Frame, *, has_material_id: bool) -> None:
        """Keep ``frame`` if it has energy and stress and its group is not full.

        Frames without a material id are grouped by their species alone.
        """
        if frame.stress is None or frame.energy is None or not math.isfinite(frame.energy):
            return
        key = (frame.species, frame.material_id if has_material_id else None)
        group = self.groups.setdefault(key, [])
        if len(group) < FRAMES_PER_GROUP:
            group.append(frame)

    def warn(self, *, declared: str, file: str) -> str | None:
        """:func:`energy_stress_warning` of the collected frames, also logged as a warning."""
        message = energy_stress_warning(self.groups, declared=declared, file=file)
        if message:
            log.warning("%s", message)
        return message
