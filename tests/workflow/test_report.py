"""The browsable report: provenance record, captions, and `snakemake --report` on the smoke run."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from mlip_transfer.core.report import (
    input_checksums,
    package_versions,
    provenance_html,
    provenance_record,
)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tools"))
from report_screenshot import list_results  # noqa: E402

CAPTIONS = REPO / "workflow" / "report"


def write_registry(folder, entries):
    path = folder / "registry.yaml"
    path.write_text(yaml.safe_dump(entries))
    return path


def test_input_checksums_check_every_file_against_the_registry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("good.txt").write_text("good")
    Path("changed.txt").write_text("not what the registry pinned")
    Path("unpinned.txt").write_text("x")
    Path("mine.txt").write_text("a user's file")
    from mlip_transfer.core.registry import file_checksum

    registry = write_registry(tmp_path, {
        "good": {"path": "good.txt", "description": "d", "sha256": file_checksum("good.txt")},
        "changed": {"path": "changed.txt", "description": "d", "sha256": "0" * 64},
        "unpinned": {"path": "unpinned.txt", "description": "d"},
        "elsewhere": {"path": "absent.json", "description": "d", "url": "https://example.org/a"},
    })
    rows = {row["path"]: row for row in input_checksums(["mine.txt", "good.txt"], registry)}
    assert rows["good.txt"]["status"] == "matches registry" and rows["good.txt"]["read_by_this_run"]
    assert rows["changed.txt"]["status"] == "DIFFERS from registry"
    assert rows["unpinned.txt"]["status"] == "not pinned in registry"
    assert rows["mine.txt"]["status"] == "not in registry" and rows["mine.txt"]["sha256"]
    assert rows["absent.json"]["status"] == "absent" and not rows["absent.json"]["read_by_this_run"]
    assert list(rows)[:2] == ["mine.txt", "good.txt"]  # the run's inputs first


def test_package_versions_name_python_and_the_workflow_engine():
    versions = package_versions()
    assert versions["python"].startswith("3.")
    assert versions["snakemake"] and versions["mlip-transfer"]
    assert package_versions(["no-such-package-here"])["no-such-package-here"] is None


@pytest.mark.parametrize("is_dft", [False, True])
def test_provenance_page_says_whether_labels_are_dft_and_escapes_text(tmp_path, is_dft):
    data = tmp_path / "provenance.json"
    data.write_text(json.dumps({
        "name": "src<1>", "description": "d & e", "is_dft": is_dft, "caveat": "careful",
        "package_versions": {"chgnet": "0.4.2"},
    }))
    (tmp_path / "in.txt").write_text("x")
    registry = write_registry(tmp_path, {})
    record = provenance_record(
        config={"output_dir": "results", "data": {"source": "<default>"}},
        configfiles=["config/smoke.yaml", "config/config.yaml"],
        inputs=[tmp_path / "in.txt"],
        registry_path=registry,
        data_provenance=data,
        workdir=tmp_path,
    )
    assert record["workflow"]["commit"] is None  # tmp_path is no git checkout
    page = provenance_html(record)
    assert ("SURROGATE" in page) is (not is_dft)
    assert "src&lt;1&gt;" in page and "&lt;default&gt;" in page and "d &amp; e" in page
    assert "config/smoke.yaml" in page and "chgnet" in page
    json.dumps(record)  # the JSON twin must serialise


class Namespace(SimpleNamespace):
    """Attribute access like Snakemake's objects, and ``.get``."""


def merged_config(path):
    from snakemake.utils import update_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load(path.read_text()))
    return config


