"""The claims job on a synthetic run (``claims_results.write_run``)."""

import pytest
from claims_results import ELEMENTS, SETTINGS, TRAINING, write_run


@pytest.fixture
def run_claims(tmp_path):
    """``run_claims(**write_run_options)``: the claims job on a synthetic run; its record."""
    from mlip_transfer.claims.jobs import claims_table

    def run(**options):
        files = write_run(tmp_path / "results", **options)
        out = tmp_path / "results" / "claims"
        out.mkdir(exist_ok=True)
        record = claims_table(
            **files, training=TRAINING, elements_settings=ELEMENTS, settings=SETTINGS,
            workdir=tmp_path, out_csv=out / "claims.csv", out_json=out / "claims.json",
            out_markdown=out / "claims.md", out_html=out / "claims.html",
        )
        return record, out

    return run
