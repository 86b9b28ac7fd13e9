"""Logging for workflow steps: one log file per rule, progress bars included."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def rule_log(path: str | Path | None, name: str) -> Iterator[logging.Logger]:
    """Send logging and stderr (where tqdm draws its bars) to ``path`` for the duration.

    Exceptions are logged with their traceback before they propagate, so the rule's log says
    why it failed.
    """
    logger = logging.getLogger("mlip_transfer")
    logger.setLevel(logging.INFO)
    handle = open(path, "a", buffering=1) if path else None  # noqa: SIM115
    stream = handle or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    old_stderr = sys.stderr
    if handle:
        sys.stderr = handle
    start = time.perf_counter()
    logger.info("%s: started", name)
    try:
        yield logger
    except Exception:
        logger.exception("%s: failed", name)
        raise
    else:
        logger.info("%s: finished in %.1f s", name, time.perf_counter() - start)
    finally:
        sys.stderr = old_stderr
        logger.removeHandler(handler)
        if handle:
            handle.close()