@pytest.mark.parametrize("config_path", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_caption_renders_for_every_config_and_names_its_data(config_path):
    """Each caption template, each branch a config selects, rendered as the report does."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    config = merged_config(config_path)
    figures = ["fig1a_element_occurrence", "fig1b_relaxed_energies", "fig1cd_element_importance",
               "fig2a_atomrefs", "fig2b_referenced_energies", "matpes_shift_check", "table1",
               "fig3a_gradients", "fig3bc_energy_mae", "dataset_summary", "unknown_figure"]
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    surrogate = config["data"]["source"] == "default"
    for caption in sorted(CAPTIONS.glob("*.rst")):
        for figure in figures:
            snakemake = Namespace(
                config=config, wildcards=Namespace(figure=figure, notebook=figure), params=Namespace()
            )
            text = env.from_string(caption.read_text()).render(snakemake=snakemake)
            html = publish_parts(text, writer="html", settings_overrides={"report_level": 2})["body"]
            assert "system-message" not in html, f"{caption.name} ({figure}): {html}"
            assert config["output_dir"] in html, caption.name
            if caption.name == "elements_figure.rst":  # its own synthetic data, whatever the source
                assert "SYNTHETIC Stillinger-Weber" in html, html
            elif caption.name != "provenance.rst":
                assert ("not DFT" in html) is surrogate, f"{caption.name}: {html}"
                if surrogate:  # the caption names the r2SCAN teacher of the labels
                    teacher = config["data"]["default"]["teacher"]
                    named = f"teacher <em>{teacher}</em>" if caption.name == "teacher_figure.rst" else f"r2SCAN: {teacher}"
                    assert named in html, caption.name


@pytest.mark.slow
def test_report_holds_every_figure_with_caption_the_notebooks_and_provenance(smoke_run):
    """`snakemake --report` on the smoke run's outputs, read back the way the report's page does."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    report = smoke_run / "results" / "smoke" / "report.html"
    result = subprocess.run(
        [str(BIN / "snakemake"), "--report", str(report), "--configfile", "config/smoke.yaml"],
        cwd=smoke_run, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = {Path(path).name: entry for path, entry in list_results(report).items()}
    out = smoke_run / "results" / "smoke"

    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    # One per notebook (dataset_summary draws dataset_elements too), each with its plotted data.
    stems = {p.stem for p in (REPO / "notebooks").glob("*.ipynb")} | {"dataset_elements"}
    assert figures == sorted(f"{stem}.png" for stem in stems)
    assert {p.stem for p in (out / "figures").glob("*.json")} == stems
    for name in figures:
        assert name in results, f"{name} is not in the report"
        caption = results[name]["caption"]
        assert "Drawn by the notebook" in caption, name
        data = "SYNTHETIC Stillinger-Weber" if name.startswith("elements_") else "not DFT"
        assert data in caption and "results/smoke" in caption, name
        assert results[name]["data_uri"].startswith("data:image/png;"), name  # embedded, not linked
    assert not [name for name in results if name.endswith(".pdf")]  # one copy of each figure
    # The per-element diagnosis is drawn by its rule, not a notebook, and is in the report too.
    diagnosis = results["elements.png"]
    assert "Per-element diagnosis" in diagnosis["caption"] and "not DFT" in diagnosis["caption"]
    assert diagnosis["data_uri"].startswith("data:image/png;")

    notebooks = sorted(p.stem for p in (out / "notebooks").glob("*.ipynb"))
    for stem in notebooks:
        assert f"{stem}.html" in results, f"executed notebook {stem} is not in the report"
    provenance = (out / "report" / "provenance.html").read_text()
    assert "provenance.html" in results
    assert "SURROGATE" in provenance and "matches registry" in provenance
    assert "DIFFERS" not in provenance and "config/smoke.yaml" in provenance
    record = json.loads((out / "report" / "provenance.json").read_text())
    read = [row for row in record["inputs"] if row["read_by_this_run"]]
    assert {Path(row["path"]).name for row in read} == {"frames.jsonl.gz", "materials.csv"}
    assert "Surrogate labels, not DFT" in report.read_text()
    # The claims table comes first: its own page under Claims, and the front page's table.
    assert "claims.html" in results
    front = report.read_text()
    assert "What this run shows" in front and front.count("not testable at this budget") >= 2
