# Helpers for the browsable report (rules in report.smk): a rule that draws a figure declares its
# files with `report_figures(stem, caption, subcategory)`, which marks the browsable one for
# `snakemake --report` with its caption (workflow/report/*.rst).

BROWSABLE_FORMATS = ("png", "svg")


def report_figures(stem, caption, subcategory):
    """The files of figure `stem` (may hold {wildcards}), one per configured format.

    The first browsable format (PNG or SVG, else the first) goes into the report under
    Figures/`subcategory` with `caption` (a path relative to workflow/rules); the others stay
    beside it in the figures folder, as does `stem`.json, the figure's plotted data.
    """
    files = [f"{FIGURES}/{stem}.{fmt}" for fmt in FORMATS]
    shown = next(
        (f for f in files if f.rsplit(".", 1)[1] in BROWSABLE_FORMATS), files[0]
    )

    def in_report(path):
        return report(
            path,
            caption=caption,
            category="Figures",
            subcategory=subcategory,
            labels={"figure": stem},
        )

    return [in_report(path) if path == shown else path for path in files] + [
        f"{FIGURES}/{stem}.json"
    ]


def executed_notebooks(targets):
    """The executed notebooks among `targets`."""
    return [t for t in targets if t.endswith(".ipynb")]


def notebook_pages(targets):
    """The HTML page of each executed notebook among `targets` (rule notebook_html makes all
    of them in one job)."""
    return [t[: -len(".ipynb")] + ".html" for t in executed_notebooks(targets)]


def report_targets(targets):
    """What the report needs beside `targets`: HTML copies of their notebooks, the provenance."""
    return notebook_pages(targets) + [f"{OUT}/report/provenance.html"]
