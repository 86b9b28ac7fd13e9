"""The method ranking per teacher: ranks, Kendall's τ, and the paper's orderings under each teacher."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlip_transfer.core.errors import DataError
from mlip_transfer.teachers.ranking import compare, paper_orderings, rank_teachers, read_run

MODELS = {"1_scratch": "method1", "2_trainable_gga_atomref": "method2",
          "3_frozen_gga_atomref": "method3", "4_refit_atomref": "method4"}


def _run(tmp_path, name, teacher, energy, force, *, flags=None):
    run = tmp_path / name
    (run / "evaluation").mkdir(parents=True)
    (run / "data").mkdir()
    rows = [{"model": m, "paper_row": p, "stage": "trained", "energy_mae_mev": e,
             "force_mae_mev": f, "flags": (flags or {}).get(m, "")}
            for (m, p), e, f in zip(MODELS.items(), energy, force, strict=True)]
    rows.append({"model": "1_scratch_step0", "paper_row": "", "stage": "step 0",
                 "energy_mae_mev": 1.0, "force_mae_mev": 1.0, "flags": ""})
    pd.DataFrame(rows).to_csv(run / "evaluation" / "table1.csv", index=False)
    (run / "data" / "provenance.json").write_text(
        json.dumps({"name": "surrogate-default", "labels": f"SURROGATE labels: r2SCAN from {teacher}; not DFT",
                    "parse": {"settings": {"teacher": teacher}}}))
    return run


def test_paper_orderings_come_from_table1():
    orderings = paper_orderings()
    assert ("energy_mae_mev", "method4", "method1") in orderings
    assert ("force_mae_mev", "method4", "method1") in orderings
    # decomposition energy: all four methods in the paper, so all six pairs.
    assert sum(o[0] == "decomposition_energy_mae_mev" for o in orderings) == 6
    assert ("decomposition_energy_mae_mev", "method3", "method2") in orderings


def test_same_order_gives_tau_one_and_every_ordering_holds(tmp_path):
    a = _run(tmp_path, "a", "diep", [30, 50, 50.5, 20], [45, 60, 61, 40])
    b = _run(tmp_path, "b", "chgnet-r2scan", [25, 45, 46, 10], [44, 55, 57, 39])
    result = compare([read_run(a), read_run(b)])
    taus = {t["metric"]: t["tau"] for t in result["tau"]}
    assert taus["energy_mae_mev"] == pytest.approx(1.0)
    energy = next(o for o in result["orderings"] if o["paper"] == "M4 < M1 on energy")
    assert energy["holds"] == {"diep": True, "chgnet-r2scan": True}
    assert "hold under every teacher: M4 < M1 on energy, M4 < M1 on force" in result["sentence"]
    assert "1_scratch_step0" not in result["models"]  # trained rows only


def test_reversed_order_splits_the_orderings_by_teacher(tmp_path):
    a = _run(tmp_path, "a", "diep", [30, 50, 60, 20], [45, 60, 61, 40])
    b = _run(tmp_path, "b", "chgnet-r2scan", [40, 30, 20, 50], [40, 61, 60, 45],
             flags={"4_refit_atomref": "not trained at this budget"})
    result = compare([read_run(a), read_run(b)])
    taus = {t["metric"]: t["tau"] for t in result["tau"]}
    assert taus["energy_mae_mev"] == pytest.approx(-1.0)
    assert "M4 < M1 on energy (holds under diep)" in result["sentence"]
    assert "Flagged rows" in result["sentence"] and "chgnet-r2scan 1" in result["sentence"]


def test_writes_csv_json_and_markdown(tmp_path):
    a = _run(tmp_path, "a", "diep", [30, 50, 60, 20], [45, 60, 61, 40])
    b = _run(tmp_path, "b", "chgnet-r2scan", [25, 45, 46, 10], [44, 55, 57, 39])
    rank_teachers([a, b], out_dir=tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "method_ranking.csv")
    best = table[(table.metric == "energy_mae_mev") & (table["rank"] == 1)]
    assert set(best.model) == {"4_refit_atomref"}
    saved = json.loads((tmp_path / "out" / "method_ranking.json").read_text())
    assert saved["teachers"] == ["diep", "chgnet-r2scan"]
    text = (tmp_path / "out" / "method_ranking.md").read_text()
    assert "| M4 < M1 on energy | holds | holds |" in text
    # Each teacher's data banner heads the table: surrogate labels are never read as DFT.
    assert "**Data (diep):** SURROGATE labels: r2SCAN from diep; not DFT" in text
    assert saved["data"]["chgnet-r2scan"].endswith("not DFT")


def test_one_teacher_or_missing_run_is_a_clear_error(tmp_path):
    a = _run(tmp_path, "a", "diep", [30, 50, 60, 20], [45, 60, 61, 40])
    b = _run(tmp_path, "b", "diep", [30, 50, 60, 20], [45, 60, 61, 40])
    with pytest.raises(DataError, match="at least two teachers"):
        compare([read_run(a), read_run(b)])
    with pytest.raises(DataError, match="table1.csv"):
        read_run(tmp_path / "nowhere")


def test_command_prints_the_sentence_and_names_a_missing_run(tmp_path, capsys):
    from mlip_transfer.cli import main

    a = _run(tmp_path, "a", "diep", [30, 50, 60, 20], [45, 60, 61, 40])
    b = _run(tmp_path, "b", "chgnet-r2scan", [25, 45, 46, 10], [44, 55, 57, 39])
    assert main(["rank-teachers", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    assert "hold under every teacher" in capsys.readouterr().out
    assert main(["rank-teachers", str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "o2")]) == 2
    assert "missing" in capsys.readouterr().err


def test_values_within_the_tolerance_tie_instead_of_ordering(tmp_path):
    # M4 and M1 on energy 0.3 % apart under one teacher: a tie there, an ordering under the other.
    a = _run(tmp_path, "a", "diep", [30, 50, 60, 29.9], [45, 60, 61, 40])
    b = _run(tmp_path, "b", "chgnet-r2scan", [30, 50, 60, 20], [45, 60, 61, 40])
    result = rank_teachers([a, b], out_dir=tmp_path / "out", tolerance=0.01)
    energy = next(o for o in result["orderings"] if o["paper"] == "M4 < M1 on energy")
    assert energy["tie"] == {"diep": True, "chgnet-r2scan": False}
    assert energy["holds"] == {"diep": False, "chgnet-r2scan": True}
    assert "within 1 % (a tie, not an ordering): M4 < M1 on energy under diep" in result["sentence"]
    assert "| M4 < M1 on energy | tie | holds |" in (tmp_path / "out" / "method_ranking.md").read_text()
    # With no tolerance the 0.3 % is an ordering again.
    strict = compare([read_run(a), read_run(b)], tolerance=0.0)
    assert next(o for o in strict["orderings"] if o["paper"] == "M4 < M1 on energy")["holds"]["diep"]
