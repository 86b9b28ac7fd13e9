"""Look at a Snakemake report the way a reader does: headless Chromium screenshots.

    python tools/report_screenshot.py results/report.html /tmp/shots            # front page
    python tools/report_screenshot.py results/report.html /tmp/shots --show fig2b_referenced_energies.png
    python tools/report_screenshot.py results/report.html /tmp/shots --category Figures

``--show NAME`` opens the result whose file name is NAME (figure with its caption, notebook,
provenance page) before the screenshot, as a click in the report's menu would; ``--category``
opens a category's list (with a subcategory: ``Figures/Dataset``). The report is a
single-page app without links to its views, so a copy of it with one extra script line is what
Chromium opens; the report itself is not changed. Needs Debian's ``chromium`` package
(``apt-get install chromium``).

``list_results(report)`` returns the report's entries (file name, category, caption) for tests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MARKER = "var results = "


def list_results(report: str | Path) -> dict[str, dict]:
    """The report's results: path -> {name, caption (HTML), labels, data_uri, ...}."""
    text = Path(report).read_text()
    start = text.index(MARKER, text.index('<script id="results">')) + len(MARKER)
    return json.JSONDecoder().raw_decode(text, start)[0]


def _open_after_load(html: str, script: str) -> str:
    head, _, tail = html.rpartition("</body>")  # the page's own, not one inside its scripts
    return head + f"<script>setTimeout(function(){{{script}}},300);</script></body>" + tail


def screenshot(
    report: Path, out: Path, show: str | None = None, size: str = "1600,1000", category: str | None = None
) -> Path:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    report = Path(report).resolve()
    html = report.read_text()
    name = "front"
    if show:
        matches = [path for path in list_results(report) if Path(path).name == show]
        if not matches:
            sys.exit(f"{show} is not in {report}")
        kind = {"png": "img", "svg": "img", "jpg": "img", "html": "html", "pdf": "pdf"}
        content = kind.get(show.rsplit(".", 1)[-1], "html")
        html = _open_after_load(
            html,
            "var p=%s;app.setView({navbarMode:'resultinfo',resultPath:p,content:'%s',"
            "contentPath:results[p].data_uri});" % (json.dumps(matches[0]), content),
        )
        name = show.rsplit(".", 1)[0]
    elif category:
        name_, _, sub = category.partition("/")
        view = (
            "app.setView({navbarMode:'subcategory',category:%s,subcategory:%s});"
            % (json.dumps(name_), json.dumps(sub))
            if sub
            else "app.showCategory(%s);" % json.dumps(name_)
        )
        html = _open_after_load(html, view)
        name = "category_" + category.replace("/", "_").replace(" ", "_")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"report_{name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html)
        subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--virtual-time-budget=10000", f"--window-size={size}",
                f"--screenshot={target}", page.as_uri(),
            ],
            check=True, capture_output=True, timeout=120,
        )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path, help="folder for the PNG screenshots")
    parser.add_argument("--show", action="append", default=[], help="file name of a result to open")
    parser.add_argument("--category", action="append", default=[], help="category to open")
    parser.add_argument("--size", default="1600,1000", help="window size, WIDTH,HEIGHT")
    args = parser.parse_args()
    for show in args.show:
        print(screenshot(args.report, args.out, show, args.size))
    for category in args.category:
        print(screenshot(args.report, args.out, None, args.size, category))
    if not args.show and not args.category:
        print(screenshot(args.report, args.out, None, args.size))


if __name__ == "__main__":
    main()
