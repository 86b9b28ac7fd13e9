"""The executed notebooks of a run as HTML pages, for the browsable report.

One process converts them all: starting ``jupyter nbconvert`` once per notebook cost about 4 s
of start-up each (16 notebooks per run), the conversion itself a fraction of a second.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from mlip_transfer.core.files import write_text_atomic

logger = logging.getLogger("mlip_transfer.core.notebook_html")


def notebooks_to_html(notebooks: Sequence[str | os.PathLike], pages: Sequence[str | os.PathLike]) -> None:
    """Write each executed notebook of ``notebooks`` as the HTML page at the same place in ``pages``.

    The pages are what ``jupyter nbconvert --to html`` writes (JupyterLab's template, figures
    embedded), each written atomically.

    Args:
        notebooks: Executed ``.ipynb`` files.
        pages: One ``.html`` path per notebook.

    Raises:
        ValueError: When the two lists differ in length.
    """
    if len(notebooks) != len(pages):
        raise ValueError(f"{len(notebooks)} notebooks but {len(pages)} HTML paths")
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    for notebook, page in zip(notebooks, pages, strict=True):
        # The page title is the notebook's name, as nbconvert's command line gives it.
        resources = {"metadata": {"name": Path(notebook).stem}}
        body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4), resources)
        Path(page).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(page, body)
        logger.info("%s -> %s (%.0f kB)", notebook, page, len(body) / 1e3)
