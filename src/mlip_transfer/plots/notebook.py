"""The set-up every figure notebook shares: its folders, the data-source banner, saving figures.

A notebook's parameters cell (filled by papermill from the rule's params) holds plain strings;
``setup`` turns them into paths, shows which data the numbers come from, and returns a
``FigureNotebook`` whose ``save`` writes each figure in the configured formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.style import save_figure


@dataclass(frozen=True, kw_only=True)
class FigureNotebook:
    """One notebook's paths, data source and figure settings.

    Attributes:
        source: Where the labels of the data behind the figures come from.
        figure_dir: Folder the figures are saved in.
        formats: File formats of each figure (``png``, ``pdf``, ...).
        dpi: Resolution of raster formats.
        folders: Input folders by parameter name (``data_dir``, ``energy_dir``, ...); also
            readable as attributes (``nb.energy_dir``).
    """

    source: DataSource
    figure_dir: Path
    formats: tuple[str, ...]
    dpi: int
    folders: Mapping[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.formats:
            raise ValueError("a figure notebook needs at least one figure format")

    def __getattr__(self, name: str) -> Path:
        # Only reached for names that are not fields: the input folders.
        folders = self.__dict__.get("folders", {})
        if name in folders:
            return folders[name]
        raise AttributeError(name)

    def banner(self, note: str = "") -> str:
        """Markdown naming the data source, its caveat and an optional note."""
        parts = [f"**{self.source.banner}.** {self.source.description}"]
        if self.source.caveat:
            parts.append(f"*Caveat:* {self.source.caveat}")
        if note:
            parts.append(note)
        return "\n\n".join(parts)

    def save(self, fig: Figure, stem: str) -> Figure:
        """Save ``fig`` as ``<figure_dir>/<stem>.<format>`` for each format (closing it) and
        return it, so a cell ending in ``nb.save(...)`` still shows the figure."""
        save_figure(fig, self.figure_dir / stem, self.formats, dpi=self.dpi)
        return fig


def setup(
    *,
    data_dir: str | Path,
    figure_dir: str | Path,
    formats: str,
    dpi: int,
    note: str = "",
    show: bool = True,
    **folders: str | Path,
) -> FigureNotebook:
    """Paths, data source and figure settings of a figure notebook, its banner displayed.

    Args:
        data_dir: Folder holding the dataset's ``provenance.json`` (the data source).
        figure_dir: Folder the figures go to.
        formats: Comma-separated figure formats, as the rules pass them (``"png,pdf"``).
        dpi: Resolution of raster formats.
        note: Markdown shown under the banner (for example the run's scale).
        show: Display the banner (off outside a notebook).
        **folders: Further input folders by name (``energy_dir=...``).
    """
    data_dir = Path(data_dir)
    notebook = FigureNotebook(
        source=DataSource.read(data_dir),
        figure_dir=Path(figure_dir),
        formats=tuple(fmt for fmt in formats.split(",") if fmt),
        dpi=int(dpi),
        folders={"data_dir": data_dir, **{name: Path(path) for name, path in folders.items()}},
    )
    if show:
        from IPython.display import Markdown, display

        display(Markdown(notebook.banner(note)))
    return notebook
