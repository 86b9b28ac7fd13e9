"""tools/readme_claims.py: the README's claims block rewritten from a run's claims.json."""

import importlib.util
from pathlib import Path

import pytest

from mlip_transfer.claims.render import README_END, README_START, readme_block, replace_block

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "readme_claims.py"
spec = importlib.util.spec_from_file_location("readme_claims", SCRIPT)
readme_claims = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_claims)

README = f"# Title\n\nIntro.\n\n{README_START}\nnot yet generated from a default run\n{README_END}\n\n## Next\n"


def test_the_block_is_rewritten_from_the_run_and_a_rerun_changes_nothing(run_claims, tmp_path, capsys):
    record, out = run_claims()
    readme = tmp_path / "README.md"
    readme.write_text(README)
    results = out.parent
    assert readme_claims.main(["--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nIntro.\n\n" + README_START) and text.endswith(README_END + "\n\n## Next\n")
    assert "not yet generated" not in text
    block = text[text.index(README_START):text.index(README_END)]
    assert f"collected {record['date']}" in block and "outside a git checkout" in block
    assert f"{results.as_posix()}/claims/claims.json" in block
    assert block.count("| **reproduced**") == len(record["claims"]) and "SURROGATE" in block
    assert "rewritten" in capsys.readouterr().out
    assert readme_claims.main(["--results", str(results), "--readme", str(readme)]) == 0
    assert readme.read_text() == text and "already up to date" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["# no markers\n", f"{README_END}\n{README_START}\n",
                                  f"{README_START}\n{README_START}\n{README_END}\n"],
                         ids=["missing", "out of order", "twice"])
def test_it_fails_clearly_and_changes_nothing_without_one_pair_of_markers(run_claims, tmp_path, text, capsys):
    _, out = run_claims()
    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert readme_claims.main(["--results", str(out.parent), "--readme", str(readme)]) == 2
    assert README_START in capsys.readouterr().err and readme.read_text() == text


def test_it_fails_clearly_without_a_claims_table(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert readme_claims.main(["--results", str(tmp_path / "nothing"), "--readme", str(readme)]) == 2
    assert "claims.json does not exist" in capsys.readouterr().err and readme.read_text() == README


def test_the_repository_readme_holds_the_block_once():
    text = (REPO / "README.md").read_text()
    assert replace_block(text, "BLOCK").count("BLOCK") == 1


def test_the_block_names_the_commit_the_results_came_from(run_claims):
    record, _ = run_claims()
    record["git"] = {"commit": "0123abc", "modified_files": True}
    block = readme_block(record, results="results")
    assert "commit `0123abc` (with tracked files modified)" in block
    assert block.startswith(README_START) and block.endswith(README_END)
