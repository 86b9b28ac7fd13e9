"""The registry's checksums, and the downloader against a local HTTP server (never the internet)."""

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from mlip_transfer.core.errors import DataError
from mlip_transfer.core.registry import RegistryEntry, download, load_registry, verify_file

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = b'{"mp-1": {}}' * 1000


def test_every_shipped_file_matches_its_registry_checksum():
    registry = load_registry(REPO / "resources" / "registry.yaml")
    shipped = [entry for entry in registry.values() if entry.shipped]
    assert len(shipped) >= 6
    for entry in shipped:
        assert entry.sha256, f"{entry.name} ships without a checksum"
        verify_file(entry, REPO / entry.path)


def test_external_entries_say_where_to_get_them():
    registry = load_registry(REPO / "resources" / "registry.yaml")
    for name in ("mp_r2scan", "mptrj"):
        assert registry[name].figshare_article and registry[name].figshare_file


def test_a_changed_file_fails_verification(tmp_path):
    path = tmp_path / "data.json"
    path.write_bytes(PAYLOAD)
    entry = RegistryEntry(name="x", path=str(path), description="", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    verify_file(entry)
    path.write_bytes(PAYLOAD[:-1])
    with pytest.raises(DataError, match="sha256"):
        verify_file(entry)
    with pytest.raises(DataError, match="size"):
        verify_file(RegistryEntry(name="x", path=str(path), description="", size_bytes=1))


@pytest.fixture
def local_figshare(tmp_path):
    """A loopback HTTP server that answers like figshare: a file listing and the file itself."""
    listing = [
        {
            "name": "MPr2SCAN.json",
            "size": len(PAYLOAD),
            "computed_md5": hashlib.md5(PAYLOAD).hexdigest(),
            "download_url": None,
        }
    ]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/api/articles/28245650/files":
                body = json.dumps(listing).encode()
            elif self.path == "/files/1":
                body = served["bytes"]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    served = {"bytes": PAYLOAD}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    root = f"http://127.0.0.1:{server.server_port}"
    listing[0]["download_url"] = f"{root}/files/1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, served
    server.shutdown()


def test_download_verifies_against_figshare_md5(tmp_path, local_figshare):
    root, _ = local_figshare
    entry = RegistryEntry(
        name="mp_r2scan", path="x", description="", figshare_article=28245650, figshare_file="MPr2SCAN.json"
    )
    path = download(entry, tmp_path / "MPr2SCAN.json", api=f"{root}/api")
    assert path.read_bytes() == PAYLOAD


def test_corrupted_download_is_not_kept(tmp_path, local_figshare):
    root, served = local_figshare
    served["bytes"] = PAYLOAD[:-10] + b"0123456789"
    entry = RegistryEntry(
        name="mp_r2scan", path="x", description="", figshare_article=28245650, figshare_file="MPr2SCAN.json"
    )
    with pytest.raises(DataError, match="md5"):
        download(entry, tmp_path / "MPr2SCAN.json", api=f"{root}/api")
    assert not list(tmp_path.iterdir())


def test_unknown_figshare_file_is_named(tmp_path, local_figshare):
    root, _ = local_figshare
    entry = RegistryEntry(
        name="mp_r2scan", path="x", description="", figshare_article=28245650, figshare_file="other.json"
    )
    with pytest.raises(DataError, match="no file named 'other.json'"):
        download(entry, tmp_path / "f.json", api=f"{root}/api")
