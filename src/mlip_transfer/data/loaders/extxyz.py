"""Load a user-supplied target dataset from extended XYZ files (``.xyz``, ``.extxyz``, ``.gz``).

Each frame is parsed by ASE's extxyz reader. Labels are looked up by configurable names, first in
``atoms.info`` / ``atoms.arrays`` and then in ``atoms.calc.results``: ASE moves the standard
names (``energy``, ``forces``, ``stress``, ``magmoms``) into a ``SinglePointCalculator`` on
reading, while other names (``REF_energy``, ...) stay in ``info``/``arrays``.

Units and conventions:

* energy in eV (total), forces in eV/Å, magnetic moments in μB;
* stress in ASE's convention (positive = tensile, as in the canonical format) and in the unit
  ``stress_unit``: ``eV/A^3`` (ASE's unit, the default), ``GPa`` or ``kBar``, converted to GPa.
  Voigt 6-vectors (xx, yy, zz, yz, xz, xy) and 3x3 / 9-vectors are both accepted. A file whose
  stresses look implausible in the declared unit gets a warning naming it
  (:mod:`.stress_units`), and so does one whose homogeneously strained frames of one material
  have energies that contradict the declared unit (:mod:`.strain_stress`).

Ids: ``material_id`` comes from ``info[material_id_key]``; a frame without one is given the
provisional id ``{file stem}-{index}`` (index = position in the file, from 0), which
:mod:`.extxyz_materials` either accepts, replaces by structure matching, or refuses (the
``material_ids_from`` setting). The frame id is ``info[frame_id_key]`` or ``{file stem}-{index}``.

Frames are split on their atom-count lines before ASE parses them, so that with
``on_invalid="drop"`` one bad frame (an unknown element, a NaN energy) is skipped without losing
the rest of the file. A file whose frame layout itself is broken (a bad count line, a truncated
last frame, a corrupted gzip stream) or that holds no frame at all always raises.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read as ase_read
from ase.stress import voigt_6_to_full_3x3_stress

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.checks import LoadChecks, check_distances, check_supported_element
from mlip_transfer.data.dataset import Frame, check_element, validate_frame
from mlip_transfer.data.loaders._common import (
    array,
    check_on_invalid,
    drop_invalid,
    number,
    relocate,
)
from mlip_transfer.data.loaders.strain_stress import StrainedFrames
from mlip_transfer.data.loaders.stress_units import STRESS_UNITS, warn_stress_unit
from mlip_transfer.data.report import ParseReport

MATERIAL_ID_MODES = ("info", "match")


@dataclass(frozen=True, kw_only=True)
class ExtxyzConfig:
    """Names of the labels in the extxyz files, the stress unit and the material-id rule.

    Attributes:
        material_ids_from: ``info``: material ids come from ``info[material_id_key]``; ``match``:
            frames without one are grouped into materials by structure matching (see
            :mod:`.extxyz_materials`).
    """

    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    stress_unit: str = "eV/A^3"
    magmoms_key: str = "magmoms"
    material_id_key: str = "material_id"
    material_ids_from: str = "info"
    frame_id_key: str = "frame_id"
    energy_uncorrected_key: str = "energy_uncorrected"

    def __post_init__(self) -> None:
        if self.stress_unit not in STRESS_UNITS:
            raise ConfigError(
                f"data.extxyz.stress_unit must be one of {list(STRESS_UNITS)}, "
                f"got {self.stress_unit!r}"
            )
        if self.material_ids_from not in MATERIAL_ID_MODES:
            raise ConfigError(
                f"data.extxyz.material_ids_from must be one of {list(MATERIAL_ID_MODES)}, "
                f"got {self.material_ids_from!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExtxyzConfig:
        """Pick this config's keys from ``values`` (other keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


