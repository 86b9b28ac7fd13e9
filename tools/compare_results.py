"""Compare the machine-readable outputs (CSV and JSON) of two workflow runs.

For a refactoring that must not change results: run the same config before and after, then

    python tools/compare_results.py BEFORE/results/smoke AFTER/results/smoke

Every ``*.csv`` and ``*.json`` under either folder is compared. Values that measure the run
rather than the science (wall times, throughput, timestamps, package versions and paths of the
run's provenance) are left out, by key or column name; everything else must be equal, numbers to
within ``--rtol`` (default 0: bit for bit). Exits 1 and lists each difference when any is found.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

# Keys and columns that record how long or where the run went, not what it computed.
VOLATILE = re.compile(
    r"(^wall_s$|_time_s|_s_this_run$|structures_per_s|^recorded_at$|^seconds$|^elapsed)"
)
# Whole files that describe the run's machine and software (checked by their own tests).
VOLATILE_FILES = {"report/provenance.json"}


def _equal(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            x, y = float(a), float(b)
        except (TypeError, ValueError):
            return a == b
        if math.isnan(x) and math.isnan(y):
            return True
        return x == y or abs(x - y) <= rtol * max(abs(x), abs(y))
    return a == b


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def diff_json(a: Any, b: Any, where: str, rtol: float) -> list[str]:
    """Differences between two parsed JSON values, volatile keys skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if VOLATILE.search(str(key)):
                continue
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key not in a else 'before'}")
            else:
                out += diff_json(a[key], b[key], f"{where}.{key}", rtol)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        pairs = enumerate(zip(a, b))
        return [d for i, (x, y) in pairs for d in diff_json(x, y, f"{where}[{i}]", rtol)]
    return [] if _equal(a, b, rtol) else [f"{where}: {a!r} vs {b!r}"]


def diff_csv(a: Path, b: Path, where: str, rtol: float) -> list[str]:
    """Differences between two CSV files, volatile columns skipped."""
    rows_a = list(csv.reader(a.open(newline="")))
    rows_b = list(csv.reader(b.open(newline="")))
    head_a, head_b = (rows_a or [[]])[0], (rows_b or [[]])[0]
    if head_a != head_b:
        return [f"{where}: columns {head_a} vs {head_b}"]
    if len(rows_a) != len(rows_b):
        return [f"{where}: {len(rows_a) - 1} vs {len(rows_b) - 1} rows"]
    keep = [i for i, col in enumerate(head_a) if not VOLATILE.search(col)]
    out = []
    for n, (ra, rb) in enumerate(zip(rows_a[1:], rows_b[1:])):
        for i in keep:
            if not _equal(_number(ra[i]), _number(rb[i]), rtol):
                out.append(f"{where} row {n} {head_a[i]}: {ra[i]!r} vs {rb[i]!r}")
    return out


def compare(before: Path, after: Path, *, rtol: float = 0.0) -> list[str]:
    """Every difference between the CSV/JSON outputs of two result folders."""
    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.suffix in {".csv", ".json"} and p.is_file()
        }

    names_a, names_b = files(before), files(after)
    out = [f"{n}: only before" for n in sorted(names_a - names_b)]
    out += [f"{n}: only after" for n in sorted(names_b - names_a)]
    for name in sorted((names_a & names_b) - VOLATILE_FILES):
        a, b = before / name, after / name
        if name.endswith(".json"):
            out += diff_json(json.loads(a.read_text()), json.loads(b.read_text()), name, rtol)
        else:
            out += diff_csv(a, b, name, rtol)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="results folder of the first run")
    parser.add_argument("after", type=Path, help="results folder of the second run")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numbers")
    args = parser.parse_args(argv)
    differences = compare(args.before, args.after, rtol=args.rtol)
    n_files = len({p for p in args.before.rglob("*") if p.suffix in {".csv", ".json"}})
    for line in differences[:200]:
        print(line)
    print(f"{n_files} files compared, {len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
