"""The energy-scale stage: AtomRef refits per functional and their tidy tables (paper Figs. 1, 2).

Each functional's AtomRef is refit with Eq. 2 on this dataset's frames of the configured split;
a functional without frames (for example GGA/GGA+U when only MP-r2SCAN trajectories are parsed)
is fit on its relaxed energies per material instead, and the output says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
from pymatgen.core import Element

from mlip_transfer.data.dataset import Frame
from mlip_transfer.energy_scale.atomref import AtomRefFit, fit_atomref
from mlip_transfer.energy_scale.chgnet_atomref import shipped_atomref

FUNCTIONALS = ("gga", "r2scan")
# CHGNet's own AtomRef fits, on the datasets its two models were trained on.
SHIPPED_FITS = {"gga": "MPtrj", "r2scan": "MP-r2SCAN"}


def fit_functional_atomrefs(
    frames: Iterable[Frame],
    materials: pd.DataFrame,
    *,
    split: Mapping[str, str] | None = None,
    fit_split: str = "train",
    functionals: Iterable[str] = FUNCTIONALS,
) -> dict[str, tuple[AtomRefFit, str]]:
    """Refit each functional's AtomRef; returns functional -> (fit, what it was fit on).

    Args:
        frames: Canonical frames of the dataset.
        materials: Canonical materials table (fallback for functionals without frames).
        split: Material id -> split name; required unless ``fit_split == "all"``.
        fit_split: ``train`` (the paper's choice) or ``all``.
        functionals: Functionals to fit.
    """
    wanted = set(functionals)
    selected: dict[str, list[Frame]] = {functional: [] for functional in wanted}
    for frame in frames:
        if frame.functional not in wanted or frame.energy is None:
            continue
        if fit_split != "all" and (split or {}).get(frame.material_id) != fit_split:
            continue
        selected[frame.functional].append(frame)
    fits = {}
    for functional in functionals:
        chosen = selected[functional]
        if chosen:
            fit = fit_atomref(
                [f.species for f in chosen],
                [f.energy_per_atom for f in chosen],
                records=[f.frame_id for f in chosen],
            )
            fits[functional] = (fit, f"{len(chosen)} frames of split '{fit_split}'")
            continue
        rows = materials[materials["functional"] == functional]
        if fit_split != "all":
            rows = rows[rows["material_id"].map(lambda m: (split or {}).get(m) == fit_split)]
        if rows.empty:
            continue
        fit = fit_atomref(
            list(rows["formula"]), list(rows["relaxed_energy_per_atom"]), records=list(rows["material_id"])
        )
        fits[functional] = (fit, f"{len(rows)} relaxed materials of split '{fit_split}' (no frames)")
    return fits


def atomref_table(fits: Mapping[str, AtomRefFit]) -> pd.DataFrame:
    """Long table of refit and CHGNet-shipped AtomRefs: functional, kind, element, Z, energy, n_structures."""
    rows = []
    for functional, fit in fits.items():
        for element, energy in fit.energies.items():
            rows.append((functional, "refit", element, energy, fit.counts.get(element)))
    for functional, name in SHIPPED_FITS.items():
        for element, energy in shipped_atomref(name).items():
            rows.append((functional, "shipped", element, energy, None))
    table = pd.DataFrame(rows, columns=["functional", "kind", "element", "energy", "n_structures"])
    table.insert(3, "Z", table["element"].map(lambda el: Element(el).Z))
    return table.sort_values(["kind", "functional", "Z"], ignore_index=True)


def read_atomref_table(path: str | Path) -> dict[tuple[str, str], dict[str, float]]:
    """(functional, kind) -> element -> energy, from :func:`atomref_table`'s CSV."""
    table = pd.read_csv(path)
    return {
        (functional, kind): dict(zip(group["element"], group["energy"], strict=True))
        for (functional, kind), group in table.groupby(["functional", "kind"])
    }


def fit_summary(fits: Mapping[str, tuple[AtomRefFit, str]]) -> dict:
    """JSON-ready diagnostics of each refit."""
    return {
        functional: {
            "fit_on": fit_on,
            "rank": fit.rank,
            "n_samples": fit.n_samples,
            "n_elements": fit.n_elements,
            "missing": {element: fit.reasons.get(element, "") for element in fit.missing},
            "residual_mae": fit.residual_mae,
            "residual_rmse": fit.residual_rmse,
        }
        for functional, (fit, fit_on) in fits.items()
    }
