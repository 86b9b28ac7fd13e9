"""Load a user-supplied target dataset from extended XYZ files.

Each frame is parsed by ASE's extxyz reader. Labels are looked up by configurable names, first in
``atoms.info`` / ``atoms.arrays`` and then in ``atoms.calc.results``: ASE moves the standard
names (``energy``, ``forces``, ``stress``, ``magmoms``) into a ``SinglePointCalculator`` on
reading, while other names (``REF_energy``, ...) stay in ``info``/``arrays``.

Units and conventions:

* energy in eV (total), forces in eV/Å, magnetic moments in μB;
* stress in ASE's convention (positive = tensile, as in the canonical format) and, by default,
  ASE's unit eV/Å³, converted to GPa (x 160.2177); ``stress_unit="GPa"`` takes it as is. Voigt
  6-vectors (xx, yy, zz, yz, xz, xy) and 3x3 / 9-vectors are both accepted.

Ids: ``material_id`` comes from ``info[material_id_key]``; when a frame has none, each such frame
is its own material with id ``{file stem}-{index}`` (index = position in the file, from 0). The
frame id is ``info[frame_id_key]`` or ``{file stem}-{index}``. Splits group frames by material id,
so supply material ids whenever several frames belong to one material.

Frames are split on their atom-count lines before ASE parses them, so that with
``on_invalid="drop"`` one bad frame (an unknown element, a NaN energy) is skipped without losing
the rest of the file. A file whose frame layout itself is broken (a bad count line, a truncated
last frame) always raises.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.io import read as ase_read
from ase.stress import voigt_6_to_full_3x3_stress

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import Frame, check_element, validate_frame
from mlip_transfer.data.loaders._common import (
    array,
    check_on_invalid,
    drop_invalid,
    number,
    relocate,
)
from mlip_transfer.data.report import ParseReport

STRESS_UNITS = {"eV/A3": 1.0 / units.GPa, "GPa": 1.0}


@dataclass(frozen=True, kw_only=True)
class ExtxyzConfig:
    """Names of the labels in the extxyz files and the stress unit."""

    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    stress_unit: str = "eV/A3"
    magmoms_key: str = "magmoms"
    material_id_key: str = "material_id"
    frame_id_key: str = "frame_id"
    energy_uncorrected_key: str = "energy_uncorrected"

    def __post_init__(self) -> None:
        if self.stress_unit not in STRESS_UNITS:
            raise ConfigError(
                f"stress_unit must be one of {sorted(STRESS_UNITS)}, got {self.stress_unit!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExtxyzConfig:
        """Pick this config's keys from ``values`` (other keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


def _split_frames(path: Path) -> Iterator[tuple[int, int, str]]:
    """Yield ``(index, first line number, text)`` for each frame of an extxyz file."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
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


def _atoms_to_frame(
    atoms: Atoms,
    *,
    index: int,
    stem: str,
    file: str,
    functional: str,
    source: str,
    config: ExtxyzConfig,
) -> Frame:
    info = atoms.info
    frame_id = str(info.get(config.frame_id_key, f"{stem}-{index}"))
    material_id = str(info.get(config.material_id_key, f"{stem}-{index}"))
    if not atoms.pbc.all():
        raise DataError(
            "frame is not periodic in all three directions (pbc)",
            file=file,
            record=frame_id,
            field="pbc",
        )
    extra = _extra(info, file=file, record=frame_id)
    frame = Frame(
        frame_id=frame_id,
        material_id=material_id,
        functional=functional,
        species=tuple(atoms.get_chemical_symbols()),
        lattice=np.array(atoms.cell.array, dtype=float),
        frac_coords=np.array(atoms.get_scaled_positions(wrap=False), dtype=float),
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
        }
        raise relocate(exc, file=file, fields=names) from exc
    return frame


def _unknown_symbol(text: str, *, file: str, record: str) -> None:
    """Name the offending species when ASE failed on an unknown element symbol."""
    for line in text.splitlines()[2:]:
        parts = line.split()
        if parts:
            check_element(parts[0], file=file, record=record, field="species")


def iter_extxyz_frames(
    path: str | Path,
    *,
    functional: str,
    source: str = "extxyz",
    config: ExtxyzConfig | None = None,
    on_invalid: str = "raise",
    report: ParseReport | None = None,
) -> Iterator[Frame]:
    """Yield canonical frames from one extended XYZ file, in file order.

    Args:
        path: The ``.xyz``/``.extxyz`` file.
        functional: Functional id stored on every frame.
        source: Dataset name stored on every frame.
        config: Label names and stress unit (defaults: ASE's standard names, eV/Å³).
        on_invalid: ``"raise"`` a DataError on an invalid frame, or ``"drop"`` it and record it
            in ``report`` under reason ``invalid``.
        report: Receives the count of frames read and the dropped frames.

    Raises:
        DataError: naming the file, the frame and the field.
    """
    check_on_invalid(on_invalid, report)
    config = config or ExtxyzConfig()
    path = Path(path)
    file = str(path)
    for index, line_number, text in _split_frames(path):
        record = f"{path.stem}-{index}"
        material_id = None
        if report is not None:
            report.count_read(file)
        try:
            try:
                atoms = ase_read(io.StringIO(text), format="extxyz", index=0)
            except Exception as exc:  # ASE raises many types for bad input; locate them all
                _unknown_symbol(text, file=file, record=record)
                raise DataError(
                    f"ASE cannot parse the frame at line {line_number}: {exc!r}",
                    file=file,
                    record=record,
                ) from exc
            material_id = str(atoms.info.get(config.material_id_key, record))
            yield _atoms_to_frame(
                atoms,
                index=index,
                stem=path.stem,
                file=file,
                functional=functional,
                source=source,
                config=config,
            )
        except DataError as exc:
            drop_invalid(exc, on_invalid=on_invalid, report=report, file=file,
                         frame_id=exc.record or record, material_id=material_id)


def load_extxyz(path: str | Path, **kwargs: Any) -> list[Frame]:
    """All frames of :func:`iter_extxyz_frames` (same arguments) as one list."""
    return list(iter_extxyz_frames(path, **kwargs))
