"""Provenance of a workflow run for its report: package versions, configuration, input checksums.

``provenance_record`` gathers it as plain JSON; ``provenance_html`` renders it as one
self-contained page, which the Snakemake report shows under *Provenance*;
``write_provenance`` is the ``report_provenance`` job writing both.
"""

from __future__ import annotations

import html
import json
import logging
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from mlip_transfer.core.files import write_json_atomic, write_text_atomic
from mlip_transfer.core.registry import file_checksum, load_registry

logger = logging.getLogger("mlip_transfer.core.report")

# The packages that compute, draw or run the workflow.
PACKAGES = (
    "mlip-transfer",
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "papermill",
    "nbconvert",
    "torch",
    "chgnet",
    "pymatgen",
    "ase",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "matplotlib",
)


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when absent), and Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(folder: str | Path = ".") -> dict[str, Any]:
    """Commit and whether tracked files differ from it; ``commit`` is None outside a checkout."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30
        )

    try:
        head = git("rev-parse", "HEAD")
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "note": "git not available"}
    if head.returncode != 0:
        return {"commit": None, "note": "not a git checkout"}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "modified_files": bool(status.stdout.strip())}


def input_checksums(paths: Iterable[str | Path], registry_path: str | Path) -> list[dict[str, Any]]:
    """SHA-256 of the run's inputs and of every registry file present, checked against the registry.

    ``status`` is one of: ``matches registry``, ``DIFFERS from registry``, ``not pinned in
    registry`` (an entry without a SHA-256), ``not in registry``, ``absent`` (a registry file
    this machine does not hold; the run did not read it).
    """
    registry = load_registry(registry_path)
    by_path = {str(Path(entry.path)): entry for entry in registry.values()}
    used = [str(Path(p)) for p in paths]
    ordered = list(dict.fromkeys(used + list(by_path)))
    rows = []
    for path in ordered:
        entry = by_path.get(path)
        row: dict[str, Any] = {
            "path": path,
            "registry_entry": entry.name if entry else None,
            "read_by_this_run": path in used,
        }
        file = Path(path)
        if not file.is_file():
            row.update(size_bytes=None, sha256=None, status="absent")
            rows.append(row)
            continue
        row["size_bytes"] = file.stat().st_size
        row["sha256"] = file_checksum(file)
        if entry is None:
            row["status"] = "not in registry"
        elif entry.sha256 is None:
            row["status"] = "not pinned in registry"
        else:
            row["status"] = "matches registry" if entry.sha256 == row["sha256"] else "DIFFERS from registry"
        rows.append(row)
    return rows


def provenance_record(
    *,
    config: Mapping[str, Any],
    configfiles: Iterable[str],
    inputs: Iterable[str | Path],
    registry_path: str | Path,
    data_provenance: str | Path,
    parse_report: str | Path | None = None,
    workdir: str | Path = ".",
) -> dict[str, Any]:
    """Everything the report's provenance page shows, as JSON-serialisable data."""
    data = json.loads(Path(data_provenance).read_text())
    record: dict[str, Any] = {
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_source": {
            key: data.get(key) for key in ("name", "description", "is_dft", "caveat")
        },
        "data_builder_packages": data.get("package_versions"),
        "packages": package_versions(),
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "python_executable": sys.executable,
        },
        "workflow": git_state(workdir),
        "configfiles": list(configfiles),
        "config": json.loads(json.dumps(config, default=str)),
        "inputs": input_checksums(inputs, registry_path),
    }
    if parse_report is not None:
        report = json.loads(Path(parse_report).read_text())
        record["parse_counts"] = {
            key: value for key, value in report.items() if not isinstance(value, (list, dict))
        }
    return record


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def provenance_html(record: Mapping[str, Any]) -> str:
    """One self-contained HTML page of a provenance record."""
    source = record["data_source"]
    if source.get("is_dft"):
        banner = f'<p class="ok">Data: <b>{html.escape(str(source["name"]))}</b> (DFT labels).</p>'
    else:
        banner = (
            f'<p class="warn">Data: <b>{html.escape(str(source["name"]))}</b>: SURROGATE labels '
            "from pretrained CHGNet models, not DFT. "
            f'{html.escape(str(source.get("caveat") or ""))}</p>'
        )
    packages = [{"package": k, "version": v or "not installed"} for k, v in record["packages"].items()]
    workflow = record["workflow"]
    commit = workflow.get("commit") or workflow.get("note", "unknown")
    if workflow.get("modified_files"):
        commit += " (tracked files modified since this commit)"
    sections = [
        "<h1>Provenance</h1>",
        banner,
        f"<p>{html.escape(str(source.get('description') or ''))}</p>",
        f"<p>Recorded {html.escape(record['recorded_at'])}; workflow commit "
        f"<code>{html.escape(commit)}</code>; {html.escape(record['platform']['system'])}.</p>",
        "<h2>Input files</h2>",
        "<p>SHA-256 of every file the run read that it did not make, and of every file in "
        "<code>resources/registry.yaml</code>, checked against the registry.</p>",
        _table(
            record["inputs"],
            ["path", "registry_entry", "read_by_this_run", "size_bytes", "sha256", "status"],
        ),
    ]
    if record.get("parse_counts"):
        counts = [{"count": k, "value": v} for k, v in record["parse_counts"].items()]
        sections += ["<h2>Parsing</h2>", _table(counts, ["count", "value"])]
    sections += ["<h2>Packages</h2>", _table(packages, ["package", "version"])]
    if record.get("data_builder_packages"):
        built = [{"package": k, "version": v} for k, v in record["data_builder_packages"].items()]
        sections += ["<h2>Packages that built the dataset</h2>", _table(built, ["package", "version"])]
    sections += [
        "<h2>Configuration</h2>",
        "<p>Files: "
        + ", ".join(f"<code>{html.escape(f)}</code>" for f in record["configfiles"])
        + " (a <code>--configfile</code> given on the command line overrides the Snakefile's "
        "<code>config/config.yaml</code> key by key). The merged configuration:</p>",
        f"<pre>{html.escape(yaml.safe_dump(record['config'], sort_keys=False))}</pre>",
    ]
    style = (
        "body{font-family:sans-serif;margin:1.5em;max-width:70em}"
        "table{border-collapse:collapse;font-size:0.85em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;word-break:break-all}"
        "pre{background:#f6f6f6;padding:0.8em;font-size:0.85em}"
        ".warn{background:#fde2e1;border-left:6px solid #c0392b;padding:0.6em}"
        ".ok{background:#e3f4e1;border-left:6px solid #2e7d32;padding:0.6em}"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Provenance</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def write_provenance(*, out_json: str | Path, out_html: str | Path, **inputs: Any) -> dict[str, Any]:
    """The ``report_provenance`` job: write the run's provenance record as JSON and HTML.

    Args:
        out_json: Output file of the record.
        out_html: Output page (:func:`provenance_html`).
        **inputs: The keyword arguments of :func:`provenance_record` (``config``,
            ``configfiles``, ``inputs``, ``registry_path``, ``data_provenance``, ...).

    Returns:
        The record.
    """
    record = provenance_record(**inputs)
    write_json_atomic(out_json, record)
    write_text_atomic(out_html, provenance_html(record))
    statuses = [row["status"] for row in record["inputs"]]
    counts = {status: statuses.count(status) for status in set(statuses)}
    logger.info("%d files checksummed: %s", len(statuses), counts)
    return record
