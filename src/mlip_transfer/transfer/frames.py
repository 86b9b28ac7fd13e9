"""Glue of the transfer stage: which frames train, validate and test each model.

Kept out of the workflow scripts so that a user's own script selects frames the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from mlip_transfer.data.dataset import Frame

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

    Frames are ranked by the hash. The subset first takes a cover of the elements: for each
    element (alphabetically), the best-ranked frame holding it, unless the cover already has one.
    The rest follows in rank order. So a subset at least as large as the cover (at most one frame
    per element) holds every element of ``frames`` and no AtomRef is left unfit or an element
    unseen; the choice does not depend on the order of ``frames``; and for one seed a smaller
    subset is contained in a larger one (the scaling-law jobs rely on both).
    """
    if size >= len(frames):
        return list(frames)
    ranked = sorted(
        frames, key=lambda f: hashlib.sha256(f"{seed}:{f.frame_id}".encode()).hexdigest()
    )
    cover: list[Frame] = []
    covered: set[str] = set()
    for element in sorted({el for f in frames for el in f.species}):
        if element not in covered:
            first = next(f for f in ranked if element in f.species)
            cover.append(first)
            covered.update(first.species)
    rank = {f.frame_id: index for index, f in enumerate(ranked)}
    cover.sort(key=lambda f: rank[f.frame_id])
    cover_ids = {f.frame_id for f in cover}
    order = cover + [f for f in ranked if f.frame_id not in cover_ids]
    chosen = {f.frame_id for f in order[:size]}
    return [f for f in frames if f.frame_id in chosen]



def capped_validation(frames: Sequence[Frame], training: Mapping) -> list[Frame]:
    """The validation frames every training of a run scores: at most ``max_val_frames`` of them.

    One seeded subset (:func:`seeded_subset`, the ``training`` seed, whatever the job's own
    seed), so every method and every scaling job is validated on the same frames.
    """
    cap = training.get("max_val_frames")
    if cap is None:
        return list(frames)
    return seeded_subset(frames, cap, seed=training["seed"])


def capped_test_materials(material_ids: Iterable[str], cap: int | None) -> list[str]:
    """Sorted test material ids, at most ``cap`` of them (None: all): the ones each model relaxes.

    Chosen by a hash of the id alone, so every model of a run relaxes the same materials and a
    smaller cap's choice is contained in a larger one's.
    """
    ids = sorted(set(material_ids))
    if cap is None or cap >= len(ids):
        return ids
    ranked = sorted(ids, key=lambda m: hashlib.sha256(f"test:{m}".encode()).hexdigest())
    return sorted(ranked[:cap])
