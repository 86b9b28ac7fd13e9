"""Build the embedded default dataset: surrogate GGA/GGA+U and r2SCAN labels from pretrained CHGNet.

Real WBM crystals (PBE-relaxed) and MatPES elemental ground states are perturbed (random lattice
strain, atomic rattle) and relaxed separately with two "teachers" shipped in the chgnet wheel:

* ``gga``: ``CHGNet.load()`` (v0.3.0, trained on MPtrj, whose energies are MP2020-corrected);
* ``r2scan``: ``CHGNet.load(model_name="r2scan")`` (the paper's Method-4 model).

Up to ``frames_per_trajectory`` frames of each relaxation (first, last and evenly spaced between)
become canonical frames (see :mod:`mlip_transfer.data.dataset`). The GGA teacher mimics corrected
energies, so its uncorrected twin subtracts the real MP2020 correction of the WBM entry
(elemental references carry none); r2SCAN energies have no corrections.

Elemental references have material ids ``elem-<Symbol>`` (``elem-Fe``); their structures are the
MatPES-PBE ground states, whose MatPES ids are recorded in ``provenance.json``.

Every random choice derives from ``(seed, material_id)`` alone, and each relaxation runs on one
torch thread, so a subset build reproduces the full build's records exactly and the output is
byte-identical across runs on one machine (``build_summary.json`` differs only in wall time).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import logging
import multiprocessing
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.provenance import SURROGATE_DEFAULT
from mlip_transfer.data import dataset
from mlip_transfer.energy_scale import energies

logger = logging.getLogger("mlip_transfer.data.surrogate")

FUNCTIONALS = ("gga", "r2scan")
# CHGNet.load(model_name=...) of each teacher: v0.3.0 (MPtrj) and the paper's r2SCAN model.
TEACHER_MODELS = {"gga": "0.3.0", "r2scan": "r2scan"}
ELEMENT_PREFIX = "elem-"
DEFAULT_WBM_PATH = Path("resources/reference/wbm-random-pbe52-equilibrium-2025.1.json.gz")
DEFAULT_ELEMENTAL_PATH = Path("resources/reference/MatPES-PBE-Element-Refs.json.gz")
DEFAULT_OUT_DIR = Path("resources/default_dataset")
SUMMARY_FILE = "build_summary.json"


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    """Settings of a surrogate build.

    Attributes:
        n_materials: WBM materials to draw (elemental references come on top).
        seed: Seed of the material selection and of every perturbation.
        strain: Largest magnitude of each (symmetric) lattice strain component.
        rattle: Standard deviation of the Gaussian atomic displacements, Å.
        fmax: Force convergence criterion of FIRE, eV/Å (includes cell forces).
        max_steps: FIRE step limit; unconverged relaxations are kept and flagged.
        frames_per_trajectory: Frames kept per relaxation (first, last, evenly between).
        processes: Worker processes; each relaxation runs on one torch thread regardless,
            so this changes speed, never the output.
        relax_cell: Relax the cell with ASE's FrechetCellFilter, not only positions.
    """

    n_materials: int = 250
    seed: int = 0
    strain: float = 0.05
    rattle: float = 0.05
    fmax: float = 0.1
    max_steps: int = 60
    frames_per_trajectory: int = 4
    processes: int = 2
    relax_cell: bool = True

    def __post_init__(self) -> None:
        positive = ("n_materials", "fmax", "frames_per_trajectory", "processes")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("strain", "rattle", "max_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}")
        if self.strain >= 0.5:
            raise ConfigError(f"strain must be below 0.5, got {self.strain!r}")


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A starting structure with what the labels need to know about it."""

    material_id: str
    structure: Structure
    correction_per_atom: float  # MP2020 correction of the GGA entry, eV/atom
    is_elemental_reference: bool
    origin: str


# --------------------------------------------------------------------------- inputs


def _plain_structure(record: dict[str, Any], *, file: str, material_id: str) -> Structure:
    try:
        structure = Structure.from_dict(record)
    except Exception as exc:  # pymatgen raises many types on malformed dicts
        raise DataError(f"bad structure ({exc})", file=file, record=material_id) from exc
    if not structure.is_ordered:
        raise DataError("disordered structure", file=file, record=material_id, field="structure")
    # Drop site properties (magmoms, forces) of the source so nothing leaks into the inputs.
    return Structure(structure.lattice, structure.species, structure.frac_coords)


