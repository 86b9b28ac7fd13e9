"""Which data an output came from, recorded beside every output and stamped on every figure."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mlip_transfer.core.files import write_json_atomic

PROVENANCE_FILE = "provenance.json"


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """Where a dataset's labels come from.

    Attributes:
        name: Short id (``surrogate-default``, ``mp-r2scan``, ``extxyz``).
        description: One sentence a reader understands.
        is_dft: Whether the labels are DFT calculations. Surrogate labels are not, and outputs
            computed from them must never be read as the paper's numbers.
        caveat: What a reader must keep in mind when reading results made from this data.
        labels: What made the labels, for the banner of non-DFT data (default: the surrogate
            CHGNet labels of the cross-functional study).
    """

    name: str
    description: str
    is_dft: bool
    caveat: str = ""
    labels: str = ""

    @property
    def banner(self) -> str:
        """One line for figure footers and notebook headers."""
        if self.is_dft:
            kind = "DFT labels"
        else:
            kind = self.labels or "SURROGATE labels from pretrained CHGNet, not DFT"
        return f"Data: {self.name} ({kind})"

    def write(self, folder: str | Path, **extra: object) -> Path:
        path = Path(folder) / PROVENANCE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {**asdict(self), **extra}, sort_keys=True)
        return path

    @classmethod
    def read(cls, folder: str | Path) -> DataSource:
        record = json.loads((Path(folder) / PROVENANCE_FILE).read_text())
        fields = {key: record[key] for key in ("name", "description", "is_dft", "caveat")}
        # Files written before ``labels`` existed lack it.
        return cls(**fields, labels=record.get("labels", ""))


# What a reader must know about each r2SCAN teacher of the surrogate default dataset.
_TEACHER_CAVEATS = {
    "chgnet-r2scan": (
        "The r2SCAN labels come from the paper's own Method-4 model (a fine-tune of v0.3.0), so "
        "rankings of transfer methods on them are not independent evidence"
    ),
    "diep": (
        "The r2SCAN labels come from DIEP, trained from scratch on MatPES r2SCAN and sharing no "
        "weights with CHGNet; they are still a potential's predictions (reported test MAE 26 "
        "meV/atom), not r2SCAN DFT"
    ),
}
_TEACHER_LABELS = {"chgnet-r2scan": "CHGNet 'r2scan'", "diep": "DIEP 2.0.0"}


def surrogate_default(teacher: str = "chgnet-r2scan") -> DataSource:
    """The embedded default dataset as parsed with one r2SCAN teacher's labels.

    Raises:
        KeyError: ``teacher`` is not an r2SCAN teacher of the default dataset.
    """
    caveat = _TEACHER_CAVEATS[teacher]
    return DataSource(
        name="surrogate-default",
        description=(
            "Embedded default: real WBM crystals and MatPES elemental ground states, perturbed "
            "and relaxed with pretrained potentials; GGA/GGA+U labels from CHGNet v0.3.0 (trained "
            f"on MPtrj), r2SCAN labels from {_TEACHER_LABELS[teacher]} (teacher {teacher!r})."
        ),
        is_dft=False,
        caveat=f"Labels are predictions of pretrained potentials, not DFT. {caveat}, and must not "
        "be read as the paper's numbers.",
        labels=f"SURROGATE labels: GGA from CHGNet v0.3.0, r2SCAN from {teacher}; not DFT",
    )


SURROGATE_DEFAULT = surrogate_default()
MP_R2SCAN = DataSource(
    name="mp-r2scan",
    description="Materials Project r2SCAN trajectories (MP-r2SCAN, figshare 28245650) with MP "
    "GGA/GGA+U and r2SCAN thermo data.",
    is_dft=True,
)
EXTXYZ = DataSource(
    name="extxyz",
    description="User-supplied extended XYZ target dataset.",
    is_dft=True,
    caveat="Labels are whatever the user's files hold.",
)
STILLINGER_WEBER = DataSource(
    name="stillinger-weber",
    description=(
        "Synthetic reference of the cross-element study: diamond Si and Ge in periodic cells, "
        "sampled by Langevin NVT molecular dynamics with the Stillinger-Weber potential "
        "(matscipy), Si parameters of Stillinger & Weber 1985, Ge of Ding & Andersen 1986."
    ),
    is_dft=False,
    labels="SYNTHETIC Stillinger-Weber reference, not DFT",
    caveat=(
        "Energies and forces are those of an empirical potential, as in the study's SW "
        "experiments; they say how well a model learns a known potential, not how well it "
        "describes real Si or Ge."
    ),
)
SOURCES = {
    source.name: source
    for source in (SURROGATE_DEFAULT, MP_R2SCAN, EXTXYZ, STILLINGER_WEBER)
}
