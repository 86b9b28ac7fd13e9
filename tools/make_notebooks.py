"""Write the committed notebooks (no outputs) from the cell sources below.

Notebooks are generated so they stay small, reviewable and free of outputs; edit the cells here
and rerun `python tools/make_notebooks.py`. Executed copies are written by the workflow.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

PREAMBLE = """\
import json
from pathlib import Path

import matplotlib
import pandas as pd
from IPython.display import Markdown, display

from mlip_transfer.provenance import DataSource
from mlip_transfer.plots.style import save_figure
"""

DATASET_SUMMARY = [
    new_markdown_cell(
        "# Dataset summary\n\n"
        "Which elements the dataset holds, how many frames each material contributes, and the "
        "energies per functional. GGA/GGA+U and r2SCAN total energies sit tens of eV/atom apart, "
        "element by element: the energy-scale problem the AtomRef refit of the paper solves.\n\n"
        "Run by the workflow (`rule dataset_summary`) with papermill, or by hand: the parameters "
        "cell below points at the default run's outputs."
    ),
    new_code_cell(
        'data_dir = "results/data"\nfigure_dir = "results/figures"\nformats = "png,pdf"\ndpi = 150',
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        PREAMBLE
        + """from mlip_transfer.plots.dataset import element_counts, plot_dataset_summary, plot_element_table
from mlip_transfer.summary import dataset_statistics, load_dataset_tables

data_dir, figure_dir = Path(data_dir), Path(figure_dir)
formats = [fmt for fmt in formats.split(",") if fmt]
source = DataSource.read(data_dir)
display(Markdown(f"**{source.banner}.** {source.description}\\n\\n" + (f"*Caveat:* {source.caveat}" if source.caveat else "")))"""
    ),
    new_markdown_cell("## Sizes"),
    new_code_cell(
        """frames, materials = load_dataset_tables(data_dir)
stats = dataset_statistics(frames, materials)
pd.Series({k: v for k, v in stats.items() if k != "element_symbols"}, name="value").to_frame()"""
    ),
    new_markdown_cell(
        "## What parsing kept and dropped\n\nEvery dropped record is listed with its reason in "
        "`dropped.csv` beside the data."
    ),
    new_code_cell(
        """report = json.loads((data_dir / "parse_report.json").read_text())
display(pd.json_normalize(report, sep=" / ").T.rename(columns={0: "count"}))"""
    ),
    new_markdown_cell("## Elements"),
    new_code_cell(
        """fig = plot_element_table(element_counts(frames), source)
save_figure(fig, figure_dir / "dataset_elements", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell(
        "## Frames and energies\n\nPanel b shows the raw total energies per atom: the two "
        "functionals' distributions are offset by the element-dependent reference shift."
    ),
    new_code_cell(
        """fig = plot_dataset_summary(frames, materials, source)
save_figure(fig, figure_dir / "dataset_summary", formats, dpi=dpi)
fig"""
    ),
]


def write(name: str, cells: list) -> None:
    notebook = new_notebook(cells=cells)
    # Snakemake and papermill need the kernel and language spelled out.
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{name}-{index}"
    nbformat.validate(notebook)
    nbformat.write(notebook, NOTEBOOKS / f"{name}.ipynb")


if __name__ == "__main__":
    write("dataset_summary", DATASET_SUMMARY)