def load_candidates(*, wbm_path: str | Path, elemental_path: str | Path) -> dict[str, Candidate]:
    """Read the WBM structures and the elemental ground states, keyed by material id.

    Raises:
        DataError: A record lacks a field or holds an unusable structure.
    """
    candidates: dict[str, Candidate] = {}
    with gzip.open(wbm_path, "rt", encoding="utf-8") as handle:
        wbm = json.load(handle)
    for index, record in enumerate(wbm):
        mid = record.get("material_id") or f"entry {index}"
        for key in ("material_id", "structure", "energy", "corrected_energy"):
            if record.get(key) is None:
                raise DataError(
                    "required field is missing", file=str(wbm_path), record=mid, field=key
                )
        structure = _plain_structure(record["structure"], file=str(wbm_path), material_id=mid)
        correction = (record["corrected_energy"] - record["energy"]) / len(structure)
        candidates[mid] = Candidate(
            material_id=mid,
            structure=structure,
            correction_per_atom=float(correction),
            is_elemental_reference=False,
            origin="WBM",
        )
    with gzip.open(elemental_path, "rt", encoding="utf-8") as handle:
        elements = json.load(handle)
    for symbol, record in sorted(elements.items()):
        mid = f"{ELEMENT_PREFIX}{symbol}"
        if record.get("structure") is None:
            raise DataError("required field is missing", file=str(elemental_path), record=symbol,
                            field="structure")
        structure = _plain_structure(record["structure"], file=str(elemental_path), material_id=mid)
        if [el.symbol for el in structure.composition.elements] != [symbol]:
            raise DataError(
                f"structure is not pure {symbol}", file=str(elemental_path), record=symbol
            )
        candidates[mid] = Candidate(
            material_id=mid,
            structure=structure,
            correction_per_atom=0.0,
            is_elemental_reference=True,
            origin=f"MatPES-PBE {record.get('matpes_id', '?')}",
        )
    return candidates


# --------------------------------------------------------------------------- selection


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()


def select_materials(material_ids: Iterable[str], *, n: int, seed: int) -> list[str]:
    """Draw ``n`` material ids by a seeded hash order that ignores the input order.

    Raises:
        ConfigError: Fewer than ``n`` ids are available.
    """
    pool = sorted(set(material_ids), key=lambda mid: (_digest("select", seed, mid), mid))
    if n > len(pool):
        raise ConfigError(f"n_materials={n} exceeds the {len(pool)} materials available")
    return sorted(pool[:n])


def with_elemental_references(
    material_ids: Iterable[str], candidates: dict[str, Candidate]
) -> list[str]:
    """Add the elemental reference of every element present; raise DataError if one is missing."""
    chosen = set(material_ids)
    for mid in list(chosen):
        if mid not in candidates:
            raise DataError("unknown material id", record=mid)
        for element in candidates[mid].structure.composition.elements:
            ref = f"{ELEMENT_PREFIX}{element.symbol}"
            if ref not in candidates:
                raise DataError(
                    f"no elemental reference structure for {element.symbol}", record=mid
                )
            chosen.add(ref)
    return sorted(chosen)


# --------------------------------------------------------------------------- one material


def perturb(structure: Structure, *, seed: int, material_id: str, strain: float,
            rattle: float) -> Structure:
    """Strain the lattice and rattle the atoms with a generator seeded by (seed, material_id)."""
    rng = np.random.default_rng(int.from_bytes(_digest("perturb", seed, material_id)[:8], "little"))
    eps = rng.uniform(-strain, strain, size=(3, 3))
    deformation = np.eye(3) + 0.5 * (eps + eps.T)  # symmetric: no rigid rotation
    lattice = structure.lattice.matrix @ deformation
    cart = structure.frac_coords @ lattice + rng.normal(0.0, rattle, size=(len(structure), 3))
    return Structure(Lattice(lattice), structure.species, cart, coords_are_cartesian=True)


def kept_steps(n_snapshots: int, k: int) -> list[int]:
    """Indices of the first, the last and evenly spaced snapshots between (at most ``k``)."""
    if k == 1:
        return [n_snapshots - 1]
    return sorted({int(i) for i in np.round(np.linspace(0, n_snapshots - 1, min(k, n_snapshots)))})


