"""Copy a run's claims table into README.md, between its claims markers.

After a default run (``make run``, output folder ``results``):

    python tools/readme_claims.py --results results

reads ``results/claims/claims.json`` (written by rule ``claims_table``) and replaces everything
between ``<!-- claims:start -->`` and ``<!-- claims:end -->`` in README.md with the table, the
data banner and teacher, and the date and commit the results came from. Rerunning it on the
same results leaves README.md as it is. Exits 2, changing nothing, when the markers are
missing or the results hold no claims table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mlip_transfer.claims.render import readme_block, replace_block


def rewrite(*, results: Path, readme: Path) -> bool:
    """Rewrite the block of ``readme`` from ``results``/claims/claims.json.

    Returns:
        Whether the file changed.

    Raises:
        FileNotFoundError: No claims table under ``results``, or no ``readme``.
        ValueError: The markers are missing or out of order.
    """
    source = results / "claims" / "claims.json"
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist: run the workflow (rule claims_table) "
                                "with this output folder first")
    record = json.loads(source.read_text())
    text = readme.read_text()
    new = replace_block(text, readme_block(record, results=results.as_posix()))
    if new == text:
        return False
    readme.write_text(new)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rewrite the claims block of README.md (between <!-- claims:start --> and "
        "<!-- claims:end -->) from a run's claims/claims.json.",
        epilog="Example: python tools/readme_claims.py --results results",
    )
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="the run's output folder (output_dir of its config; default: "
                        "results, the default run's)")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md",
                        help="the file to rewrite (default: this checkout's README.md)")
    args = parser.parse_args(argv)
    try:
        changed = rewrite(results=args.results, readme=args.readme)
    except (FileNotFoundError, ValueError) as error:
        print(f"readme_claims: {error}", file=sys.stderr)
        return 2
    print(f"{args.readme}: {'claims block rewritten' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
