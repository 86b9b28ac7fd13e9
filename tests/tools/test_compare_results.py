"""tools/compare_results.py: the check that a refactoring left the smoke run's results alone."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "compare_results.py"
spec = importlib.util.spec_from_file_location("compare_results", SCRIPT)
compare_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_results)


def _run(root: Path, *, mae: float, wall_s: float, extra: bool = False) -> Path:
    (root / "training").mkdir(parents=True)
    (root / "training" / "history.csv").write_text(f"epoch,energy_mae,wall_s\n0,{mae},{wall_s}\n")
    summary = {"n_train": 10, "train_time_s": wall_s, "val_after": {"energy_mae": mae}}
    (root / "training" / "summary.json").write_text(json.dumps(summary))
    if extra:
        (root / "new.json").write_text("{}")
    return root


def test_wall_times_are_ignored_and_results_are_not(tmp_path, capsys):
    before = _run(tmp_path / "a", mae=0.5, wall_s=1.0)
    assert compare_results.compare(before, _run(tmp_path / "b", mae=0.5, wall_s=9.0)) == []
    changed = _run(tmp_path / "c", mae=0.5000001, wall_s=1.0, extra=True)
    differences = compare_results.compare(before, changed)
    assert "new.json: only after" in differences
    assert any(d.startswith("training/history.csv row 0 energy_mae") for d in differences)
    assert any(d.startswith("training/summary.json.val_after.energy_mae") for d in differences)
    assert compare_results.main([str(before), str(changed)]) == 1
    assert compare_results.main([str(before), str(changed), "--rtol", "1e-3"]) == 1  # new.json
    assert "differences" in capsys.readouterr().out
