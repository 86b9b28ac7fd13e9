"""The Materials Project REST client for thermo docs (GGA/GGA+U and r2SCAN) and their cache.

The client calls the REST endpoint ``GET https://api.materialsproject.org/materials/thermo/``
with the key in the ``X-API-KEY`` header and the query parameters of the MP API:
``thermo_types`` and ``material_ids`` (comma-separated), ``_fields`` (sparse field selection)
and ``_limit``/``_skip`` pagination (at most 1000 documents per page). Responses have the shape
``{"data": [ThermoDoc, ...], "meta": {"total_doc": ..., ...}}``.

The answer is meant to be cached with :func:`save_thermo_docs`; users without an API key can
supply such a file (or any JSON list of thermo docs) to the parser instead.
:mod:`.mp_materials` turns the docs into the canonical materials table.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.files import atomic_path, dumps_json

# The conversion to the materials table has its own module; its names stay importable from here.
from mlip_transfer.data.loaders.mp_materials import (  # noqa: F401
    THERMO_TYPES,
    doc_key,
    thermo_docs_to_materials,
)

log = logging.getLogger(__name__)

API_URL = "https://api.materialsproject.org/materials/thermo/"
API_KEY_ENV = "MP_API_KEY"
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


class Session(Protocol):
    """What the client needs of a ``requests.Session``: tests inject a replay session."""

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


def get_page(session: Session, url: str, params: dict, headers: dict, timeout: float) -> dict:
    """GET one page of an MP API endpoint and return its JSON body, which has a ``data`` list.

    Raises:
        MPAPIError: The endpoint cannot be reached, answers with an error or without ``data``.
    """
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


def _fetch_all_pages(
    session: Session,
    url: str,
    query: dict[str, Any],
    filters: dict[str, Any],
    *,
    headers: dict,
    timeout: float,
    response_meta: dict | None,
) -> list[dict]:
    """Every page of one query (``_skip`` goes between ``query`` and ``filters``, the order of
    the parameters in the URL), until a short page or ``total_doc``."""
    docs: list[dict] = []
    skip = 0
    while True:
        body = get_page(session, url, {**query, "_skip": skip, **filters}, headers, timeout)
        page = body["data"]
        docs.extend(page)
        skip += len(page)
        meta = body.get("meta") or {}
        if response_meta is not None:
            response_meta.update(meta)
        total = meta.get("total_doc")
        if len(page) < query["_limit"] or (isinstance(total, int) and skip >= total):
            return docs


def fetch_thermo_docs(
    *,
    material_ids: Sequence[str] | None = None,
    thermo_types: Sequence[str] = tuple(THERMO_TYPES),
    api_key: str | None = None,
    session: Session | None = None,
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
    query = {"thermo_types": ",".join(thermo_types), "_fields": ",".join(fields), "_limit": page_size}
    docs: list[dict] = []
    for batch in _batches(material_ids, batch_size):
        filters: dict[str, Any] = {}
        if batch is not None:
            filters["material_ids"] = ",".join(batch)
        if nelements is not None:
            filters["nelements_min"], filters["nelements_max"] = nelements
        docs += _fetch_all_pages(
            session, url, query, filters, headers=headers, timeout=timeout,
            response_meta=response_meta,
        )
    log.info("fetched %d thermo docs from %s", len(docs), url)
    return sorted(docs, key=doc_key)


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
    unique = {doc_key(doc): doc for doc in docs}
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


def save_thermo_docs(path: str | Path, docs: Iterable[dict], *, meta: dict | None = None) -> Path:
    """Write thermo docs as ``{"meta": ..., "data": [...]}`` JSON (gzip if the name ends .gz).

    Standard JSON (a NaN value is written as null), through a temporary file renamed onto
    ``path`` once complete: a fetch killed mid-write leaves no half file for the next run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps_json({"meta": meta or {}, "data": sorted(docs, key=doc_key)}, indent=1)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as handle,
            ):
                handle.write(text.encode())
        else:
            tmp.write_text(text + "\n", encoding="utf-8")
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
