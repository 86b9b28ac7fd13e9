"""Glue of the transfer stage: which frames train, validate and test each model.

Kept out of the workflow scripts so that a user's own script selects frames the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from mlip_transfer.dataset import Frame

# Table 1 row of the paper for each model label (None: not in the paper).
PAPER_ROWS = {
    "1_scratch": "method1",
    "2_trainable_gga_atomref": "method2",
    "3_frozen_gga_atomref": "method3",
    "4_refit_atomref": "method4",
    "4r_residual_atomref": None,
    "pretrained_gga": "gga_pretrained",
    "r2scan_reference": "r2scan_reference",
}


def frames_by_split(
    frames: Iterable[Frame],
    split: Mapping[str, str],
    *,
    functional: str,
    max_train_frames: int | None = None,
    seed: int = 0,
) -> dict[str, list[Frame]]:
    """Frames of one functional grouped by split; optionally a seeded subset of the training frames.

    The subset ranks frames by a hash of (seed, frame id), so it does not depend on file order
    and a smaller subset is contained in a larger one.
    """
    grouped: dict[str, list[Frame]] = {"train": [], "val": [], "test": []}
    for frame in frames:
        if frame.functional == functional and split.get(frame.material_id) in grouped:
            grouped[split[frame.material_id]].append(frame)
    if max_train_frames is not None:
        grouped["train"] = seeded_subset(grouped["train"], max_train_frames, seed=seed)
    return grouped


def seeded_subset(frames: Sequence[Frame], size: int, *, seed: int = 0) -> list[Frame]:
    """At most ``size`` frames, chosen by a hash of (seed, frame id), in their original order.

    The choice does not depend on the order of ``frames``, and for one seed a smaller subset is
    contained in a larger one (the scaling-law jobs rely on both).
    """
    if size >= len(frames):
        return list(frames)
    ranked = sorted(
        frames, key=lambda f: hashlib.sha256(f"{seed}:{f.frame_id}".encode()).hexdigest()
    )
    chosen = {f.frame_id for f in ranked[:size]}
    return [f for f in frames if f.frame_id in chosen]
