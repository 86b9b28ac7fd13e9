"""Modules over 400 lines and functions over 80 lines under a folder (default ``src``).

    python tools/code_sizes.py [FOLDER]

The project keeps modules to one job (about 400 lines at most) and functions short enough to
read at once (80 lines); this lists what passes either, and the largest of each.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def sizes(root: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines, module) and (lines, module:line function) of every module and function."""
    modules, functions = [], []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        modules.append((len(text.splitlines()), str(path)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                functions.append((length, f"{path}:{node.lineno} {node.name}"))
    return modules, functions


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "src")
    modules, functions = sizes(root)
    for lines, name in sorted(modules, reverse=True):
        if lines > MAX_MODULE_LINES:
            print(f"module over {MAX_MODULE_LINES} lines: {name} ({lines})")
    for lines, name in sorted(functions, reverse=True):
        if lines > MAX_FUNCTION_LINES:
            print(f"function over {MAX_FUNCTION_LINES} lines: {name} ({lines})")
    print(f"largest module: {max(modules)[1]} ({max(modules)[0]} lines)")
    print(f"longest function: {max(functions)[1]} ({max(functions)[0]} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
