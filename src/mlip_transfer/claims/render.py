"""The claims table as markdown, as an HTML page for the report, and as the README's block.

The HTML page marks its table with :data:`FRAGMENT_START` / :data:`FRAGMENT_END`, so the report's
front page (``workflow/report/workflow.rst``) can show the same table without a second copy.
The README block sits between :data:`README_START` and :data:`README_END`.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from mlip_transfer.claims.verdicts import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, VERDICTS

FRAGMENT_START, FRAGMENT_END = "<!-- claims-table:start -->", "<!-- claims-table:end -->"
README_START, README_END = "<!-- claims:start -->", "<!-- claims:end -->"
VERDICT_NOTE = (
    f"**{REPRODUCED}** / **{NOT_REPRODUCED}**: the run compared what the claim compares, every "
    "input unflagged, outside the spread (seeds, bootstrap or binomial intervals; with one seed, "
    f"differences within the stated tolerance count as none). **{NOT_TESTABLE}**: a flagged "
    "input (training or relaxation did not change it), a difference inside the spread, or an "
    "input this run did not make; the row says what it would need."
)
_COLOURS = {REPRODUCED: "#e3f4e1", NOT_REPRODUCED: "#fde2e1", NOT_TESTABLE: "#fff4d6"}


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict_cell(row: Mapping[str, Any]) -> str:
    cell = f"**{row['verdict']}**"
    if row.get("needs"):
        cell += f": needs {row['needs']}"
    return cell


def _origins(record: Mapping[str, Any]) -> list[str]:
    return [f"**{o['data']}.** Teacher: {o['teacher']}. {o.get('caveat', '')}".strip()
            for o in record["origins"].values()]


def _provenance_line(record: Mapping[str, Any]) -> str:
    git = record.get("git") or {}
    if not git.get("commit"):
        return (f"Results of a workflow outside a git checkout ({git.get('note', 'no commit')}), "
                f"collected {record['date']} (UTC).")
    modified = " (with tracked files modified)" if git.get("modified_files") else ""
    return f"Results of commit `{git['commit']}`{modified}, collected {record['date']} (UTC)."


def counts_line(claims: Sequence[Mapping[str, Any]]) -> str:
    counts = Counter(row["verdict"] for row in claims)
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)


def claims_markdown(record: Mapping[str, Any]) -> str:
    """``claims.md``: the banner of each data source, the verdicts' meaning, and every row."""
    lines = ["# The studies' claims, as this run shows them", "", *_origins(record), "",
             _provenance_line(record) + f" {counts_line(record['claims'])}.", "", VERDICT_NOTE, "",
             "| # | claim | paper | this run | verdict | from |", "|---|---|---|---|---|---|"]
    for k, row in enumerate(record["claims"], start=1):
        flags = f" Flags: {'; '.join(row['flags'])}." if row.get("flags") else ""
        cells = [str(k), row["claim"], row["paper"], row["this_run"] + flags, _verdict_cell(row),
                 ", ".join(f"`{s}`" for s in row["sources"])]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _html_rows(claims: Sequence[Mapping[str, Any]]) -> str:
    cells = []
    for k, row in enumerate(claims, start=1):
        needs = f"<br>needs {html.escape(row['needs'])}" if row.get("needs") else ""
        flags = (f"<br><i>flags: {html.escape('; '.join(row['flags']))}</i>"
                 if row.get("flags") else "")
        colour = _COLOURS[row["verdict"]]
        cells.append(
            f"<tr><td>{k}</td><td>{html.escape(row['claim'])}</td><td>{html.escape(row['paper'])}"
            f"</td><td>{html.escape(row['this_run'])}{flags}</td><td style=\"background:{colour}\">"
            f"<b>{html.escape(row['verdict'])}</b>{needs}</td><td>{html.escape(row['teacher'])}"
            f"</td><td><code>{'</code><br><code>'.join(map(html.escape, row['sources']))}</code>"
            "</td></tr>"
        )
    return "\n".join(cells)


def claims_fragment(record: Mapping[str, Any]) -> str:
    """The banner and the table as an HTML fragment (inline styles: it also goes into the
    report's front page)."""
    banners = "".join(
        f'<p style="background:#fde2e1;border-left:6px solid #c0392b;padding:0.5em">'
        f"<b>{html.escape(o['data'])}</b>. Teacher: {html.escape(o['teacher'])}. "
        f"{html.escape(o.get('caveat', ''))}</p>"
        for o in record["origins"].values()
    )
    git = html.escape(_provenance_line(record).replace("`", ""))
    head = "".join(f"<th>{h}</th>" for h in ("#", "claim", "paper", "this run", "verdict",
                                             "data from", "computed from"))
    style = "border-collapse:collapse;font-size:0.85em"
    return (f"{FRAGMENT_START}\n{banners}<p>{git} {html.escape(counts_line(record['claims']))}.</p>"
            f'\n<table border="1" cellpadding="4" style="{style}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{_html_rows(record['claims'])}\n</tbody></table>\n{FRAGMENT_END}")


def claims_html(record: Mapping[str, Any]) -> str:
    """``claims.html``: one self-contained page (the report's *Claims* entry)."""
    note = html.escape(VERDICT_NOTE.replace("**", ""))
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Claims</title>'
            "<style>body{font-family:sans-serif;margin:1.5em;max-width:90em}td,th{vertical-align:"
            "top;text-align:left}</style></head><body>\n<h1>The studies' claims, as this run shows "
            f"them</h1>\n<p>{note}</p>\n{claims_fragment(record)}\n</body></html>\n")


def readme_block(record: Mapping[str, Any], *, results: str) -> str:
    """The README's block: where and when the numbers came from, and a short table."""
    lines = [README_START,
             f"Generated by `tools/readme_claims.py` from `{results}/claims/claims.json`; "
             + _provenance_line(record) + f" {counts_line(record['claims'])}.", "",
             *_origins(record), "",
             "| claim | paper | this run | verdict |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_md(c) for c in (row["claim"], row["paper"], row["this_run"],
                                                 _verdict_cell(row))) + " |"
              for row in record["claims"]]
    lines += ["", f"The verdicts: {VERDICT_NOTE}", README_END]
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """``text`` with everything from :data:`README_START` to :data:`README_END` (markers
    included) replaced by ``block``.

    Raises:
        ValueError: The markers are missing, repeated or out of order.
    """
    starts, ends = text.count(README_START), text.count(README_END)
    if starts != 1 or ends != 1:
        raise ValueError(f"expected one {README_START!r} and one {README_END!r} marker, found "
                         f"{starts} and {ends}: add them where the claims table belongs")
    start, end = text.index(README_START), text.index(README_END)
    if end < start:
        raise ValueError(f"{README_END!r} comes before {README_START!r}")
    return text[:start] + block + text[end + len(README_END):]
