"""Shared figure conventions: colours per functional, the data-source footer, saving."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from mlip_transfer.core.files import atomic_path, write_json_atomic
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.figure_data import figure_summary

FUNCTIONAL_COLORS = {"gga": "#1f77b4", "r2scan": "#d62728"}


def functional_color(functional: str) -> str:
    return FUNCTIONAL_COLORS.get(functional, "#7f7f7f")


def stamp_source(fig: Figure, source: DataSource) -> None:
    """Write which data the figure came from along its bottom edge, in red for surrogate data."""
    fig.text(
        0.005,
        0.005,
        source.banner,
        fontsize=8,
        color="black" if source.is_dft else "#b00000",
        ha="left",
        va="bottom",
    )


def save_figure(fig: Figure, stem: str | Path, formats: Iterable[str], *, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``stem.<format>`` for each format and close it; returns the image paths.

    Beside them goes ``stem.json``, the figure's plotted data read back from it
    (:func:`~mlip_transfer.plots.figure_data.figure_summary`), so tests and readers can check
    the numbers a figure shows. Each file is written under a temporary name and renamed once
    complete, so a killed job leaves no half-written figure.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        # A fixed creation date keeps PDFs byte-identical across reruns.
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    # After saving: the figure has been drawn, so tick labels are filled in.
    write_json_atomic(stem.with_suffix(".json"), figure_summary(fig), indent=None)
    plt.close(fig)
    return paths
