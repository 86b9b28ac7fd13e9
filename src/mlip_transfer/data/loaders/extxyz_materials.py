"""Material ids of extended XYZ frames: from ``atoms.info``, or by structure matching.

The split is by material id, so the id decides which frames may end up on both sides of it.
``data.extxyz.material_ids_from`` chooses the rule:

``info`` (default)
    Each frame's ``info[material_id_key]`` (default key ``material_id``). A frame without one
    becomes its own material only when no other frame has its composition, since then it cannot
    share a material with another frame. Otherwise the parse refuses: frames of one trajectory
    (or any frames of one material) would each become a material of their own, and the 8:1:1
    split would put some in training and others in the test set, a leak that makes every test
    metric look better than it is.
``match``
    Frames with the key keep it. A frame without it joins the first material (in input order)
    of the same reduced formula whose first frame it matches with pymatgen's
    ``StructureMatcher`` (default tolerances, volumes scaled, so strained and rattled frames of
    one structure match); a frame that matches none starts a new material named after its
    provisional id ``{file stem}-{index}``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache

from pymatgen.core import Composition

from mlip_transfer.core.errors import DataError
from mlip_transfer.data.dataset import Frame

# One loaded frame: (file, frame, whether the frame carried a material id).
Loaded = tuple[str, Frame, bool]


@lru_cache(maxsize=4096)
def _reduced_formula(counts: tuple[tuple[str, int], ...]) -> str:
    return Composition(dict(counts)).reduced_formula


def _formula(frame: Frame) -> str:
    return _reduced_formula(tuple(sorted(Counter(frame.species).items())))


def _refuse(frame: Frame, file: str, other: Loaded, *, key: str) -> DataError:
    other_file, other_frame, _ = other
    return DataError(
        f"the frame has no {key!r} in its info line, and frame {other_frame.frame_id!r} of "
        f"{other_file} has the same composition ({_formula(frame)}) under another material id "
        f"({other_frame.material_id!r}). Frames without a material id would each become their "
        "own material, so the split by material could put frames of one material (frames of "
        "one trajectory, say) in both the training and the test set: a train/test leak that "
        "inflates every test metric. Add a material id to every frame "
        f"({key}=... in the info line; data.extxyz.material_id_key names the key), or set "
        "data.extxyz.material_ids_from: match to group frames into materials by structure matching.",
        file=file,
        record=frame.frame_id,
        field=key,
    )


def _check_info_ids(loaded: list[Loaded], *, key: str) -> None:
    """Refuse if a frame without an id shares its composition with a frame of another id."""
    by_formula: dict[str, list[Loaded]] = defaultdict(list)
    for item in loaded:
        by_formula[_formula(item[1])].append(item)
    for members in by_formula.values():
        first = members[0]
        if all(m[1].material_id == first[1].material_id for m in members):
            continue  # one material id per composition: nothing can leak
        for file, frame, has_id in members:
            if not has_id:
                other = next(m for m in members if m[1].material_id != frame.material_id)
                raise _refuse(frame, file, other, key=key)


def _match_ids(loaded: list[Loaded]) -> list[Loaded]:
    """Frames without an id join the first matching material of their formula, or start one."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    # formula -> [(material id, structure of its first frame)], in input order
    materials: dict[str, list[tuple[str, object]]] = defaultdict(list)
    known: set[str] = set()
    for _, frame, has_id in loaded:
        if has_id and frame.material_id not in known:
            known.add(frame.material_id)
            materials[_formula(frame)].append((frame.material_id, frame.to_structure()))
    out: list[Loaded] = []
    for file, frame, has_id in loaded:
        if not has_id:
            structure = frame.to_structure()
            candidates = materials[_formula(frame)]
            material_id = next(
                (mid for mid, first in candidates if matcher.fit(first, structure)), None
            )
            if material_id is None:
                material_id = frame.material_id
                candidates.append((material_id, structure))
            frame = replace(frame, material_id=material_id)
        out.append((file, frame, True))
    return out


def assign_material_ids(
    loaded: Iterable[Loaded], *, mode: str, key: str = "material_id"
) -> list[tuple[str, Frame]]:
    """The ``(file, frame)`` pairs with their final material ids (see the module docstring).

    Args:
        loaded: ``(file, frame, has_material_id)`` for every frame of every input file.
        mode: ``info`` or ``match``.
        key: The ``atoms.info`` key of the material id, named in the refusal.

    Raises:
        DataError: in ``info`` mode, naming the file, the frame and the key, when a frame
            without a material id shares its composition with a frame of another material id.
    """
    loaded = list(loaded)
    if mode == "match":
        loaded = _match_ids(loaded)
    else:
        _check_info_ids(loaded, key=key)
    return [(file, frame) for file, frame, _ in loaded]
