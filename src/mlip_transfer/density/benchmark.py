"""Density benchmark against experiment (paper Fig. 5).

The paper strains every lattice vector of 1,000 ordered ICSD structures by −10 %, relaxes them
with each model (30 meV/Å) and compares the predicted density with the experimental one. The
embedded default uses the 58 cubic solids of
``resources/reference/sol58_experimental_lattice_constants.csv`` (zero-point-corrected
experimental lattice constants; Hao et al., PRB 85, 014111 (2012)), built as primitive cells of
their prototypes, so the experimental density is exact for the structure.

The real-data path fetches structures of ICSD-sourced materials from the Materials Project API
(:func:`fetch_mp_structures`), as the paper does; their reference density is that of the
fetched structure (MP's, relaxed from the ICSD entry), which the output says.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Lattice, Structure

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.files import atomic_path, dumps_json
from mlip_transfer.data.loaders.mp_api import Session, get_page, resolve_api_key

log = logging.getLogger(__name__)

# Primitive cells of the cubic prototypes: lattice vectors in units of the conventional a and
# fractional sites (species index into the formula's elements).
_FCC = [[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
_BCC = [[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]
_SC = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
PROTOTYPES: dict[str, tuple[list[list[float]], list[tuple[int, tuple[float, float, float]]]]] = {
    "fcc": (_FCC, [(0, (0, 0, 0))]),
    "bcc": (_BCC, [(0, (0, 0, 0))]),
    "diamond": (_FCC, [(0, (0, 0, 0)), (0, (0.25, 0.25, 0.25))]),
    "b1": (_FCC, [(0, (0, 0, 0)), (1, (0.5, 0.5, 0.5))]),  # rocksalt
    "b2": (_SC, [(0, (0, 0, 0)), (1, (0.5, 0.5, 0.5))]),  # CsCl
    "b3": (_FCC, [(0, (0, 0, 0)), (1, (0.25, 0.25, 0.25))]),  # zincblende
}
# Space group numbers of the prototypes, to pick the matching polymorph from the MP API.
PROTOTYPE_SPACEGROUPS = {"fcc": 225, "bcc": 229, "diamond": 227, "b1": 225, "b2": 221, "b3": 216}
EXPERIMENT_COLUMNS = ("system", "structure", "a0_exp_angstrom")
SUMMARY_URL = "https://api.materialsproject.org/materials/summary/"
SUMMARY_FIELDS = (
    "material_id",
    "formula_pretty",
    "structure",
    "energy_above_hull",
    "database_IDs",
    "symmetry",
    "theoretical",
)
# The paper's acceptance band of experimental / predicted density (Fig. 5).
RATIO_RANGE = (0.8, 1.2)
# What the reference density of each ``density.structures`` source is. MP's structures are DFT
# (GGA/GGA+U) relaxations of ICSD entries: a DFT reference, never to be called experiment.
REFERENCES = {
    "sol58": "experiment (58 cubic solids at experimental lattice constants, Hao et al. 2012)",
    "mp_api": "DFT, not experiment (Materials Project GGA/GGA+U-relaxed structures of "
              "ICSD-sourced materials)",
}
# Axis words for the reference density (Fig. 5).
REFERENCE_WORDS = {"sol58": "experimental", "mp_api": "MP-DFT"}


def prototype_structure(system: str, prototype: str, a: float) -> Structure:
    """Primitive cell of a cubic prototype with conventional lattice constant ``a`` (Å).

    ``system`` is an element (fcc, bcc, diamond) or a two-element formula whose first element
    sits at the origin (b1, b2, b3), e.g. ``"NaCl"``, ``"FeAl"``.
    """
    if prototype not in PROTOTYPES:
        raise ConfigError(f"unknown prototype {prototype!r}; expected one of {sorted(PROTOTYPES)}")
    if not (isinstance(a, int | float) and math.isfinite(a) and a > 0):
        raise ConfigError(f"lattice constant of {system} must be a positive number, got {a!r}")
    elements = [str(el) for el in Composition(system).elements]
    unknown = [el for el in elements if not Element.is_valid_symbol(el)]
    if unknown:
        raise ConfigError(f"{system}: unknown element(s) {unknown}")
    vectors, sites = PROTOTYPES[prototype]
    n_species = max(index for index, _ in sites) + 1
    if len(elements) != n_species:
        raise ConfigError(
            f"{system} has {len(elements)} element(s) but prototype {prototype} needs {n_species}"
        )
    lattice = Lattice(np.array(vectors, dtype=float) * a)
    return Structure(lattice, [elements[i] for i, _ in sites], [xyz for _, xyz in sites])


def read_experimental(path: str | Path, *, systems: Sequence[str] | None = None) -> pd.DataFrame:
    """The experimental table with one structure per solid and its experimental density.

    Args:
        path: CSV with columns ``system``, ``structure`` (prototype), ``a0_exp_angstrom``.
        systems: Keep only these solids, in the file's order (``None``: all).

    Returns:
        Columns ``system``, ``prototype``, ``a_exp`` (Å), ``density_exp`` (g/cm³), ``structure``
        (pymatgen, at the experimental lattice constant).

    Raises:
        DataError: naming the file, line and field of a missing column, bad number, unknown
            prototype or a formula that does not fit its prototype.
    """
    path = Path(path)
    table = pd.read_csv(path, dtype=str)
    missing = [c for c in EXPERIMENT_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected {list(EXPERIMENT_COLUMNS)}")
    rows = []
    for line, record in enumerate(table.to_dict(orient="records"), start=2):
        system, prototype = str(record["system"]).strip(), str(record["structure"]).strip().lower()
        try:
            a = float(record["a0_exp_angstrom"])
        except (TypeError, ValueError):
            raise DataError(
                f"{path}, line {line} ({system}), field a0_exp_angstrom: not a number "
                f"({record['a0_exp_angstrom']!r})"
            ) from None
        try:
            structure = prototype_structure(system, prototype, a)
        except (ConfigError, ValueError, KeyError, AttributeError) as exc:
            raise DataError(f"{path}, line {line} ({system}), field structure: {exc}") from None
        rows.append(
            {
                "system": system,
                "prototype": prototype,
                "a_exp": a,
                "density_exp": structure.density,
                "structure": structure,
            }
        )
    if not rows:
        raise DataError(f"{path}: no solids")
    table = pd.DataFrame(rows)
    if systems is not None:
        unknown = sorted(set(systems) - set(table["system"]))
        if unknown:
            raise ConfigError(f"density.systems names solids not in {path}: {unknown}")
        table = table[table["system"].isin(systems)].reset_index(drop=True)
    return table


def strained(structure: Structure, strain: float) -> Structure:
    """A copy with every lattice vector scaled by ``1 + strain`` (fractional sites kept)."""
    if not -0.5 < strain < 0.5:
        raise ConfigError(f"strain must lie in (-0.5, 0.5), got {strain!r}")
    return Structure(
        Lattice(structure.lattice.matrix * (1 + strain)),
        structure.species,
        structure.frac_coords,
    )


def density_table(relaxed: pd.DataFrame, experimental: pd.DataFrame, *, model: str) -> pd.DataFrame:
    """Predicted against experimental density for each solid relaxed by one model.

    Args:
        relaxed: Output of :func:`mlip_transfer.transfer.relaxation.relax_structures`, keyed by
            system.
        experimental: Output of :func:`read_experimental` (or of :func:`mp_reference_table`).
        model: Model label written into every row.

    Returns:
        One row per solid: ``model``, ``system``, ``prototype``, ``density_exp``,
        ``density_pred`` (NaN if the relaxation failed), ``ratio`` (experimental / predicted),
        ``failed``, ``failure``, ``converged``, ``n_steps``.
    """
    by_id = relaxed.set_index("material_id")
    rows = []
    for record in experimental.itertuples(index=False):
        if record.system not in by_id.index:
            raise DataError(f"no relaxation result for {record.system} ({model})")
        result = by_id.loc[record.system]
        failed = bool(result["failed"])
        predicted = math.nan
        if not failed and result["structure_json"]:
            predicted = Structure.from_dict(json.loads(result["structure_json"])).density
        rows.append(
            {
                "model": model,
                "system": record.system,
                "prototype": record.prototype,
                "density_exp": record.density_exp,
                "density_pred": predicted,
                "ratio": record.density_exp / predicted if predicted > 0 else math.nan,
                "failed": failed,
                "failure": result["failure"],
                "converged": bool(result["converged"]),
                "n_steps": int(result["n_steps"]),
            }
        )
    return pd.DataFrame(rows)


def density_summary(table: pd.DataFrame) -> dict[str, Any]:
    """MAE (g/cm³), mean ratio and the share of solids inside :data:`RATIO_RANGE` of one model.

    Failed relaxations count in ``n_failed`` and are outside the band; they have no error.
    """
    ok = table[~table["failed"] & np.isfinite(table["density_pred"])]
    inside = ok["ratio"].between(*RATIO_RANGE)
    return {
        "model": str(table["model"].iloc[0]) if len(table) else None,
        "n_solids": len(table),
        "n_failed": int(table["failed"].sum()),
        "n_not_converged": int((~table["failed"] & ~table["converged"]).sum()),
        "density_mae": float((ok["density_pred"] - ok["density_exp"]).abs().mean())
        if len(ok)
        else math.nan,
        "ratio_mean": float(ok["ratio"].mean()) if len(ok) else math.nan,
        "ratio_median": float(ok["ratio"].median()) if len(ok) else math.nan,
        "fraction_in_range": float(inside.sum() / len(table)) if len(table) else math.nan,
        "ratio_range": list(RATIO_RANGE),
    }


# --------------------------------------------------------------------------- real-data path


def fetch_mp_structures(
    systems: Mapping[str, str | None] | Sequence[str],
    *,
    api_key: str | None = None,
    session: Session | None = None,
    url: str = SUMMARY_URL,
    timeout: float = 60.0,
    batch_size: int = 50,
) -> list[dict]:
    """One MP summary document per formula: an ICSD-sourced, experimentally known material.

    Args:
        systems: Formulas, or formula -> prototype (``"fcc"``, ``"b1"``, ...) to require the
            prototype's space group (e.g. rocksalt, not another NaCl polymorph).
        api_key: MP API key (default: ``MP_API_KEY``).
        session: ``requests``-style session (tests replay recorded responses).
        url, timeout, batch_size: Endpoint, seconds per request, formulas per request.

    Returns:
        Per formula the document with an ICSD id, the matching space group (if asked) and the
        lowest energy above hull; formulas without one are logged and left out (see the
        ``missing`` entry of :func:`save_mp_structures`).
    """
    wanted = dict(systems) if isinstance(systems, Mapping) else {s: None for s in systems}
    headers = {"X-API-KEY": resolve_api_key(api_key), "accept": "application/json"}
    if session is None:
        import requests

        session = requests.Session()
    formulas = list(wanted)
    candidates: dict[str, list[dict]] = {}
    for start in range(0, len(formulas), batch_size):
        params = {
            "formula": ",".join(formulas[start : start + batch_size]),
            "theoretical": "false",
            "_fields": ",".join(SUMMARY_FIELDS),
            "_limit": 1000,
        }
        for doc in get_page(session, url, params, headers, timeout)["data"]:
            formula = Composition(doc.get("formula_pretty", "")).reduced_formula
            candidates.setdefault(formula, []).append(doc)
    chosen = []
    for formula, prototype in wanted.items():
        key = Composition(formula).reduced_formula
        group = sorted(
            (
                doc
                for doc in candidates.get(key, [])
                if (doc.get("database_IDs") or {}).get("icsd")
                and (
                    prototype is None
                    or (doc.get("symmetry") or {}).get("number") == PROTOTYPE_SPACEGROUPS[prototype]
                )
            ),
            key=lambda doc: (doc.get("energy_above_hull") or 0.0, doc["material_id"]),
        )
        if group:
            chosen.append({**group[0], "system": formula})
        else:
            log.warning("no ICSD-sourced MP material for %s (%s)", formula, prototype or "any")
    return chosen


def save_mp_structures(path: str | Path, docs: Iterable[dict], *, requested: Sequence[str]) -> Path:
    """Cache fetched documents (gzip JSON when the name ends in .gz) with what was missing.

    Standard JSON, through a temporary file renamed onto ``path`` once complete: a fetch
    killed mid-write leaves no half file that the next run would take as its cache.
    """
    docs = list(docs)
    found = {doc["system"] for doc in docs}
    body = {"docs": docs, "missing": [s for s in requested if s not in found]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps_json(body, indent=None, default=str)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            # The final name in the gzip header, as gzip.open(path) wrote it, not the temporary.
            with open(tmp, "wb") as raw, gzip.GzipFile(str(path), "wb", fileobj=raw) as handle:
                handle.write(text.encode("utf-8"))
        else:
            tmp.write_text(text, encoding="utf-8")
    return path


def mp_reference_table(path: str | Path) -> pd.DataFrame:
    """The cached MP documents as the table :func:`density_table` compares against."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            body = json.load(handle)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable JSON file of MP structures ({exc})") from None
    rows = []
    for index, doc in enumerate(body.get("docs", [])):
        try:
            structure = Structure.from_dict(doc["structure"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(
                f"{path}, document {index} ({doc.get('material_id', '?')}), field structure: {exc}"
            ) from None
        if not structure.is_ordered:
            raise DataError(f"{path}, document {index} ({doc.get('material_id')}): disordered")
        rows.append(
            {
                "system": doc["system"],
                "prototype": (doc.get("symmetry") or {}).get("symbol", ""),
                "a_exp": math.nan,
                "density_exp": structure.density,
                "structure": structure,
                "material_id": doc.get("material_id"),
            }
        )
    if body.get("missing"):
        log.warning("%s: %d requested solids have no MP structure: %s", path,
                    len(body["missing"]), ", ".join(body["missing"]))
    if not rows:
        raise DataError(f"{path}: no structures")
    return pd.DataFrame(rows)
