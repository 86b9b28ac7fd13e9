"""A periodic-table heatmap that draws on a given Axes, so several tables fit in one figure.

pymatgen's ``periodic_table_heatmap`` makes its own figure, has no log scale and no lower
cutoff, and edits the colour map it is given in place; this helper does those three things.
Elements without a value are light grey with grey symbols; elements at or below ``cutoff``
share one darker grey (the colour bar's "min" extension), as in the paper's Fig. 1a.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize, to_rgba
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
from pymatgen.core import Element

MISSING_COLOR = "#ececec"  # no value at all
MISSING_TEXT = "#9a9a9a"
BELOW_CUTOFF_COLOR = "#b4b4b4"  # a value at or below the cutoff
F_BLOCK_GAP = 0.5  # rows between the main table and the lanthanide/actinide rows


def element_position(z: int) -> tuple[float, float]:
    """``(column, row)`` of an element's box, 0-based from the top left.

    La-Lu and Ac-Lr sit in two rows below the main table, columns 3-17 (1-based); their
    places in group 3 of periods 6 and 7 stay empty.
    """
    if 57 <= z <= 71:
        return 2 + (z - 57), 7 + F_BLOCK_GAP
    if 89 <= z <= 103:
        return 2 + (z - 89), 8 + F_BLOCK_GAP
    element = Element.from_Z(z)
    return element.group - 1, element.row - 1


def _text_color(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads better on ``rgba`` (relative luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def compact_number(value: float) -> str:
    """Short label for a count or value: ``7``, ``850``, ``12k``, ``1.2M``, ``0.37``."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.0f}k"
    if magnitude >= 1e3:
        return f"{value / 1e3:.1f}k"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2g}" if magnitude < 0.01 else f"{value:.2f}"


