"""The claims_table job end to end on a synthetic run: its four files, and the report's front
page that embeds its table."""

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from claims_results import M1, TRAINED_FLAG, table1_frame

from mlip_transfer.claims.jobs import CSV_COLUMNS
from mlip_transfer.claims.render import FRAGMENT_END, FRAGMENT_START
from mlip_transfer.claims.verdicts import NOT_TESTABLE, REPRODUCED, VERDICTS

REPO = Path(__file__).resolve().parents[2]
CLAIM_IDS = [
    "rho", "importance_with_corrections", "importance_without_corrections", "m4_beats_m1",
    "m2_m3_negative_transfer", "gradient_ratio", "m4_best_decomposition", "m4_best_formation",
    "gga_underestimates_density", "m4_lowest_density_error", "scaling_slope_energy",
    "scaling_slope_force", "transfer_beats_10x_scratch", "ge_data_efficiency", "ge_stability",
    "ge_temperature", "ge_structure",
]


def test_every_claim_with_its_numbers_sources_data_and_teacher(run_claims):
    record, out = run_claims()
    assert [row["id"] for row in record["claims"]] == CLAIM_IDS
    assert {row["verdict"] for row in record["claims"]} == {REPRODUCED}
    table = pd.read_csv(out / "claims.csv")
    assert list(table.columns) == list(CSV_COLUMNS) and list(table["id"]) == CLAIM_IDS
    written = json.loads((out / "claims.json").read_text())
    assert written["claims"] == json.loads(json.dumps(record["claims"]))
    assert "SURROGATE" in written["data_banner"] and "diep" in written["teacher"]
    assert written["date"] == written["generated_at"][:10] and "commit" in written["git"]
    by_id = {row["id"]: row for row in written["claims"]}
    assert "Stillinger-Weber" in by_id["ge_stability"]["teacher"]
    assert by_id["m4_beats_m1"]["sources"][0].endswith("evaluation/table1.csv")
    assert "r2SCAN: diep" in by_id["rho"]["teacher"] and "SURROGATE" in by_id["rho"]["data"]
    markdown = (out / "claims.md").read_text()
    assert markdown.count("| **reproduced**") == len(CLAIM_IDS) and "not DFT" in markdown
    page = (out / "claims.html").read_text()
    assert page.count(FRAGMENT_START) == page.count(FRAGMENT_END) == 1
    assert page.count("<tr><td>") == len(CLAIM_IDS)


def test_flagged_and_missing_inputs_give_not_testable_rows_not_a_failure(run_claims):
    flagged = table1_frame(**{M1: {"flags": TRAINED_FLAG}})
    record, out = run_claims(table1=flagged, skip=("density_summary", "density_all", "scaling_fits"))
    by_id = {row["id"]: row for row in record["claims"]}
    for claim in ("m4_beats_m1", "m2_m3_negative_transfer", "m4_best_decomposition"):
        assert by_id[claim]["verdict"] == NOT_TESTABLE and by_id[claim]["flags"], claim
    for claim in ("gga_underestimates_density", "scaling_slope_energy", "transfer_beats_10x_scratch"):
        assert by_id[claim]["verdict"] == NOT_TESTABLE and by_id[claim]["needs"], claim
    assert all(row["verdict"] == NOT_TESTABLE for row in record["claims"] if row["flags"])
    assert all(row["verdict"] in VERDICTS for row in record["claims"])
    table = pd.read_csv(out / "claims.csv", keep_default_na=False)
    assert "M1: not trained at this budget" in table.set_index("id").at["m4_beats_m1", "flags"]


def front_page(files):
    """workflow/report/workflow.rst rendered as `snakemake --report` renders it."""
    import yaml
    from docutils.core import publish_parts
    from jinja2 import Environment

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    text = (REPO / "workflow" / "report" / "workflow.rst").read_text()
    rst = Environment(trim_blocks=True, lstrip_blocks=True).from_string(text).render(
        snakemake=SimpleNamespace(config=config), categories={}, files=files)
    return publish_parts(rst, writer="html", settings_overrides={"report_level": 2})["html_body"]


def test_the_report_front_page_opens_with_the_claims_table(run_claims):
    _, out = run_claims()
    page = front_page([SimpleNamespace(target="claims.html", path=out / "claims.html")])
    assert "system-message" not in page
    assert page.count("<tr><td>") == len(CLAIM_IDS) and "What this run shows" in page
    assert page.index("What this run shows") < page.index("This report belongs")
    assert "holds no claims table" in front_page([])
