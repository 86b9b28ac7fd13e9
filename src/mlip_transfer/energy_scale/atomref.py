"""Atomic reference energies (AtomRef): the paper's Eq. 2 fit.

CHGNet predicts energy per atom as ``E_GNN + c · E_elem`` where ``c`` holds the structure's
composition FRACTIONS (intensive AtomRef, ``chgnet.model.composition_model.AtomRef``) and
``E_elem`` is the 1x94 weight of ``model.composition_model.fc`` (index ``Z - 1``). Eq. 2 fits
``E_elem = (AᵀA)⁻¹AᵀE`` with ``A`` the stacked fractions and ``E`` the energies per atom.

An element the data cannot determine (absent, or confounded with others by a rank-deficient
``A``) is reported in :attr:`AtomRefFit.missing`, never set to zero: a zero weight silently
shifts every structure containing that element by its whole reference energy (~5-20 eV/atom).

Reading and writing a CHGNet model's AtomRef, and chgnet's shipped fits, are in
:mod:`mlip_transfer.energy_scale.chgnet_atomref`; parsing compositions is in
:mod:`mlip_transfer.energy_scale.compositions` (its ``CompositionLike``, ``element_amounts``
and ``composition_matrix`` are used here and importable from here too).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.files import open_atomic
from mlip_transfer.energy_scale.compositions import (
    CompositionLike,
    atomic_number,
    composition_matrix,
    element_amounts,
    record_ids,
)

__all__ = [
    "N_ELEMENTS",
    "AtomRefFit",
    "CompositionLike",
    "add_shift",
    "composition_matrix",
    "element_amounts",
    "fit_atomref",
    "fit_atomref_to_frames",
    "fit_residual_shift",
    "solve_identifiable",
]

N_ELEMENTS = 94  # CHGNet's composition vector covers H..Pu
# P[j, j] of the projector onto the null space of A above this: coefficient j is not identifiable.
_NULL_TOL = 1e-9
IDENTIFIABLE_TOL = _NULL_TOL


@dataclass(frozen=True, kw_only=True)
class AtomRefFit:
    """Per-element reference energies fitted by least squares (eV/atom).

    Attributes:
        energies: Element -> fitted energy, only for elements the data determine.
        counts: Element -> number of structures containing it (0 for requested, absent ones).
        missing: Elements requested but absent, or not identifiable (rank deficiency).
        reasons: Missing element -> why, in words.
        rank: Rank of the composition matrix.
        n_samples: Number of structures fitted.
        n_elements: Number of columns (elements requested or present).
        residual_mae: Mean absolute residual of the fit, eV/atom.
        residual_rmse: Root-mean-square residual of the fit, eV/atom.
    """

    energies: dict[str, float]
    counts: dict[str, int]
    missing: tuple[str, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)
    rank: int
    n_samples: int
    n_elements: int
    residual_mae: float
    residual_rmse: float

    def predict(
        self, compositions: Iterable[CompositionLike], *, records: Sequence[str] | None = None
    ) -> np.ndarray:
        """AtomRef contribution ``c · E_elem`` per structure, eV/atom.

        Raises:
            DataError: A composition needs an element this fit does not determine.
        """
        compositions = list(compositions)
        ids = record_ids(len(compositions), records)
        out = np.empty(len(compositions))
        for i, (comp, rid) in enumerate(zip(compositions, ids)):
            row = element_amounts(comp, record=rid)
            total = sum(row.values())
            for el in row:
                if el not in self.energies:
                    why = self.reasons.get(el, "not in the fitted data")
                    raise DataError(f"no AtomRef energy for element {el!r} ({why})", record=rid)
            out[i] = sum(amount / total * self.energies[el] for el, amount in row.items())
        return out

    def as_vector(self, n: int = N_ELEMENTS) -> np.ndarray:
        """Energies indexed by ``Z - 1`` (CHGNet's layout); NaN where not determined."""
        vector = np.full(n, np.nan)
        for el, value in self.energies.items():
            if atomic_number(el) <= n:
                vector[atomic_number(el) - 1] = value
        return vector

    def to_table(self) -> pd.DataFrame:
        """One row per element: ``element, Z, energy (NaN if missing), count, status, reason``."""
        elements = sorted(set(self.energies) | set(self.counts) | set(self.missing), key=atomic_number)
        return pd.DataFrame(
            {
                "element": elements,
                "Z": [atomic_number(el) for el in elements],
                "energy": [self.energies.get(el, np.nan) for el in elements],
                "count": [int(self.counts.get(el, 0)) for el in elements],
                "status": ["fitted" if el in self.energies else "missing" for el in elements],
                "reason": [self.reasons.get(el, "") for el in elements],
            }
        )

    def write_csv(self, path: str | Path) -> Path:
        """Write :meth:`to_table` with the fit statistics as ``# key=value`` header lines."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {k: getattr(self, k) for k in _META}
        with open_atomic(path, "w", encoding="utf-8") as handle:  # complete or absent
            for key, value in header.items():
                handle.write(f"# {key}={value!r}\n")
            # Default float formatting is repr, so energies round-trip exactly.
            self.to_table().to_csv(handle, index=False)
        return path

    @classmethod
    def read_csv(cls, path: str | Path) -> AtomRefFit:
        """Read a file written by :meth:`write_csv`."""
        path = Path(path)
        meta: dict[str, Any] = {}
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.startswith("#"):
                    break
                key, _, value = line[1:].strip().partition("=")
                meta[key] = value
        absent = [key for key in _META if key not in meta]
        if absent:
            raise DataError(f"header lines {absent} are missing", file=str(path))
        table = pd.read_csv(path, comment="#", keep_default_na=False, na_values={"energy": ["", "nan"]})
        fitted = table[table["status"] == "fitted"]
        missing = table[table["status"] == "missing"]
        return cls(
            energies=dict(zip(fitted["element"], fitted["energy"].astype(float))),
            counts={el: int(c) for el, c in zip(table["element"], table["count"])},
            missing=tuple(missing["element"]),
            reasons={el: str(r) for el, r in zip(missing["element"], missing["reason"])},
            rank=int(meta["rank"]),
            n_samples=int(meta["n_samples"]),
            n_elements=int(meta["n_elements"]),
            residual_mae=float(meta["residual_mae"]),
            residual_rmse=float(meta["residual_rmse"]),
        )


_META = ("rank", "n_samples", "n_elements", "residual_mae", "residual_rmse")


def fit_atomref(
    compositions: Iterable[CompositionLike],
    energies_per_atom: Sequence[float] | np.ndarray,
    *,
    elements: Sequence[str] | None = None,
    rcond: float | None = None,
    records: Sequence[str] | None = None,
) -> AtomRefFit:
    """Least-squares per-element energies (the paper's Eq. 2).

    Uses ``np.linalg.lstsq``; where ``A`` is rank deficient the minimum-norm solution is
    computed and only the coefficients orthogonal to the null space of ``A`` (the identifiable
    ones, whose value every least-squares solution shares) are kept.

    Args:
        compositions: One composition per structure.
        energies_per_atom: Energy per atom of each structure, eV/atom.
        elements: Elements to fit (default: those present). Requested but absent ones are
            reported in ``missing``.
        rcond: Relative singular-value cutoff (default: machine precision x max(n, k), as
            ``np.linalg.lstsq``).
        records: Ids naming structures in errors (default: their index).

    Raises:
        DataError: An energy is NaN/infinite (naming the record), lengths differ, or there is
            no data.
    """
    compositions = list(compositions)
    y = np.asarray(energies_per_atom, dtype=float).reshape(-1)
    if len(compositions) != len(y):
        raise DataError(f"{len(compositions)} compositions but {len(y)} energies")
    if len(y) == 0:
        raise DataError("no structures to fit an AtomRef to")
    ids = record_ids(len(y), records)
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise DataError(f"energy per atom is {y[bad[0]]} (not finite)", record=ids[bad[0]], field="energy")
    matrix, columns = composition_matrix(compositions, elements, records=ids)
    counts = {el: int(n) for el, n in zip(columns, (matrix > 0).sum(axis=0))}
    reasons = {el: "absent from the data" for el in columns if counts[el] == 0}
    present = [j for j, el in enumerate(columns) if counts[el] > 0]
    sub = matrix[:, present]
    solution, rank, null_proj = solve_identifiable(sub, y, rcond=rcond)
    energies: dict[str, float] = {}
    k = sub.shape[1]
    for local, j in enumerate(present):
        el = columns[j]
        if null_proj[local, local] > _NULL_TOL:
            partners = [
                columns[present[other]]
                for other in range(k)
                if other != local and abs(null_proj[local, other]) > math.sqrt(_NULL_TOL)
            ]
            reasons[el] = (
                f"not identifiable: composition matrix has rank {rank} < {k}"
                + (f"; confounded with {', '.join(partners)}" if partners else "")
            )
        else:
            energies[el] = float(solution[local])
    residual = sub @ solution - y
    return AtomRefFit(
        energies=energies,
        counts=counts,
        missing=tuple(el for el in columns if el in reasons),
        reasons=reasons,
        rank=int(rank),
        n_samples=len(y),
        n_elements=len(columns),
        residual_mae=float(np.mean(np.abs(residual))),
        residual_rmse=float(np.sqrt(np.mean(residual**2))),
    )


def solve_identifiable(
    matrix: np.ndarray, y: np.ndarray, *, rcond: float | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """Minimum-norm least squares and the projector onto the null space of ``matrix``.

    Coefficient ``j`` is identifiable (every least-squares solution shares it) iff
    ``null_proj[j, j]`` is ~0; :data:`IDENTIFIABLE_TOL` is the cut the fits use.

    Args:
        matrix: ``n x k`` design matrix (composition fractions), no all-zero column needed.
        y: ``n`` targets.
        rcond: Relative singular-value cutoff (default: machine precision x max(n, k)).

    Returns:
        ``(solution, rank, null_proj)``, ``null_proj`` being ``k x k`` (zeros at full rank).
    """
    n, k = matrix.shape
    tol = (np.finfo(float).eps * max(n, k)) if rcond is None else float(rcond)
    # One SVD gives both the minimum-norm solution (as np.linalg.lstsq) and the null space.
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    rank = int(np.sum(s > tol * s[0])) if s.size else 0
    solution = vt[:rank].T @ ((u[:, :rank].T @ y).T / s[:rank]).T
    if rank >= k:
        return solution, rank, np.zeros((k, k))
    basis = vt[:rank]
    return solution, rank, np.eye(k) - basis.T @ basis


def _single_functional(frames: Sequence[Any], functional: str | None) -> list[Any]:
    if functional is not None:
        chosen = [f for f in frames if f.functional == functional]
        if not chosen:
            raise DataError(f"no frames with functional {functional!r}", field="functional")
        return chosen
    names = sorted({f.functional for f in frames})
    if len(names) > 1:
        raise DataError(f"frames hold functionals {names}; pass functional=", field="functional")
    return list(frames)


def fit_atomref_to_frames(
    frames: Iterable[Any], *, functional: str | None = None, elements: Sequence[str] | None = None
) -> AtomRefFit:
    """Eq. 2 on canonical frames: energy per atom against species fractions.

    Args:
        frames: :class:`mlip_transfer.data.dataset.Frame` objects.
        functional: Use only frames of this functional; required if several are present.
        elements: Elements to fit (default: those present).

    Raises:
        DataError: A frame has no energy, or the functional is ambiguous.
    """
    frames = _single_functional(list(frames), functional)
    for frame in frames:
        if frame.energy is None:
            raise DataError("frame has no energy", record=frame.frame_id, field="energy")
    return fit_atomref(
        [f.species for f in frames],
        [f.energy_per_atom for f in frames],
        elements=elements,
        records=[f.frame_id for f in frames],
    )


def fit_residual_shift(
    compositions: Iterable[CompositionLike],
    target_per_atom: Sequence[float] | np.ndarray,
    source_pred_per_atom: Sequence[float] | np.ndarray,
    *,
    elements: Sequence[str] | None = None,
    rcond: float | None = None,
    records: Sequence[str] | None = None,
) -> AtomRefFit:
    """Per-element shift fitted to ``target label - source model prediction`` (Eq. 3 directly).

    The returned energies are SHIFTS: the new AtomRef is ``source AtomRef + shift`` (see
    :func:`add_shift`). Fitting the residual leaves only the smooth functional difference to
    the regression, which is far better conditioned on small data than refitting whole
    reference energies (Eq. 2).
    """
    target = np.asarray(target_per_atom, dtype=float).reshape(-1)
    source = np.asarray(source_pred_per_atom, dtype=float).reshape(-1)
    if target.shape != source.shape:
        raise DataError(f"{len(target)} target labels but {len(source)} source predictions")
    ids = record_ids(len(target), records)
    bad = np.flatnonzero(~np.isfinite(source))
    if bad.size:
        raise DataError("source prediction is not finite", record=ids[bad[0]], field="prediction")
    return fit_atomref(compositions, target - source, elements=elements, rcond=rcond, records=ids)


def add_shift(base: Mapping[str, float], shift: AtomRefFit | Mapping[str, float]) -> dict[str, float]:
    """``base + shift`` for elements present in both (others are left out, never zero-filled)."""
    values = shift.energies if isinstance(shift, AtomRefFit) else shift
    return {el: float(base[el]) + float(values[el]) for el in values if el in base}
