"""The run's executed notebooks as HTML pages (rule notebook_html)."""

import nbformat
import pytest

from mlip_transfer.core.notebook_html import notebooks_to_html


def executed_notebook(path, printed):
    cell = nbformat.v4.new_code_cell("print(x)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def test_each_notebook_becomes_its_own_page_titled_by_its_name(tmp_path):
    notebooks = [executed_notebook(tmp_path / f"{name}.ipynb", f"value of {name}: 4{i}") for i, name in enumerate(("table1", "fig5"))]
    pages = [tmp_path / "html" / "table1.html", tmp_path / "html" / "fig5.html"]
    notebooks_to_html(notebooks, pages)
    first, second = (page.read_text() for page in pages)
    assert "<title>table1</title>" in first and "value of table1: 40" in first
    assert "<title>fig5</title>" in second and "value of fig5: 41" in second
    assert "value of fig5" not in first
    assert sorted(p.name for p in (tmp_path / "html").iterdir()) == ["fig5.html", "table1.html"]


def test_a_missing_page_path_is_refused_before_anything_is_written(tmp_path):
    notebook = executed_notebook(tmp_path / "a.ipynb", "x")
    with pytest.raises(ValueError, match="2 notebooks but 1 HTML"):
        notebooks_to_html([notebook, notebook], [tmp_path / "a.html"])
    assert not (tmp_path / "a.html").exists()
