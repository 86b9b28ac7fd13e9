"""Materials Project thermo data (GGA/GGA+U and r2SCAN) and the canonical materials table.

The client calls the REST endpoint ``GET https://api.materialsproject.org/materials/thermo/``
with the key in the ``X-API-KEY`` header and the query parameters of the MP API:
``thermo_types`` and ``material_ids`` (comma-separated), ``_fields`` (sparse field selection)
and ``_limit``/``_skip`` pagination (at most 1000 documents per page). Responses have the shape
``{"data": [ThermoDoc, ...], "meta": {"total_doc": ..., ...}}``.

The answer is meant to be cached with :func:`save_thermo_docs`; users without an API key can
supply such a file (or any JSON list of thermo docs) to the parser instead.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.data.dataset import MATERIAL_COLUMNS

log = logging.getLogger(__name__)

API_URL = "https://api.materialsproject.org/materials/thermo/"
API_KEY_ENV = "MP_API_KEY"
# MP thermo types -> functional ids of the canonical format. Older database builds label the
# r2SCAN docs with the run type "r2SCAN"; types are matched case-insensitively.
THERMO_TYPES = {"GGA_GGA+U": "gga", "R2SCAN": "r2scan"}
DEFAULT_FIELDS = (
    "material_id",
    "thermo_id",
    "thermo_type",
    "formula_pretty",
    "composition",
    "elements",
    "nsites",
    "energy_per_atom",
    "uncorrected_energy_per_atom",
    "formation_energy_per_atom",
    "energy_above_hull",
    "is_stable",
)
MAX_PAGE_SIZE = 1000


class MPAPIError(RuntimeError):
    """The Materials Project API answered with an error or could not be reached."""


class _Session(Protocol):
    def get(self, url: str, **kwargs: Any) -> Any: ...


def resolve_api_key(api_key: str | None = None) -> str:
    """The API key from the argument or the ``MP_API_KEY`` environment variable."""
    key = api_key or os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise ConfigError(
            f"no Materials Project API key: pass api_key= or set the {API_KEY_ENV} environment "
            "variable (get a key at https://next-gen.materialsproject.org/api), or supply a saved "
            "thermo-docs JSON file instead of querying the API"
        )
    return key


def _batches(ids: Sequence[str] | None, size: int) -> list[list[str] | None]:
    if ids is None:
        return [None]
    ids = sorted(set(ids))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _get_page(session: _Session, url: str, params: dict, headers: dict, timeout: float) -> dict:
    try:
        response = session.get(url, params=params, headers=headers, timeout=timeout)
    except OSError as exc:  # requests' exceptions derive from OSError
        raise MPAPIError(f"cannot reach {url}: {exc}") from exc
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        hint = " (is the API key valid?)" if response.status_code in (401, 403) else ""
        raise MPAPIError(f"{url} answered HTTP {response.status_code}{hint}: {detail}")
    try:
        body = response.json()
        data = body["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MPAPIError(f"{url} answered without a 'data' list: {exc}") from exc
    if not isinstance(data, list):
        raise MPAPIError(f"{url} answered with 'data' of type {type(data).__name__}")
    return body


def fetch_thermo_docs(
    *,
    material_ids: Sequence[str] | None = None,
    thermo_types: Sequence[str] = tuple(THERMO_TYPES),
    api_key: str | None = None,
    session: _Session | None = None,
    url: str = API_URL,
    fields: Sequence[str] = DEFAULT_FIELDS,
    batch_size: int = 300,
    page_size: int = MAX_PAGE_SIZE,
    timeout: float = 60.0,
    nelements: tuple[int, int] | None = None,
    response_meta: dict | None = None,
) -> list[dict]:
    """Download thermo docs, all pages, in batches of material ids.

    Args:
        material_ids: Materials to fetch; None fetches every material of the thermo types.
        thermo_types: MP thermo types (``GGA_GGA+U``, ``R2SCAN``).
        api_key: MP API key; default: the ``MP_API_KEY`` environment variable.
        session: Object with a ``requests``-style ``get`` (tests inject a replay session);
            default: a new ``requests.Session``.
        url: Endpoint URL.
        fields: ThermoDoc fields to request (``_fields``).
        batch_size: Material ids per request (keeps URLs short).
        page_size: Documents per page (``_limit``), at most 1000.
        timeout: Seconds per request.
        nelements: Only materials with this (min, max) number of elements; ``(1, 1)`` gives
            the elemental docs that formation energies are referenced to.
        response_meta: If given, updated with the ``meta`` of the last response (API version,
            time stamp) so callers can record it.

    Returns:
        The docs as plain dicts, sorted by material id and thermo type.

    Raises:
        ConfigError: if no API key is available or an argument is out of range.
        MPAPIError: if the API cannot be reached or answers with an error.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    headers = {"X-API-KEY": resolve_api_key(api_key), "accept": "application/json"}
    if session is None:
        import requests

        session = requests.Session()
    docs: list[dict] = []
    for batch in _batches(material_ids, batch_size):
        skip = 0
        while True:
            params: dict[str, Any] = {
                "thermo_types": ",".join(thermo_types),
                "_fields": ",".join(fields),
                "_limit": page_size,
                "_skip": skip,
            }
            if batch is not None:
                params["material_ids"] = ",".join(batch)
            if nelements is not None:
                params["nelements_min"], params["nelements_max"] = nelements
            body = _get_page(session, url, params, headers, timeout)
            page = body["data"]
            docs.extend(page)
            skip += len(page)
            meta = body.get("meta") or {}
            if response_meta is not None:
                response_meta.update(meta)
            total = meta.get("total_doc")
            if len(page) < page_size or (isinstance(total, int) and skip >= total):
                break
    log.info("fetched %d thermo docs from %s", len(docs), url)
    return sorted(docs, key=_doc_key)


