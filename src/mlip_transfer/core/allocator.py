"""Keep freed memory in the process instead of handing it back to the kernel (glibc malloc).

A DimeNet++ training step allocates and frees the same few hundred tensors of 0.1-2 MB every
update. With glibc's defaults, blocks above the adaptive mmap threshold are mapped and unmapped
each time and the top of the heap is trimmed, so every update page-faults its memory in again
(about 300k minor faults per 10 Ge updates). Raising the three thresholds keeps those pages:
measured 0.160 -> 0.140 core-s per Ge update in a fresh process (``benchmarks/ge_training_speed.py``).
The cost is that up to ``trim_threshold_mb`` of freed memory stays resident until the job ends.
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger("mlip_transfer.core.allocator")
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters


def keep_freed_memory(
    *, mmap_threshold_mb: int = 32, trim_threshold_mb: int = 256, top_pad_mb: int = 64
) -> bool:
    """Set glibc's mmap threshold, trim threshold and top pad for this process.

    Returns:
        True when glibc took all three settings; False where there is no glibc ``mallopt``
        (macOS, Windows, musl), which leaves the allocator as it was.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_MMAP_THRESHOLD, mmap_threshold_mb), (M_TRIM_THRESHOLD, trim_threshold_mb),
                (M_TOP_PAD, top_pad_mb))
    taken = all(mallopt(param, megabytes << 20) == 1 for param, megabytes in settings)
    logger.debug("glibc malloc keeps freed memory: %s", taken)
    return taken