_TEACHERS: dict[str, Any] = {}


def _init_worker() -> None:
    """Load both teachers once per process, on one torch thread (fastest for single structures)."""
    import torch
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    torch.set_num_threads(1)
    # FrechetCellFilter's tiny 3x3 scipy operations run ~10x slower on a multi-threaded BLAS.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    # Harmless noise: chgnet's volume tensor, and scipy's logm (err ~1e-12) in FrechetCellFilter.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    warnings.filterwarnings("ignore", message="logm result may be inaccurate")
    if _TEACHERS:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # chgnet prints its device
        for functional, name in TEACHER_MODELS.items():
            model = CHGNet.load(model_name=name, verbose=False, use_device="cpu")
            _TEACHERS[functional] = CHGNetCalculator(
                model=model, use_device="cpu", on_isolated_atoms="error"
            )


def _relax(
    structure: Structure, functional: str, settings: BuildSettings
) -> tuple[list[dict], bool]:
    """Relax with one teacher; return every snapshot (step 0 = start) and convergence."""
    from ase import units
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = _TEACHERS[functional]
    snapshots: list[dict] = []

    def observe() -> None:
        snapshots.append({
            "lattice": np.array(atoms.get_cell()[:], dtype=float),
            "frac_coords": atoms.get_scaled_positions(wrap=True),
            "energy": float(atoms.get_potential_energy()),
            "forces": np.array(atoms.get_forces(), dtype=float),
            # CHGNet's GPa stress already has the ASE sign (positive = tensile).
            "stress": np.array(atoms.get_stress(voigt=False), dtype=float) / units.GPa,
            "magmoms": np.array(atoms.get_magnetic_moments(), dtype=float),
        })

    target = FrechetCellFilter(atoms) if settings.relax_cell else atoms
    optimizer = FIRE(target, logfile=None)
    optimizer.attach(observe, interval=1)
    converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.max_steps))
    return snapshots, converged


def _finite(snapshot: dict) -> bool:
    return all(np.all(np.isfinite(value)) for value in snapshot.values())


def build_material(candidate: Candidate, settings: BuildSettings) -> dict[str, Any]:
    """Perturb one material, relax it with each teacher and return its frames or its failure."""
    _init_worker()
    start = perturb(candidate.structure, seed=settings.seed, material_id=candidate.material_id,
                    strain=settings.strain, rattle=settings.rattle)
    species = tuple(site.specie.symbol for site in start)
    n_atoms = len(species)
    frames: list[dataset.Frame] = []
    status: dict[str, dict[str, Any]] = {}
    for functional in FUNCTIONALS:
        try:
            snapshots, converged = _relax(start, functional, settings)
        except Exception as exc:  # a teacher failing on one structure must not stop the build
            return {"material_id": candidate.material_id, "frames": [], "status": status,
                    "error": f"{functional}: {type(exc).__name__}: {exc}"}
        if not all(_finite(snapshot) for snapshot in snapshots):
            return {"material_id": candidate.material_id, "frames": [], "status": status,
                    "error": f"{functional}: non-finite energy, forces or stress"}
        n_steps = len(snapshots) - 1
        status[functional] = {
            "converged": converged,
            "n_steps": n_steps,
            "max_force_start": float(np.linalg.norm(snapshots[0]["forces"], axis=1).max()),
            "max_force_final": float(np.linalg.norm(snapshots[-1]["forces"], axis=1).max()),
        }
        correction = candidate.correction_per_atom * n_atoms if functional == "gga" else 0.0
        for step in kept_steps(len(snapshots), settings.frames_per_trajectory):
            snap = snapshots[step]
            frames.append(dataset.Frame(
                frame_id=f"{candidate.material_id}-{functional}-{step}",
                material_id=candidate.material_id,
                functional=functional,
                species=species,
                lattice=snap["lattice"],
                frac_coords=snap["frac_coords"],
                energy=snap["energy"],
                energy_uncorrected=snap["energy"] - correction,
                forces=snap["forces"],
                stress=snap["stress"],
                magmoms=snap["magmoms"],
                source=SURROGATE_DEFAULT.name,
                extra={"step": step, "final": step == n_steps, "converged": converged},
            ))
    return {"material_id": candidate.material_id, "frames": frames, "status": status, "error": None}