def _read_lines(path: Path) -> list[str]:
    """The file's lines; a ``.gz`` file is decompressed, and a broken one raises located."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return handle.readlines()
        with open(path, encoding="utf-8") as handle:
            return handle.readlines()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"corrupted or truncated gzip stream ({exc!r})", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not a text file ({exc}); a compressed file needs the .gz suffix", file=str(path)
        ) from exc


def _split_frames(path: Path) -> Iterator[tuple[int, int, str]]:
    """Yield ``(index, first line number, text)`` for each frame of an extxyz file."""
    lines = _read_lines(path)
    position, index = 0, 0
    while position < len(lines):
        if not lines[position].strip():
            position += 1
            continue
        try:
            n_atoms = int(lines[position].split()[0])
        except ValueError as exc:
            raise DataError(
                f"line {position + 1} should hold the atom count, got {lines[position].strip()!r}",
                file=str(path),
                record=f"frame {index}",
            ) from exc
        end = position + 2 + n_atoms
        if end > len(lines):
            raise DataError(
                f"frame starting at line {position + 1} needs {n_atoms} atom lines but the file "
                "ends first; truncated file?",
                file=str(path),
                record=f"frame {index}",
            )
        yield index, position + 1, "".join(lines[position:end])
        position, index = end, index + 1
    if index == 0:
        raise DataError("the file holds no frame (empty file?): nothing to parse", file=str(path))


def _lookup(atoms: Atoms, key: str, *, per_atom: bool) -> Any:
    table = atoms.arrays if per_atom else atoms.info
    if key in table:
        return table[key]
    if atoms.calc is not None and key in atoms.calc.results:
        return atoms.calc.results[key]
    return None


def _stress(value: Any, *, scale: float, file: str, record: str, field: str) -> np.ndarray | None:
    stress = array(value, file=file, record=record, field=field)
    if stress is None:
        return None
    if stress.shape == (6,):
        stress = voigt_6_to_full_3x3_stress(stress)
    elif stress.shape == (9,):
        stress = stress.reshape(3, 3)
    return stress * scale


def _extra(info: dict, *, file: str, record: str) -> dict[str, Any]:
    """The filters' optional inputs: relaxed energy per atom and electronic convergence."""
    extra = {}
    relaxed = number(
        info.get("e_per_atom_relaxed"), file=file, record=record, field="e_per_atom_relaxed"
    )
    if relaxed is not None:
        extra["e_per_atom_relaxed"] = relaxed
    if isinstance(info.get("electronic_converged"), (bool, np.bool_)):
        extra["electronic_converged"] = bool(info["electronic_converged"])
    return extra


def _labels(atoms: Atoms, *, config: ExtxyzConfig, file: str, record: str) -> dict[str, Any]:
    """The frame's labels under the configured names, in canonical units (None if absent)."""

    def label(parse, value: Any, key: str, **options: Any) -> Any:
        return parse(value, file=file, record=record, field=key, **options)

    # Evaluated in this order, so an error names the first bad label.
    return {
        "energy": label(number, _lookup(atoms, config.energy_key, per_atom=False),
                        config.energy_key),
        "energy_uncorrected": label(number, atoms.info.get(config.energy_uncorrected_key),
                                    config.energy_uncorrected_key),
        "forces": label(array, _lookup(atoms, config.forces_key, per_atom=True),
                        config.forces_key),
        "stress": label(_stress, _lookup(atoms, config.stress_key, per_atom=False),
                        config.stress_key, scale=STRESS_UNITS[config.stress_unit]),
        "magmoms": label(array, _lookup(atoms, config.magmoms_key, per_atom=True),
                         config.magmoms_key),
    }


def _geometry(atoms: Atoms, *, file: str, record: str) -> tuple[np.ndarray, np.ndarray]:
    """Lattice and fractional coordinates; a non-periodic or non-finite geometry raises."""
    if not atoms.pbc.all():
        raise DataError(
            "frame is not periodic in all three directions (pbc)",
            file=file,
            record=record,
            field="pbc",
        )
    lattice = np.array(atoms.cell.array, dtype=float)
    if not np.all(np.isfinite(lattice)):
        raise DataError("contains NaN or infinite values", file=file, record=record,
                        field="Lattice")
    if not np.all(np.isfinite(atoms.positions)):
        raise DataError("contains NaN or infinite values", file=file, record=record, field="pos")
    if abs(np.linalg.det(lattice)) < 1e-6:
        raise DataError("lattice has zero volume", file=file, record=record, field="Lattice")
    return lattice, np.array(atoms.get_scaled_positions(wrap=False), dtype=float)


def _atoms_to_frame(
    atoms: Atoms,
    *,
    index: int,
    stem: str,
    file: str,
    functional: str,
    source: str,
    config: ExtxyzConfig,
    checks: LoadChecks,
) -> Frame:
    info = atoms.info
    frame_id = str(info.get(config.frame_id_key, f"{stem}-{index}"))
    material_id = str(info.get(config.material_id_key, f"{stem}-{index}"))
    lattice, frac_coords = _geometry(atoms, file=file, record=frame_id)
    extra = _extra(info, file=file, record=frame_id)
    frame = Frame(
        frame_id=frame_id,
        material_id=material_id,
        functional=functional,
        species=tuple(atoms.get_chemical_symbols()),
        lattice=lattice,
        frac_coords=frac_coords,
        **_labels(atoms, config=config, file=file, record=frame_id),
        source=source,
        extra=extra,
    )
    try:
        validate_frame(frame, file=file)
    except DataError as exc:
        # Name the field as the user's file calls it.
        names = {
            "energy": config.energy_key,
            "forces": config.forces_key,
            "stress": config.stress_key,
            "magmoms": config.magmoms_key,
            "energy_uncorrected": config.energy_uncorrected_key,
            "lattice": "Lattice",
            "frac_coords": "pos",
        }
        raise relocate(exc, file=file, fields=names) from exc
    for symbol in sorted(set(frame.species)):
        check_supported_element(symbol, checks=checks, file=file, record=frame_id, field="species")
    check_distances(lattice, frac_coords, frame.species, checks=checks, file=file,
                    record=frame_id, field="pos")
    return frame


