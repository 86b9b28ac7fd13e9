"""Atomic writes: a file is either absent or complete, never half written.

Every writer goes through a temporary sibling (same folder, so the rename stays on one file
system) and :func:`os.replace`, which is atomic on POSIX. A kill mid-write leaves only the
temporary file, which no rule takes as input.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it onto ``path`` when the block succeeds.

    Args:
        path: The file to write.

    Yields:
        The temporary path to write to. It is removed if the block raises.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_torch_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (checkpoints, trained models)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
