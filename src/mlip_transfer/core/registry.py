"""Registry of the files this project reads: what each is, where it comes from, and its checksum.

Shipped files (the reference data and the built default dataset) carry a SHA-256 that tests
verify. External files (MP-r2SCAN, MPtrj: gigabytes) carry a URL; those hosted on figshare also
name the figshare article and file, so the downloader can ask figshare's API for the file's size
and MD5 when the registry has not pinned them yet, and never accepts an unverified download.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from tqdm import tqdm

from mlip_transfer.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)
FIGSHARE_API = "https://api.figshare.com/v2"


class HttpSession(Protocol):
    def get(self, url: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class RegistryEntry:
    """One file the project reads.

    Attributes:
        name: Registry key.
        path: Where the file lives, relative to the repository root.
        description: What it holds.
        url: Download URL, or None for files shipped in the repository.
        figshare_article: figshare article id, if hosted there.
        figshare_file: File name inside the figshare article.
        size_bytes: Expected size, if known.
        md5: Expected MD5 (figshare's checksum), if known.
        sha256: Expected SHA-256, if known.
        licence: Licence of the data.
        citation: What to cite.
    """

    name: str
    path: str
    description: str
    url: str | None = None
    figshare_article: int | None = None
    figshare_file: str | None = None
    size_bytes: int | None = None
    md5: str | None = None
    sha256: str | None = None
    licence: str = ""
    citation: str = ""

    @property
    def shipped(self) -> bool:
        return self.url is None and self.figshare_article is None


def load_registry(path: str | Path) -> dict[str, RegistryEntry]:
    """Read the YAML registry; unknown keys are errors so typos do not pass silently."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) or {}
    entries = {}
    for name, fields in raw.items():
        try:
            entries[name] = RegistryEntry(name=name, **fields)
        except TypeError as exc:
            raise DataError(f"bad registry entry ({exc})", file=str(path), record=name) from exc
    return entries


def file_checksum(path: str | Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks so multi-GB files do not fill memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(entry: RegistryEntry, path: str | Path | None = None) -> None:
    """Check a file's size and checksums against its registry entry; raise DataError on mismatch."""
    path = Path(path or entry.path)
    if not path.is_file():
        raise DataError(f"file for registry entry {entry.name!r} does not exist", file=str(path))
    size = path.stat().st_size
    if entry.size_bytes is not None and size != entry.size_bytes:
        raise DataError(
            f"size is {size} bytes, registry expects {entry.size_bytes}: incomplete or different file",
            file=str(path),
            record=entry.name,
            field="size_bytes",
        )
    for algorithm in ("md5", "sha256"):
        expected = getattr(entry, algorithm)
        if expected is None:
            continue
        actual = file_checksum(path, algorithm)
        if actual != expected:
            raise DataError(
                f"{algorithm} is {actual}, registry expects {expected}",
                file=str(path),
                record=entry.name,
                field=algorithm,
            )


def _default_session() -> HttpSession:
    import requests

    return requests.Session()


def resolve_figshare(entry: RegistryEntry, session: HttpSession, api: str = FIGSHARE_API) -> RegistryEntry:
    """Fill a figshare-hosted entry's URL, size and MD5 from figshare's file listing.

    Values already pinned in the registry win; figshare's are used only where the registry has
    none, so a changed upload is caught as a mismatch rather than accepted.
    """
    response = session.get(f"{api}/articles/{entry.figshare_article}/files", timeout=60)
    response.raise_for_status()
    for item in response.json():
        if item.get("name") == entry.figshare_file:
            return RegistryEntry(
                **{
                    **entry.__dict__,
                    "url": entry.url or item.get("download_url"),
                    "size_bytes": entry.size_bytes if entry.size_bytes is not None else item.get("size"),
                    "md5": entry.md5 or item.get("computed_md5") or item.get("supplied_md5"),
                }
            )
    raise DataError(
        f"figshare article {entry.figshare_article} has no file named {entry.figshare_file!r}",
        record=entry.name,
        field="figshare_file",
    )


def download(
    entry: RegistryEntry,
    destination: str | Path,
    *,
    session: HttpSession | None = None,
    api: str = FIGSHARE_API,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download a registry file, verify it, and move it into place only if it verifies.

    Args:
        entry: The registry entry.
        destination: Final path of the file.
        session: HTTP session (``requests.Session`` by default; tests pass a local one).
        api: figshare API root.
        chunk_size: Bytes per streamed chunk.

    Returns:
        The destination path.
    """
    if entry.shipped:
        raise ConfigError(f"registry entry {entry.name!r} ships with the repository; nothing to download")
    session = session or _default_session()
    if entry.figshare_article is not None:
        entry = resolve_figshare(entry, session, api)
    if entry.md5 is None and entry.sha256 is None:
        raise DataError(
            "no checksum is known for this file, so a download could not be verified",
            record=entry.name,
            field="md5",
        )
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    log.info("downloading %s from %s", entry.name, entry.url)
    with session.get(entry.url, stream=True, timeout=60) as response:
        response.raise_for_status()
        total = entry.size_bytes or int(response.headers.get("content-length", 0)) or None
        with open(partial, "wb") as handle, tqdm(
            total=total, unit="B", unit_scale=True, desc=entry.name, disable=None
        ) as progress:
            for chunk in response.iter_content(chunk_size=chunk_size):
                handle.write(chunk)
                progress.update(len(chunk))
    try:
        verify_file(entry, partial)
    except DataError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    log.info("verified %s (%s bytes)", destination, destination.stat().st_size)
    return destination