def fetch_thermo_for_trajectory_file(
    trajectory_json: str | Path, out_path: str | Path, **fetch_kwargs: Any
) -> Path:
    """Fetch and cache the thermo docs a parse of an MP trajectory file needs.

    That is the docs of every material id in the file plus every elemental doc (the references
    of formation energies, which need not be in the file), for both thermo types.

    Args:
        trajectory_json: MP-r2SCAN (or MPtrj) trajectory JSON whose material ids are wanted.
        out_path: Where :func:`save_thermo_docs` writes the answer.
        **fetch_kwargs: Passed to :func:`fetch_thermo_docs` (``api_key``, ``session``, ...).

    Returns:
        ``out_path``.
    """
    from mlip_transfer.data.loaders.mp_trajectories import read_material_ids

    material_ids = read_material_ids(trajectory_json)
    meta: dict = {}
    docs = fetch_thermo_docs(material_ids=material_ids, response_meta=meta, **fetch_kwargs)
    docs += fetch_thermo_docs(nelements=(1, 1), **fetch_kwargs)
    unique = {_doc_key(doc): doc for doc in docs}
    log.info(
        "caching %d thermo docs for %d materials of %s",
        len(unique),
        len(material_ids),
        trajectory_json,
    )
    return save_thermo_docs(
        out_path,
        unique.values(),
        meta={
            "url": fetch_kwargs.get("url", API_URL),
            "api": meta,
            "material_ids_from": Path(trajectory_json).name,
        },
    )


def _doc_key(doc: dict) -> tuple[str, str]:
    return str(doc.get("material_id")), str(doc.get("thermo_type"))


def save_thermo_docs(path: str | Path, docs: Iterable[dict], *, meta: dict | None = None) -> Path:
    """Write thermo docs as ``{"meta": ..., "data": [...]}`` JSON (gzip if the name ends .gz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"meta": meta or {}, "data": sorted(docs, key=_doc_key)}, indent=1)
    if path.suffix == ".gz":
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as handle,
        ):
            handle.write(text.encode())
    else:
        path.write_text(text + "\n")
    return path


def load_thermo_docs(path: str | Path) -> list[dict]:
    """Read thermo docs saved by :func:`save_thermo_docs`, or a plain JSON list of docs.

    Raises:
        DataError: naming the file and the offending doc if the file cannot be used.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            content = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc}); truncated file?", file=str(path)) from exc
    docs = content.get("data") if isinstance(content, dict) else content
    if not isinstance(docs, list):
        raise DataError("expected a list of thermo docs or {'data': [...]}", file=str(path))
    for index, doc in enumerate(docs):
        for key in ("material_id", "thermo_type"):
            if not isinstance(doc, dict) or doc.get(key) is None:
                raise DataError(
                    "thermo doc lacks a required field",
                    file=str(path),
                    record=f"doc {index}",
                    field=key,
                )
    return docs


def _float(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _composition(doc: dict) -> dict[str, float]:
    from pymatgen.core import Composition

    raw = doc.get("composition")
    try:
        if isinstance(raw, dict) and raw:
            comp = Composition({k: v for k, v in raw.items() if not k.startswith("@")})
        else:
            comp = Composition(doc["formula_pretty"])
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"no usable composition ({exc!r})",
            record=str(doc.get("material_id")),
            field="composition",
        ) from exc
    return dict(comp.get_el_amt_dict())


def _formation(comp: dict[str, float], energy: float, refs: dict[str, float]) -> float:
    total = sum(comp.values())
    if math.isnan(energy) or any(el not in refs for el in comp):
        return math.nan
    return energy - sum(amount / total * refs[el] for el, amount in comp.items())


def _references(rows: list[dict], column: str) -> dict[str, tuple[float, str]]:
    """Lowest ``column`` energy per element among elemental rows: element -> (energy, id)."""
    best: dict[str, tuple[float, str]] = {}
    for row in rows:
        if len(row["comp"]) != 1 or math.isnan(row[column]):
            continue
        (element,) = row["comp"]
        candidate = (row[column], row["material_id"])
        if element not in best or candidate < best[element]:
            best[element] = candidate
    return best


