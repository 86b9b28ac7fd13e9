"""Train/validation/test split by material id (the paper's 8:1:1), seeded and order independent."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.files import write_csv_atomic
from mlip_transfer.data.dataset import check_rows

SPLITS = ("train", "val", "test")


def _rank_key(seed: int, material_id: str) -> str:
    # A hash of (seed, id) orders materials the same way whatever order they arrive in, and an
    # added material does not reshuffle the others.
    return hashlib.sha256(f"{seed}:{material_id}".encode()).hexdigest()


def split_materials(
    material_ids: Iterable[str],
    *,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    force_train: Iterable[str] = (),
) -> dict[str, str]:
    """Assign each material id to ``train``, ``val`` or ``test``.

    Materials are ranked by a seeded hash and cut at the cumulative fractions, so the split does
    not depend on record order and the counts match the fractions to within one material.

    Args:
        material_ids: Ids to split (duplicates are ignored).
        fractions: Train, validation and test fractions; must be non-negative and sum to 1.
        seed: Seed of the ranking.
        force_train: Ids that must be in the training split (for example elemental ground
            states, so that no per-element fit meets an element it never saw). They count
            towards the training fraction.

    Returns:
        Mapping from material id to split name.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    ids = sorted(set(material_ids))
    forced = set(force_train)
    unknown = sorted(forced - set(ids))
    if unknown:
        raise DataError(
            f"{len(unknown)} ids to force into training are not in the dataset, e.g. {unknown[:3]}",
            field="force_train",
        )
    n_total = len(ids)
    n_train = round(fractions[0] * n_total)
    n_val = round(fractions[1] * n_total)
    n_train = max(n_train, len(forced))
    n_val = min(n_val, n_total - n_train)
    rest = sorted((i for i in ids if i not in forced), key=lambda i: _rank_key(seed, i))
    n_free_train = n_train - len(forced)
    assignment = {material_id: "train" for material_id in forced}
    for position, material_id in enumerate(rest):
        if position < n_free_train:
            assignment[material_id] = "train"
        elif position < n_free_train + n_val:
            assignment[material_id] = "val"
        else:
            assignment[material_id] = "test"
    return dict(sorted(assignment.items()))


def write_split(path: str | Path, assignment: dict[str, str]) -> pd.DataFrame:
    """Write the split as a two-column CSV (``material_id``, ``split``) and return it."""
    table = pd.DataFrame(sorted(assignment.items()), columns=["material_id", "split"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(path, table, index=False)
    return table


def read_split(path: str | Path) -> dict[str, str]:
    """Read a split CSV written by :func:`write_split`, checking its values."""
    table = pd.read_csv(path, dtype=str)
    for column in ("material_id", "split"):
        if column not in table.columns:
            raise DataError("column is missing", file=str(path), field=column)
    check_rows(
        table,
        ~table["split"].isin(SPLITS),
        lambda row: f"split {row.split!r} is not one of {SPLITS}",
        path=path,
        field="split",
    )
    return dict(zip(table["material_id"], table["split"], strict=True))
