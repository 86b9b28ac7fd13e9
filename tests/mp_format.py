"""Write canonical frames in the Materials Project formats (MP-r2SCAN/MPtrj JSON, thermo docs).

Used to run the unchanged workflow on the real-data path with more materials than the
hand-written fixtures hold: the frames keep their labels, only the file format changes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from pymatgen.core import Composition

from mlip_transfer.data.dataset import KBAR_PER_GPA_VASP_SIGN, Frame

THERMO_TYPES = {"gga": "GGA_GGA+U", "r2scan": "R2SCAN"}


def write_trajectory_json(path: Path, frames: Iterable[Frame], relaxed: dict[str, float]) -> None:
    """MPtrj layout: {mp_id: {task-calc-step: record}}; stress in kBar with the VASP sign."""
    layout: dict[str, dict[str, dict]] = defaultdict(dict)
    order = sorted(frames, key=lambda f: (f.material_id, f.extra.get("step", 0), f.frame_id))
    for step, frame in enumerate(order):
        n = frame.n_atoms
        record = {
            "structure": frame.to_structure().as_dict(),
            "uncorrected_total_energy": frame.energy_uncorrected,
            "energy_per_atom": frame.energy / n,
            "force": frame.forces.tolist(),
            "stress": (frame.stress * KBAR_PER_GPA_VASP_SIGN).tolist(),
            "magmom": None if frame.magmoms is None else frame.magmoms.tolist(),
            "e_per_atom_relaxed": relaxed[frame.material_id],
            "mp_id": frame.material_id,
        }
        if frame.functional == "gga":
            record["corrected_total_energy"] = frame.energy
        # task-calc-step ids, one task per functional, steps increasing along the relaxation
        layout[frame.material_id][f"{frame.material_id}-{frame.functional}-0-{step}"] = record
    path.write_text(json.dumps(layout))


def write_thermo_docs(path: Path, materials: pd.DataFrame) -> None:
    """ThermoDoc-shaped records, one per material and functional, as the API returns them."""
    docs = []
    for row in materials.itertuples():
        composition = Composition(row.formula)
        docs.append(
            {
                "material_id": row.material_id,
                "thermo_type": THERMO_TYPES[row.functional],
                "formula_pretty": composition.reduced_formula,
                "composition": composition.as_dict(),
                "elements": sorted(el.symbol for el in composition.elements),
                "energy_per_atom": row.relaxed_energy_per_atom,
                "uncorrected_energy_per_atom": row.relaxed_energy_per_atom_uncorrected,
                "formation_energy_per_atom": row.formation_energy_per_atom,
            }
        )
    path.write_text(json.dumps({"meta": {"source": "tests/mp_format.py"}, "data": docs}))


class Response:
    """The part of a ``requests`` response the MP API clients read."""

    def __init__(self, status_code: int, body: object) -> None:
        self.status_code = status_code
        self._body = body
        self.text = json.dumps(body)

    def json(self) -> object:
        return self._body


class ReplaySession:
    """Answers GET requests from recorded exchanges (a fixtures JSON with an ``exchanges``
    list); an unrecorded request fails the test."""

    def __init__(self, path: Path) -> None:
        self.exchanges = json.loads(Path(path).read_text())["exchanges"]
        self.calls: list[dict] = []

    def get(self, url, *, params=None, headers=None, timeout=None):
        self.calls.append({"url": url, "params": dict(params), "headers": dict(headers)})
        for exchange in self.exchanges:
            if exchange["url"] == url and exchange["params"] == params:
                return Response(exchange["status_code"], exchange["body"])
        raise AssertionError(f"unrecorded request {url} {params}")