def _unknown_symbol(text: str, *, file: str, record: str) -> None:
    """Name the offending species when ASE failed on an unknown element symbol."""
    for line in text.splitlines()[2:]:
        parts = line.split()
        if parts:
            check_element(parts[0], file=file, record=record, field="species")


def _parse_atoms(text: str, *, line_number: int, file: str, record: str) -> Atoms:
    try:
        return ase_read(io.StringIO(text), format="extxyz", index=0)
    except Exception as exc:  # ASE raises many types for bad input; locate them all
        _unknown_symbol(text, file=file, record=record)
        raise DataError(
            f"ASE cannot parse the frame at line {line_number}: {exc!r}", file=file, record=record
        ) from exc


def iter_extxyz_with_ids(
    path: str | Path,
    *,
    functional: str,
    source: str = "extxyz",
    config: ExtxyzConfig | None = None,
    checks: LoadChecks | None = None,
    on_invalid: str = "raise",
    report: ParseReport | None = None,
) -> Iterator[tuple[Frame, bool]]:
    """Yield ``(frame, has_material_id)`` for each frame of one extended XYZ file, in file order.

    ``has_material_id`` is False for a frame without ``info[material_id_key]``, whose material
    id is the provisional ``{file stem}-{index}``. The arguments are those of
    :func:`iter_extxyz_frames`.
    """
    check_on_invalid(on_invalid, report)
    config = config or ExtxyzConfig()
    checks = checks or LoadChecks()
    path = Path(path)
    file = str(path)
    stress_sizes = []  # per frame, max |stress component| in GPa, for the unit check
    strained = StrainedFrames()  # and a few frames per material for the energy-based check
    for index, line_number, text in _split_frames(path):
        record = f"{path.stem}-{index}"
        material_id = None
        if report is not None:
            report.count_read(file)
        try:
            atoms = _parse_atoms(text, line_number=line_number, file=file, record=record)
            material_id = str(atoms.info.get(config.material_id_key, record))
            frame = _atoms_to_frame(
                atoms,
                index=index,
                stem=path.stem,
                file=file,
                functional=functional,
                source=source,
                config=config,
                checks=checks,
            )
        except DataError as exc:
            drop_invalid(exc, on_invalid=on_invalid, report=report, file=file,
                         frame_id=exc.record or record, material_id=material_id)
            continue
        if frame.stress is not None:
            stress_sizes.append(float(np.max(np.abs(frame.stress))))
        strained.add(frame, has_material_id=config.material_id_key in atoms.info)
        yield frame, config.material_id_key in atoms.info
    warning = warn_stress_unit(stress_sizes, declared=config.stress_unit, file=file)
    if warning and report is not None:
        report.notes.setdefault("stress_unit_warnings", {})[file] = warning
    warning = strained.warn(declared=config.stress_unit, file=file)
    if warning and report is not None:
        report.notes.setdefault("stress_unit_energy_warnings", {})[file] = warning


def iter_extxyz_frames(path: str | Path, **kwargs: Any) -> Iterator[Frame]:
    """Yield canonical frames from one extended XYZ file, in file order.

    Args:
        path: The ``.xyz``/``.extxyz`` file (``.gz``-compressed or not).
        **kwargs: Keywords of the reading:

            * ``functional`` (required): functional id stored on every frame;
            * ``source``: dataset name stored on every frame (default ``extxyz``);
            * ``config``: an :class:`ExtxyzConfig` (default: ASE's names, eV/Å³);
            * ``checks``: the load-time :class:`~mlip_transfer.data.checks.LoadChecks`;
            * ``on_invalid``: ``"raise"`` a DataError on an invalid frame (default), or
              ``"drop"`` it and record it in ``report`` under reason ``invalid``;
            * ``report``: a :class:`ParseReport` that receives the count of frames read, the
              dropped frames and stress-unit warnings.

    Raises:
        DataError: naming the file, the frame and the field.
    """
    for frame, _ in iter_extxyz_with_ids(path, **kwargs):
        yield frame


def load_extxyz(path: str | Path, **kwargs: Any) -> list[Frame]:
    """All frames of :func:`iter_extxyz_frames` (same arguments) as one list."""
    return list(iter_extxyz_frames(path, **kwargs))