def _run_all(candidates: Sequence[Candidate], settings: BuildSettings, *,
             progress: bool) -> list[dict[str, Any]]:
    # Largest structures first so that no long job starts last.
    ordered = sorted(candidates, key=lambda c: (-len(c.structure), c.material_id))
    bar = tqdm(total=len(ordered), desc="relaxing", unit="material", disable=not progress)
    results: list[dict[str, Any]] = []
    start = time.perf_counter()
    log_every = max(1, len(ordered) // 10)

    def record(result: dict[str, Any]) -> None:
        results.append(result)
        bar.update()
        if result["error"]:
            logger.warning("relaxation failed for %s (%s)", result["material_id"], result["error"])
        if len(results) % log_every == 0 or len(results) == len(ordered):
            logger.info("%d/%d materials relaxed (%.0f s)", len(results), len(ordered),
                        time.perf_counter() - start)

    # Log lines go above the bar instead of through it.
    with logging_redirect_tqdm() if progress else contextlib.nullcontext():
        if settings.processes == 1:
            import torch
            from threadpoolctl import threadpool_limits

            threads = torch.get_num_threads()
            try:
                with threadpool_limits():  # restores this process's BLAS threads afterwards
                    for candidate in ordered:
                        record(build_material(candidate, settings))
            finally:
                torch.set_num_threads(threads)
        else:
            # spawn: a fresh interpreter per worker, safe with torch's threads (fork is not).
            context = multiprocessing.get_context("spawn")
            with context.Pool(settings.processes, initializer=_init_worker) as pool:
                tasks = [(candidate, settings) for candidate in ordered]
                for result in pool.imap_unordered(_build_task, tasks, chunksize=1):
                    record(result)
    bar.close()
    return results


def _build_task(task: tuple[Candidate, BuildSettings]) -> dict[str, Any]:
    return build_material(*task)


# --------------------------------------------------------------------------- tables


def materials_table(
    frames: Sequence[dataset.Frame], candidates: dict[str, Candidate]
) -> pd.DataFrame:
    """Per material and functional: relaxed (final-frame) energies and formation energies."""
    rows = []
    for frame in frames:
        if not frame.extra.get("final"):
            continue
        rows.append({
            "material_id": frame.material_id,
            "formula": candidates[frame.material_id].structure.composition.reduced_formula,
            "functional": frame.functional,
            "relaxed_energy_per_atom": frame.energy_per_atom,
            "relaxed_energy_per_atom_uncorrected": frame.energy_per_atom_uncorrected,
            "is_elemental_reference": candidates[frame.material_id].is_elemental_reference,
        })
    table = pd.DataFrame(rows).sort_values(["material_id", "functional"], ignore_index=True)
    for suffix in ("", "_uncorrected"):
        column = f"relaxed_energy_per_atom{suffix}"
        # Each teacher's formation energies use that teacher's own relaxed elements.
        refs = {
            functional: energies.elemental_reference_energies(table, functional=functional,
                                                              column=column)
            for functional in table["functional"].unique()
        }
        table[f"formation_energy_per_atom{suffix}"] = [
            energies.formation_energy_per_atom(
                candidates[row.material_id].structure.composition,
                getattr(row, column),
                refs[row.functional],
                record=row.material_id,
            )
            for row in table.itertuples(index=False)
        ]
    return table.loc[:, list(dataset.MATERIAL_COLUMNS)]


def _frame_order(frame: dataset.Frame) -> tuple:
    return frame.material_id, frame.functional, frame.extra["step"]


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


# --------------------------------------------------------------------------- public entry


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
    ``build_summary.json``.

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
    if material_ids is None:
        wbm_ids = [mid for mid, c in candidates.items() if not c.is_elemental_reference]
        draw = select_materials(wbm_ids, n=settings.n_materials, seed=settings.seed)
    else:
        draw = sorted(set(material_ids))
    chosen = with_elemental_references(draw, candidates)
    logger.info("building %d materials (%d elemental references) with %d process(es)",
                len(chosen), sum(candidates[m].is_elemental_reference for m in chosen),
                settings.processes)

    results = _run_all([candidates[mid] for mid in chosen], settings, progress=progress)
    failed = {r["material_id"]: r["error"] for r in results if r["error"]}
    # A material whose elemental reference failed has no formation energy: drop it too.
    failed_elements = {
        mid[len(ELEMENT_PREFIX):] for mid in failed if candidates[mid].is_elemental_reference
    }
    dropped = sorted(
        r["material_id"] for r in results if not r["error"] and failed_elements & {
            el.symbol for el in candidates[r["material_id"]].structure.composition.elements}
    )
    for mid in dropped:
        logger.warning("dropping %s: its elemental reference failed", mid)
    kept = [r for r in results if not r["error"] and r["material_id"] not in dropped]
    if not kept:
        raise DataError(f"every relaxation failed, e.g. {next(iter(failed.items()))}")
    frames = sorted((frame for r in kept for frame in r["frames"]), key=_frame_order)
    table = materials_table(frames, candidates)

    out_dir.mkdir(parents=True, exist_ok=True)
    dataset.write_frames(out_dir / dataset.FRAMES_FILE, frames)
    dataset.write_materials(out_dir / dataset.MATERIALS_FILE, table)
    SURROGATE_DEFAULT.write(
        out_dir,
        build_settings=asdict(settings),
        material_ids=None if material_ids is None else draw,
        teachers={f: f'CHGNet.load(model_name="{name}")' for f, name in TEACHER_MODELS.items()},
        inputs={
            path.name: {"sha256": _sha256(path)} for path in (wbm_path, elemental_path)
        },
        elemental_reference_origins={
            mid: candidates[mid].origin for mid in chosen if candidates[mid].is_elemental_reference
        },
        package_versions=_versions(),
    )
    summary = _summary(kept, frames, candidates, failed, dropped, time.perf_counter() - began)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    logger.info("wrote %d frames of %d materials to %s in %.0f s", len(frames), len(kept), out_dir,
                summary["wall_time_s"])
    return summary


def _summary(kept: list[dict], frames: list[dataset.Frame], candidates: dict[str, Candidate],
             failed: dict[str, str], dropped: list[str], wall: float) -> dict[str, Any]:
    atoms = np.array([frame.n_atoms for frame in frames])
    elements = sorted({s for frame in frames for s in frame.species})
    per_functional = {}
    for functional in FUNCTIONALS:
        stats = [r["status"][functional] for r in kept]
        per_functional[functional] = {
            "frames": sum(frame.functional == functional for frame in frames),
            "unconverged": sorted(
                r["material_id"] for r in kept if not r["status"][functional]["converged"]
            ),
            "median_steps": float(np.median([s["n_steps"] for s in stats])) if stats else 0.0,
            "max_abs_force_start": max((s["max_force_start"] for s in stats), default=0.0),
            "max_abs_force_final": max((s["max_force_final"] for s in stats), default=0.0),
        }
    for entry in per_functional.values():
        entry["n_unconverged"] = len(entry["unconverged"])
    n_refs = sum(candidates[r["material_id"]].is_elemental_reference for r in kept)
    return {
        "materials": len(kept) - n_refs,
        "elemental_references": n_refs,
        "frames": len(frames),
        "per_functional": per_functional,
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
        "wall_time_s": round(wall, 1),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry: ``python -m mlip_transfer.data.surrogate --help``."""
    defaults = BuildSettings()
    parser = argparse.ArgumentParser(
        prog="python -m mlip_transfer.data.surrogate",
        description="Build the surrogate (pretrained-CHGNet-labelled) GGA/r2SCAN dataset.",
    )
    parser.add_argument("--wbm", type=Path, default=DEFAULT_WBM_PATH, help="WBM json.gz")
    parser.add_argument("--elemental", type=Path, default=DEFAULT_ELEMENTAL_PATH,
                        help="MatPES-PBE elemental references json.gz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="output folder")
    parser.add_argument("--material-ids", nargs="+", default=None,
                        help="build exactly these materials (plus their elemental references)")
    for item in fields(BuildSettings):
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default,
                                help=f"default {default}")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = BuildSettings(**{f.name: getattr(args, f.name) for f in fields(BuildSettings)})
    summary = build_surrogate_dataset(
        wbm_path=args.wbm,
        elemental_path=args.elemental,
        out_dir=args.out,
        settings=settings,
        material_ids=args.material_ids,
        progress=not args.no_progress,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "elements"}, indent=2))
    return summary


if __name__ == "__main__":
    # Import by package name so that spawned workers unpickle the same module.
    from mlip_transfer.data.surrogate import main as _main

    _main()
