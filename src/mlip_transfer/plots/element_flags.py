"""Periodic tables of the per-element diagnosis: the recommendation, and the deviation of each
element's residual shift from the expected (elemental ground-state) shift."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mlip_transfer.energy_scale.element_report import ADD_DATA, CHECK_DFT, ENOUGH, ElementReport
from mlip_transfer.plots.periodic_table import ptable_heatmap

# Recommendation codes (the colour index) and their box label; collinear gets its own colour
# because it needs different structures (new partners, not just more of the same).
CATEGORIES = (
    (ENOUGH, "ok", "#4c9a5b"),
    (ADD_DATA, "data", "#e3a33b"),
    ("collinear", "coll", "#8c6bb1"),
    (CHECK_DFT, "DFT", "#c8413b"),
)


def _category(row) -> int:
    if row.recommendation == CHECK_DFT:
        return 3
    if row.collinear:
        return 2
    return 1 if row.recommendation == ADD_DATA else 0


def element_flags_figure(report: ElementReport, *, title: str = "") -> Figure:
    """Two tables: the recommendation per element, and residual − expected shift (eV/atom,
    centred on the median deviation; values of likely settings mismatches are marked "!")."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(20, 6.5))
    codes = {row.element: float(_category(row)) for row in report.rows}
    labels = [label for _, label, _ in CATEGORIES]
    ptable_heatmap(
        codes, ax=left, cmap=ListedColormap([color for *_, color in CATEGORIES]),
        vmin=-0.5, vmax=len(CATEGORIES) - 0.5, colorbar=False,
        fmt=lambda code: labels[int(code)], title="Recommendation per element",
    )  # fmt: skip
    left.legend(
        handles=[Patch(color=color, label=f"{label}: {name}") for name, label, color in CATEGORIES],
        loc="upper left", bbox_to_anchor=(2.3, 0.9), bbox_transform=left.transData, ncol=1,
        fontsize=8, frameon=False,
    )  # fmt: skip
    centre = report.median_deviation or 0.0
    offsets = {
        row.element: row.deviation - centre for row in report.rows if row.deviation is not None
    }
    flagged = {row.element for row in report.rows if row.mismatch}
    span = max([abs(v) for v in offsets.values()] + [0.1])
    ptable_heatmap(
        offsets, ax=right, cmap="RdBu_r", vmin=-span, vmax=span,
        fmt=lambda v: ("!" if _is_flagged(v, offsets, flagged) else "") + f"{v:+.2f}",
        label="residual − expected shift − median (eV/atom)",
        title="Deviation from the expected shift" if report.expected_label else "No expected shifts given",
    )  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=14)
    return fig


def _is_flagged(value: float, offsets: dict[str, float], flagged: set[str]) -> bool:
    """Whether the box showing ``value`` belongs to a flagged element (values are per element,
    the label callback sees only the value)."""
    return any(offsets[el] == value for el in flagged if el in offsets)