def thermo_docs_to_materials(docs: Iterable[dict]) -> pd.DataFrame:
    """Build the canonical per-material table (``dataset.MATERIAL_COLUMNS``) from thermo docs.

    ``relaxed_energy_per_atom`` and ``formation_energy_per_atom`` are MP's values (MP2020-
    corrected for ``GGA_GGA+U``). ``*_uncorrected`` formation energies are computed from the
    uncorrected energies against, per functional, the elemental doc of lowest uncorrected energy
    per atom among the docs given; that doc is flagged ``is_elemental_reference``. A material
    with an element whose reference is absent gets a NaN uncorrected formation energy. Rows
    without a relaxed or corrected formation energy (which the table cannot hold) are left out.
    Such gaps, ignored thermo types and duplicate docs are counted in ``table.attrs["notes"]``
    and logged as warnings.

    Args:
        docs: ThermoDoc dicts (from :func:`fetch_thermo_docs` or :func:`load_thermo_docs`).

    Returns:
        One row per material and functional (``gga`` for GGA_GGA+U, ``r2scan`` for R2SCAN),
        sorted by material id and functional.
    """
    notes: dict[str, Any] = {}
    rows_by_functional: dict[str, list[dict]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    ignored: dict[str, int] = defaultdict(int)
    duplicates = 0
    upper = {key.upper(): value for key, value in THERMO_TYPES.items()}
    for doc in sorted(docs, key=_doc_key):
        functional = upper.get(str(doc.get("thermo_type")).upper())
        if functional is None:
            ignored[str(doc.get("thermo_type"))] += 1
            continue
        material_id = str(doc["material_id"])
        if (material_id, functional) in seen:
            duplicates += 1
            continue
        seen.add((material_id, functional))
        energy = _float(doc.get("energy_per_atom"))
        uncorrected = _float(doc.get("uncorrected_energy_per_atom"))
        if math.isnan(uncorrected) and functional != "gga":
            uncorrected = energy  # no corrections are applied to r2SCAN energies
        comp = _composition(doc)
        rows_by_functional[functional].append(
            {
                "material_id": material_id,
                "formula": doc.get("formula_pretty") or _reduced_formula(comp),
                "functional": functional,
                "comp": comp,
                "relaxed_energy_per_atom": energy,
                "relaxed_energy_per_atom_uncorrected": uncorrected,
                "formation_energy_per_atom": _float(doc.get("formation_energy_per_atom")),
            }
        )
    rows: list[dict] = []
    missing_refs: dict[str, list[str]] = {}
    unformed: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for functional, group in sorted(rows_by_functional.items()):
        refs_unc = _references(group, "relaxed_energy_per_atom_uncorrected")
        refs_cor = _references(group, "relaxed_energy_per_atom")
        ref_ids = {material_id for _, material_id in refs_unc.values()}
        absent: set[str] = set()
        for row in group:
            comp = row.pop("comp")
            absent |= set(comp) - set(refs_unc)
            row["formation_energy_per_atom_uncorrected"] = _formation(
                comp,
                row["relaxed_energy_per_atom_uncorrected"],
                {el: e for el, (e, _) in refs_unc.items()},
            )
            if math.isnan(row["formation_energy_per_atom"]):
                row["formation_energy_per_atom"] = _formation(
                    comp, row["relaxed_energy_per_atom"], {el: e for el, (e, _) in refs_cor.items()}
                )
            row["is_elemental_reference"] = row["material_id"] in ref_ids
            if math.isnan(row["formation_energy_per_atom_uncorrected"]):
                unformed[functional] = unformed.get(functional, 0) + 1
            if math.isnan(row["relaxed_energy_per_atom"]) or math.isnan(
                row["formation_energy_per_atom"]
            ):
                dropped[functional] = dropped.get(functional, 0) + 1
                continue
            rows.append(row)
        if absent:
            missing_refs[functional] = sorted(absent)
    if missing_refs:
        notes["missing_elemental_references"] = missing_refs
        notes["rows_without_uncorrected_formation_energy"] = unformed
        log.warning(
            "no elemental reference in the thermo docs for %s; %s rows have a NaN uncorrected "
            "formation energy",
            missing_refs,
            unformed,
        )
    if dropped:
        notes["rows_without_energy_left_out"] = dropped
        log.warning("left out %s thermo docs without a relaxed or formation energy", dropped)
    if ignored:
        notes["ignored_thermo_types"] = dict(sorted(ignored.items()))
    if duplicates:
        notes["duplicate_docs"] = duplicates
        log.warning("ignored %d duplicate thermo docs", duplicates)
    table = pd.DataFrame(rows, columns=list(MATERIAL_COLUMNS))
    table = table.sort_values(["material_id", "functional"], ignore_index=True)
    table["is_elemental_reference"] = table["is_elemental_reference"].astype(bool)
    table.attrs["notes"] = notes
    return table


def _reduced_formula(comp: dict[str, float]) -> str:
    from pymatgen.core import Composition

    return Composition(comp).reduced_formula
