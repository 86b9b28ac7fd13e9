"""Atomic writes: a file is either absent or complete, never half written; standard JSON.

Every writer goes through a temporary sibling (same folder, so the rename stays on one file
system) and :func:`os.replace`, which is atomic on POSIX. A kill mid-write leaves only the
temporary file (hidden, ``.tmp<pid>.<name>``), which no rule takes as input. The temporary
name ends like the final one, so writers that choose a format by suffix (``.gz``, ``.png``)
see the same suffix.

JSON outputs are standard JSON: :func:`json_ready` turns non-finite floats into ``null``
(Python's ``json`` would write bare ``NaN``/``Infinity``, which ``jq`` and JavaScript reject)
and :func:`dumps_json` refuses any that remain.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it onto ``path`` when the block succeeds.

    Args:
        path: The file to write.

    Yields:
        The temporary path to write to. It is removed if the block raises.
    """
    path = Path(path)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w", **open_args: Any) -> Iterator[IO]:
    """``open`` a temporary sibling of ``path`` for writing; move it onto ``path`` when the block
    succeeds (the file is closed first), remove it when the block raises.

    Args:
        path: The file to write.
        mode: A write mode of :func:`open` (``"w"``, ``"wb"``).
        **open_args: Further arguments of :func:`open` (``encoding``, ``newline``).

    Yields:
        The open file.
    """
    with atomic_path(path) as tmp, open(tmp, mode, **open_args) as handle:
        yield handle


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_torch_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (checkpoints, trained models)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_csv_atomic(path: str | os.PathLike, table: Any, **to_csv: Any) -> None:
    """``table.to_csv(path, **to_csv)`` atomically (a pandas DataFrame; compression by suffix)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, **to_csv)


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float (also NumPy's) replaced by None, recursively.

    Dicts, lists and tuples are rebuilt (tuples as lists, as ``json`` writes them anyway); key
    order is kept; everything else is returned as it is.
    """
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (float, np.floating)):  # np.float64 is a float, np.float32 is not
        return value if math.isfinite(value) else None
    return value


def dumps_json(
    content: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
    separators: tuple[str, str] | None = None,
) -> str:
    """Standard JSON text of ``content``: non-finite floats as ``null`` (:func:`json_ready`).

    The other arguments are :func:`json.dumps`'s, so a file keeps its formatting.

    Raises:
        ValueError: A non-finite float that ``default`` produced.
    """
    return json.dumps(
        json_ready(content),
        indent=indent,
        sort_keys=sort_keys,
        default=default if default is None else _ready_default(default),
        separators=separators,
        allow_nan=False,
    )


def _ready_default(default: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``default`` whose results are :func:`json_ready` too (NumPy scalars it unwraps)."""
    return lambda value: json_ready(default(value))


def write_json_atomic(
    path: str | os.PathLike,
    content: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
    newline: bool = True,
) -> None:
    """Write ``content`` as standard JSON (:func:`dumps_json`) to ``path`` atomically.

    Args:
        path: The file.
        content: What to write.
        indent, sort_keys, default: As :func:`json.dumps`.
        newline: End the file with a newline (some files were written without one and are
            compared byte for byte).
    """
    text = dumps_json(content, indent=indent, sort_keys=sort_keys, default=default)
    write_text_atomic(path, text + ("\n" if newline else ""))
