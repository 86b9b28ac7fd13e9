"""What a figure shows, read back from the figure object as plain data.

:func:`figure_summary` records, for each axes, its title, axis labels and limits and the data
drawn on it (lines, scatter collections, bars, images, text). :func:`save_figure` writes it
beside the image files as ``<stem>.json``, so a test of a workflow run can check the plotted
numbers against the tables they came from instead of the size of a PNG.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage


def _floats(values: Any) -> list:
    """``values`` as a (nested) list of floats, masked entries as NaN; as strings if they are
    not numbers (categorical axes)."""
    try:
        array = np.ma.asarray(values, dtype=float).filled(np.nan)
    except (TypeError, ValueError):
        return [str(value) for value in np.ravel(values)]
    return array.tolist()


def _line(line: Any) -> dict[str, Any]:
    return {
        "label": line.get_label(),
        "x": _floats(line.get_xdata()),
        "y": _floats(line.get_ydata()),
    }


def _scatter(collection: PathCollection) -> dict[str, Any]:
    offsets = np.ma.asarray(collection.get_offsets(), dtype=float).reshape(-1, 2)
    return {
        "label": collection.get_label(),
        "n_points": len(offsets),
        "offsets": _floats(offsets),
    }


def _bars(container: BarContainer) -> dict[str, Any]:
    patches = list(container.patches)
    horizontal = getattr(container, "orientation", None) == "horizontal"
    return {
        "label": container.get_label(),
        "orientation": "horizontal" if horizontal else "vertical",
        "heights": _floats([p.get_width() if horizontal else p.get_height() for p in patches]),
        "positions": _floats(
            [p.get_y() + p.get_height() / 2 if horizontal else p.get_x() + p.get_width() / 2
             for p in patches]
        ),
    }


def _image(image: AxesImage) -> dict[str, Any]:
    array = np.ma.asarray(image.get_array(), dtype=float)
    finite = array.compressed()
    finite = finite[np.isfinite(finite)]
    return {
        "shape": list(array.shape),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
    }


def axes_summary(ax: Axes) -> dict[str, Any]:
    """Title, labels, limits, tick labels and plotted data of one axes.

    Args:
        ax: The axes to read.

    Returns:
        A dict with ``title`` (left, centre and right titles joined), ``xlabel``, ``ylabel``, ``xlim``, ``ylim``, ``xticklabels``,
        ``yticklabels``, ``lines`` (label, x, y), ``scatter`` (label, n_points, offsets),
        ``bars`` (label, orientation, heights, bar centres), ``images`` (shape, min, max),
        ``fills`` (number of filled regions) and ``texts`` (the strings written on it).
    """
    titles = (ax.get_title("left"), ax.get_title(), ax.get_title("right"))
    return {
        "title": " ".join(title for title in titles if title),
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "xlim": _floats(ax.get_xlim()),
        "ylim": _floats(ax.get_ylim()),
        "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
        "yticklabels": [t.get_text() for t in ax.get_yticklabels()],
        "lines": [_line(line) for line in ax.get_lines()],
        "scatter": [_scatter(c) for c in ax.collections if isinstance(c, PathCollection)],
        "bars": [_bars(c) for c in ax.containers if isinstance(c, BarContainer)],
        "images": [_image(image) for image in ax.get_images()],
        "fills": sum(isinstance(c, PolyCollection) for c in ax.collections),
        "texts": [t.get_text() for t in ax.texts],
    }


def figure_summary(fig: Figure) -> dict[str, Any]:
    """Every axes of ``fig`` (:func:`axes_summary`, in drawing order) and the figure's texts.

    Args:
        fig: The figure to read.

    Returns:
        ``{"axes": [...], "suptitle": str, "texts": [...]}``; non-finite numbers stay NaN
        (:func:`mlip_transfer.core.files.dumps_json` writes them as ``null``).
    """
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    return {
        "axes": [axes_summary(ax) for ax in fig.axes],
        "suptitle": suptitle,
        "texts": [t.get_text() for t in fig.texts],
    }