def ptable_heatmap(
    values: Mapping[str, float],
    *,
    ax: Axes | None = None,
    log: bool = False,
    cutoff: float | None = None,
    cmap: str = "viridis",
    label: str = "",
    fmt: str | Callable[[float], str] | None = compact_number,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    max_z: int = 118,
    colorbar: bool = True,
    symbol_fontsize: float = 10,
    value_fontsize: float = 6.5,
) -> Axes:
    """Colour each element's box by its value.

    Args:
        values: Element symbol -> value. Non-finite values count as missing.
        ax: Axes to draw on (default: a new 12 x 6.5 in figure).
        log: Logarithmic colour scale (non-positive values are then drawn as below the cutoff).
        cutoff: Values at or below it all share one grey, marked on the colour bar.
        cmap: Matplotlib colour map name.
        label: Colour-bar label.
        fmt: Value label under each symbol: a format string (``"{:.2f}"``), a callable, or
            None for symbols only.
        vmin, vmax: Colour range (default: the smallest value above the cutoff, the largest).
        title: Axes title.
        max_z: Draw elements 1..max_z.
        colorbar: Add a horizontal colour bar in the empty top middle of the table.
        symbol_fontsize, value_fontsize: Font sizes of symbols and value labels.

    Returns:
        The Axes (its ``colorbar`` attribute holds the colour bar, or None).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 6.5))
    clean = {el: float(v) for el, v in values.items() if v is not None and math.isfinite(float(v))}
    floor = -math.inf if cutoff is None else float(cutoff)
    norm = _color_norm(clean, floor=floor, log=log, cutoff=cutoff, vmin=vmin, vmax=vmax)
    # A copy: the "under" colour (the colour bar's min extension) is the below-cutoff grey.
    colormap = plt.get_cmap(cmap).with_extremes(under=BELOW_CUTOFF_COLOR)
    formatter = fmt.format if isinstance(fmt, str) else fmt

    for z in range(1, max_z + 1):
        symbol = Element.from_Z(z).symbol
        value = clean.get(symbol)
        if value is None:
            face, text = to_rgba(MISSING_COLOR), MISSING_TEXT
        elif value <= floor or (log and value <= 0):
            face = to_rgba(BELOW_CUTOFF_COLOR)
            text = _text_color(face)
        else:
            face = colormap(norm(np.clip(value, norm.vmin, norm.vmax)))
            text = _text_color(face)
        label_text = formatter(value) if value is not None and formatter is not None else None
        _draw_element(
            ax, z, symbol, face=face, text=text, label=label_text, bold=value is not None,
            symbol_fontsize=symbol_fontsize, value_fontsize=value_fontsize,
        )  # fmt: skip
    # Markers for where the f-block rows belong.
    for row, text in ((5, "57-71"), (6, "89-103")):
        ax.text(2.5, row + 0.5, text, ha="center", va="center", fontsize=value_fontsize, color=MISSING_TEXT)
    ax.set_xlim(-0.05, 18.05)
    ax.set_ylim(9 + F_BLOCK_GAP + 0.05, -0.05)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=13)

    ax.colorbar = None
    if colorbar:
        below = cutoff is not None and any(v <= floor for v in clean.values())
        note = f"  (grey: ≤ {compact_number(cutoff)})" if below else ""
        ax.colorbar = _add_colorbar(
            ax, norm, colormap, log=log, extend="min" if below else "neither", label=label + note
        )
    return ax


def _color_norm(
    clean: Mapping[str, float],
    *,
    floor: float,
    log: bool,
    cutoff: float | None,
    vmin: float | None,
    vmax: float | None,
) -> Normalize:
    """The colour scale: from ``vmin`` (else the cutoff, else the smallest value shown) to
    ``vmax`` (else the largest value), logarithmic if ``log``."""
    shown = [v for v in clean.values() if v > floor and (v > 0 or not log)]
    if vmin is not None:
        low = float(vmin)
    elif cutoff is not None and (cutoff > 0 or not log):
        low = float(cutoff)  # the colour bar starts at the cutoff, as in the paper's Fig. 1a
    else:
        low = min(shown) if shown else (1.0 if log else 0.0)
    high = float(vmax) if vmax is not None else (max(shown) if shown else low + 1.0)
    if high <= low:
        high = low * 10 if log else low + 1.0
    return LogNorm(vmin=low, vmax=high) if log else Normalize(vmin=low, vmax=high)


def _draw_element(
    ax: Axes,
    z: int,
    symbol: str,
    *,
    face: tuple[float, ...],
    text: str,
    label: str | None,
    bold: bool,
    symbol_fontsize: float,
    value_fontsize: float,
) -> None:
    """One element's box: its symbol, and its value ``label`` below when there is one."""
    column, row = element_position(z)
    ax.add_patch(Rectangle((column, row), 1, 1, facecolor=face, edgecolor="white", linewidth=1.2))
    ax.text(
        column + 0.5,
        row + (0.36 if label is not None else 0.5),
        symbol,
        ha="center",
        va="center",
        fontsize=symbol_fontsize,
        color=text,
        fontweight="bold" if bold else "normal",
    )
    if label is not None:
        ax.text(
            column + 0.5, row + 0.74, label, ha="center", va="center",
            fontsize=value_fontsize, color=text,
        )  # fmt: skip


def _add_colorbar(ax: Axes, norm: Normalize, colormap, *, log: bool, extend: str, label: str):
    """A horizontal colour bar inside the empty top middle of the table (periods 1-3, groups
    3-12); on a log scale ticks at 1, 2, 5 x 10^k labelled 500, 1k, 20k rather than 5 x 10^2."""
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    mappable.set_array([])
    cax = ax.inset_axes([3.2, 1.05, 8.6, 0.32], transform=ax.transData)
    bar = ax.figure.colorbar(mappable, cax=cax, orientation="horizontal", extend=extend)
    if log:
        bar.ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bar.ax.xaxis.set_minor_locator(NullLocator())
        bar.ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_number(v)))
    bar.ax.tick_params(labelsize=8)
    bar.set_label(label, fontsize=9)
    bar.ax.xaxis.set_label_position("top")
    return bar
