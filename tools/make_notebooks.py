"""Write the committed notebooks (no outputs) from the cell sources below.

Notebooks are generated so they stay small, reviewable and free of outputs; edit the cells here
and rerun `python tools/make_notebooks.py`. Executed copies are written by the workflow.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

PREAMBLE = """\
import json
from pathlib import Path

import matplotlib
import pandas as pd
from IPython.display import Markdown, display

from mlip_transfer.core.provenance import DataSource
from mlip_transfer.plots.style import save_figure
"""

DATASET_SUMMARY = [
    new_markdown_cell(
        "# Dataset summary\n\n"
        "Which elements the dataset holds, how many frames each material contributes, and the "
        "energies per functional. GGA/GGA+U and r2SCAN total energies sit tens of eV/atom apart, "
        "element by element: the energy-scale problem the AtomRef refit of the paper solves.\n\n"
        "Run by the workflow (`rule dataset_summary`) with papermill, or by hand: the parameters "
        "cell below points at the default run's outputs."
    ),
    new_code_cell(
        'data_dir = "results/data"\nfigure_dir = "results/figures"\nformats = "png,pdf"\ndpi = 150',
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell(
        PREAMBLE
        + """from mlip_transfer.plots.dataset import element_counts, plot_dataset_summary, plot_element_table
from mlip_transfer.data.summary import dataset_statistics, load_dataset_tables

data_dir, figure_dir = Path(data_dir), Path(figure_dir)
formats = [fmt for fmt in formats.split(",") if fmt]
source = DataSource.read(data_dir)
display(Markdown(f"**{source.banner}.** {source.description}\\n\\n" + (f"*Caveat:* {source.caveat}" if source.caveat else "")))"""
    ),
    new_markdown_cell("## Sizes"),
    new_code_cell(
        """frames, materials = load_dataset_tables(data_dir)
stats = dataset_statistics(frames, materials)
pd.Series({k: v for k, v in stats.items() if k != "element_symbols"}, name="value").to_frame()"""
    ),
    new_markdown_cell(
        "## What parsing kept and dropped\n\nEvery dropped record is listed with its reason in "
        "`dropped.csv` beside the data."
    ),
    new_code_cell(
        """report = json.loads((data_dir / "parse_report.json").read_text())
display(pd.json_normalize(report, sep=" / ").T.rename(columns={0: "count"}))"""
    ),
    new_markdown_cell("## Elements"),
    new_code_cell(
        """fig = plot_element_table(element_counts(frames), source)
save_figure(fig, figure_dir / "dataset_elements", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell(
        "## Frames and energies\n\nPanel b shows the raw total energies per atom: the two "
        "functionals' distributions are offset by the element-dependent reference shift."
    ),
    new_code_cell(
        """fig = plot_dataset_summary(frames, materials, source)
save_figure(fig, figure_dir / "dataset_summary", formats, dpi=dpi)
fig"""
    ),
]


# --- Energy-scale figures (paper Figs. 1a-d, 2a-b) -------------------------------------------
# Inputs come from <output>/energy_scale/ (written by the energy_scale rules) and the dataset.


ENERGY_SCALE_DIRS = {"data_dir": "results/data", "energy_dir": "results/energy_scale"}
TRANSFER_DIRS = {
    "data_dir": "results/data",
    "training_dir": "results/training",
    "evaluation_dir": "results/evaluation",
}


def _parameters(dirs: dict[str, str] = ENERGY_SCALE_DIRS, **extra: object) -> object:
    """The papermill parameters cell: default paths of the default run, plus extras."""
    lines = [
        *(f'{name} = "{path}"' for name, path in dirs.items()),
        'figure_dir = "results/figures"',
        'formats = "png,pdf"',
        "dpi = 150",
        *(f"{key} = {value!r}" for key, value in extra.items()),
    ]
    return new_code_cell("\n".join(lines), metadata={"tags": ["parameters"]})


def _setup(imports: str) -> object:
    """Imports, paths and the data-source banner with its caveat."""
    return new_code_cell(
        PREAMBLE
        + imports
        + """
data_dir, energy_dir, figure_dir = Path(data_dir), Path(energy_dir), Path(figure_dir)
formats = [fmt for fmt in formats.split(",") if fmt]
source = DataSource.read(data_dir)
display(Markdown(f"**{source.banner}.** {source.description}\\n\\n" + (f"*Caveat:* {source.caveat}" if source.caveat else "")))"""
    )


def _intro(title: str, body: str) -> object:
    return new_markdown_cell(
        f"# {title}\n\n{body}\n\nRun by the workflow with papermill, or by hand: the parameters "
        "cell below points at the default run's outputs."
    )


FIG1A = [
    _intro(
        "Fig. 1a: element occurrence in the r2SCAN structures",
        "A periodic table coloured by how many structures (frames) of the target functional "
        "contain each element, on a log colour scale; elements in at most `element_cutoff` "
        "structures share one grey, elements absent are light grey. The paper: MP-r2SCAN, "
        "238,247 structures of 34,927 materials covering 88 elements, cutoff 1,000.",
    ),
    _parameters(element_cutoff=1, functional="r2scan"),
    _setup(
        """from mlip_transfer.data.dataset import FRAMES_FILE
from mlip_transfer.plots.energy_scale import plot_element_occurrence, structure_element_counts
from mlip_transfer.data.summary import frame_table
"""
    ),
    new_code_cell(
        """frames = frame_table(data_dir / FRAMES_FILE)
target = frames[frames["functional"] == functional]
counts = structure_element_counts(target, functional)
fig = plot_element_occurrence(counts, cutoff=element_cutoff, source=source, functional=functional, n_structures=len(target))
save_figure(fig, figure_dir / "fig1a_element_occurrence", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Key numbers"),
    new_code_cell(
        """rare = sorted((el for el, n in counts.items() if n <= element_cutoff), key=lambda el: -counts[el])
pd.DataFrame(
    {
        "this data": [len(target), target["material_id"].nunique(), len(counts), len(rare)],
        "paper (MP-r2SCAN)": [238_247, 34_927, 88, "(cutoff 1000)"],
    },
    index=["structures", "materials", "elements present", f"elements in <= {element_cutoff} structures"],
    dtype=object,
)"""
    ),
    new_code_cell(
        """pd.Series(dict(counts.most_common()), name="structures containing the element").head(15).to_frame()"""
    ),
]

FIG1B = [
    _intro(
        "Fig. 1b: relaxed energies, GGA/GGA+U vs r2SCAN",
        "Relaxed total energy per atom of each material, r2SCAN (x) against GGA/GGA+U "
        "(MP2020-corrected, y), with the marginal distributions. The paper finds the two on "
        "different scales (shifts of 0-70 eV/atom, element dependent, against a potential's "
        "accuracy of about 30 meV/atom): Pearson ρ = 0.0917 over all r2SCAN materials.",
    ),
    _parameters(),
    _setup("from mlip_transfer.plots.energy_scale import plot_relaxed_energies\n"),
    new_code_cell(
        """referenced = pd.read_csv(energy_dir / "referenced_energies.csv")
correlation = json.loads((energy_dir / "correlation.json").read_text())
fig = plot_relaxed_energies(referenced, source=source)
save_figure(fig, figure_dir / "fig1b_relaxed_energies", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Key numbers"),
    new_code_cell(
        """shift = referenced["raw_r2scan"] - referenced["raw_gga"]
raw = correlation["refit"]["raw"]
pd.Series(
    {
        "materials": len(referenced),
        "Pearson rho, raw (this data)": round(raw["rho"], 4),
        "95% CI": f"[{raw['low']:.4f}, {raw['high']:.4f}]",
        "Pearson rho, raw (paper)": correlation["paper"]["raw"],
        "r2SCAN - GGA, median (eV/atom)": round(shift.median(), 3),
        "r2SCAN - GGA, min (eV/atom)": round(shift.min(), 3),
        "r2SCAN - GGA, max (eV/atom)": round(shift.max(), 3),
        "paper: |shift| range (eV/atom)": "0-70",
    },
    name="value",
).to_frame()"""
    ),
]

FIG1CD = [
    _intro(
        "Figs. 1c/1d: which elements drive the formation-energy difference",
        "A decision tree is fitted to the GGA/GGA+U − r2SCAN formation-energy difference on the "
        "composition-fraction matrix; each element's importance is divided by its atom count "
        "and scaled (× 9,000 with MP2020 corrections, c; × 500 without, d). The paper: with "
        "corrections V, Cr, Mn, Fe, Co, Ni, Mo, W and the anions O, F, S, Cl, Se, Br, Te stand "
        "out (Cl most); without them only the eight transition metals, O and F remain.",
    ),
    _parameters(),
    _setup(
        "from mlip_transfer.plots.energy_scale import PAPER_HIGH_IMPORTANCE, plot_element_importance\n"
    ),
    new_code_cell(
        """importance = pd.read_csv(energy_dir / "element_importance.csv")
importance["corrections"] = importance["corrections"].astype(str).str.lower() == "true"
fig = plot_element_importance(importance, source=source)
save_figure(fig, figure_dir / "fig1cd_element_importance", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell(
        "## Key numbers\n\nThe highest normalised importances, and how many of the paper's "
        "high-importance elements are among this data's top ones (of those present)."
    ),
    new_code_cell(
        """top = {}
rows = []
for corrected, label in ((True, "with corrections"), (False, "without corrections")):
    table = importance[importance["corrections"] == corrected].sort_values("normalised", ascending=False)
    paper = PAPER_HIGH_IMPORTANCE[corrected]
    present = [el for el in paper if el in set(table["element"])]
    leaders = list(table["element"].head(len(present)))
    top[label] = [f"{el} {value:.3g}" for el, value in zip(table["element"].head(10), table["normalised"].head(10))]
    rows.append({"setting": label, "paper's elements present": len(present), "of them in this data's top": len(set(leaders) & set(present)), "paper's list": ", ".join(paper)})
display(pd.DataFrame(rows).set_index("setting"))
pd.DataFrame(top, index=range(1, 11))"""
    ),
]

FIG2A = [
    _intro(
        "Fig. 2a: atomic reference energies (AtomRef)",
        "The per-element AtomRef energies of GGA/GGA+U and r2SCAN fitted by least squares "
        "(Eq. 2) on this dataset's training frames, beside the fits CHGNet ships (MPtrj for "
        "GGA/GGA+U, MP-r2SCAN for r2SCAN), and their difference r2SCAN − GGA. Elements the "
        "data cannot determine are gaps, never zeros. Subtracting each functional's AtomRef is "
        "what aligns the two energy scales (Fig. 2b).",
    ),
    _parameters(),
    _setup("from mlip_transfer.plots.energy_scale import plot_atomrefs\n"),
    new_code_cell(
        """atomrefs = pd.read_csv(energy_dir / "atomrefs.csv")
fits = json.loads((energy_dir / "atomref_fits.json").read_text())
fig = plot_atomrefs(atomrefs, source=source)
save_figure(fig, figure_dir / "fig2a_atomrefs", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Key numbers\n\nThe refits, and how far they lie from CHGNet's shipped AtomRefs."),
    new_code_cell(
        """rows = {}
for functional, fit in fits.items():
    table = atomrefs[atomrefs["functional"] == functional].pivot_table(index="element", columns="kind", values="energy")
    both = table.dropna(subset=[c for c in ("refit", "shipped") if c in table]) if {"refit", "shipped"} <= set(table) else table.iloc[:0]
    rows[functional] = {
        "structures fitted": fit["n_samples"],
        "elements (columns)": fit["n_elements"],
        "rank": fit["rank"],
        "missing elements": len(fit.get("missing", {})),
        "residual MAE (eV/atom)": round(fit["residual_mae"], 4),
        "residual RMSE (eV/atom)": round(fit["residual_rmse"], 4),
        "elements with refit and shipped": len(both),
        "mean |refit - shipped| (eV/atom)": round((both["refit"] - both["shipped"]).abs().mean(), 3) if len(both) else None,
    }
pd.DataFrame({functional: pd.Series(row, dtype=object) for functional, row in rows.items()})"""
    ),
    new_code_cell(
        """pd.DataFrame(
    [(functional, element, reason) for functional, fit in fits.items() for element, reason in fit.get("missing", {}).items()],
    columns=["functional", "element", "why no AtomRef"],
)"""
    ),
]

FIG2B = [
    _intro(
        "Fig. 2b: energies before and after AtomRef scaling",
        "Relaxed energies per atom of the same materials, r2SCAN (x) against GGA/GGA+U (y), raw "
        "(left) and with each functional's own refit AtomRef subtracted (right), with Pearson ρ "
        "and its bootstrap 95% confidence interval. The paper: ρ rises from 0.0917 to 0.9250.",
    ),
    _parameters(),
    _setup("from mlip_transfer.plots.energy_scale import plot_referenced_energies\n"),
    new_code_cell(
        """referenced = pd.read_csv(energy_dir / "referenced_energies.csv")
correlation = json.loads((energy_dir / "correlation.json").read_text())
fig = plot_referenced_energies(referenced, correlation, source=source)
save_figure(fig, figure_dir / "fig2b_referenced_energies", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Key numbers"),
    new_code_cell(
        """def row(stats):
    return {
        "rho raw": round(stats["raw"]["rho"], 4),
        "95% CI raw": f"[{stats['raw']['low']:.4f}, {stats['raw']['high']:.4f}]",
        "rho scaled": round(stats["scaled"]["rho"], 4),
        "95% CI scaled": f"[{stats['scaled']['low']:.4f}, {stats['scaled']['high']:.4f}]",
        "materials": stats["raw"]["n"],
    }


rows = {"paper (MP)": {"rho raw": correlation["paper"]["raw"], "rho scaled": correlation["paper"]["scaled"]}}
rows["this data, refit AtomRefs"] = row(correlation["refit"])
if correlation.get("shipped"):
    rows["this data, CHGNet's shipped AtomRefs"] = row(correlation["shipped"])
pd.DataFrame(rows).T.fillna("")"""
    ),
]

MATPES_SHIFT = [
    _intro(
        "Check on real DFT: the AtomRef shift against MatPES",
        "The r2SCAN − GGA/GGA+U AtomRef difference per element (Fig. 2a, bottom) should track "
        "the r2SCAN − PBE difference of the elements' DFT ground-state energies, here taken "
        "from MatPES (independent DFT, no potential involved). Points near y = x say the refit "
        "captures the functional's element-wise energy shift; the shipped CHGNet AtomRefs "
        "(MP-r2SCAN − MPtrj) are the second series. Large deviations name the elements whose "
        "AtomRef absorbs more than the reference shift (for example GGA+U or correction terms).",
    ),
    _parameters(),
    _setup("from mlip_transfer.plots.energy_scale import plot_matpes_shift\n"),
    new_code_cell(
        """shift = pd.read_csv(energy_dir / "matpes_shift.csv")
stats = json.loads((energy_dir / "matpes_shift.json").read_text())
fig = plot_matpes_shift(shift, stats, source=source)
save_figure(fig, figure_dir / "matpes_shift_check", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Key numbers\n\nPearson r and mean absolute deviation (eV/atom) from MatPES, and the largest deviations."),
    new_code_cell("""display(pd.DataFrame.from_dict(stats, orient="index"))
deviation = shift.assign(
    refit_minus_matpes=shift["refit_shift"] - shift["matpes_shift"],
    shipped_minus_matpes=shift["shipped_shift"] - shift["matpes_shift"],
)
deviation.reindex(deviation["refit_minus_matpes"].abs().sort_values(ascending=False).index).head(10).set_index("element").round(3)"""),
]

ENERGY_SCALE_NOTEBOOKS = {
    "fig1a_element_occurrence": FIG1A,
    "fig1b_relaxed_energies": FIG1B,
    "fig1cd_element_importance": FIG1CD,
    "fig2a_atomrefs": FIG2A,
    "fig2b_referenced_energies": FIG2B,
    "matpes_shift_check": MATPES_SHIFT,
}


def _transfer_setup(imports: str) -> object:
    return new_code_cell(
        PREAMBLE
        + imports
        + """
data_dir, training_dir, evaluation_dir, figure_dir = map(Path, (data_dir, training_dir, evaluation_dir, figure_dir))
formats = [fmt for fmt in formats.split(",") if fmt]
source = DataSource.read(data_dir)
display(Markdown(f"**{source.banner}.** {source.description}\\n\\n" + (f"*Caveat:* {source.caveat}" if source.caveat else "")))
histories = pd.concat(
    [pd.read_csv(path).assign(method=path.parent.name) for path in sorted(training_dir.glob("*/history.csv"))],
    ignore_index=True,
)
gradients = pd.concat([pd.read_csv(path) for path in sorted(training_dir.glob("*/gradients.csv"))], ignore_index=True)"""
    )


TABLE1 = [
    _intro(
        "Table 1: the four transfer methods on the test split",
        "Energy, force, stress and magnetic-moment MAEs on the test frames, failed relaxations, "
        "and decomposition- and formation-energy MAEs from phase diagrams built with each "
        "model's relaxed energies, for Methods 1-4, the residual-shift variant 4r, the "
        "pretrained GGA model and the r2SCAN model that made the surrogate labels. The paper's "
        "numbers stand beside ours; cells it does not report stay empty.",
    ),
    _parameters(TRANSFER_DIRS),
    _transfer_setup("from mlip_transfer.plots.transfer import plot_table1\n"),
    new_markdown_cell("## The table beside the paper's"),
    new_code_cell('display(Markdown((evaluation_dir / "table1.md").read_text()))'),
    new_markdown_cell("## Errors before and after training (validation energy MAE, meV/atom)"),
    new_code_cell(
        """val = histories[histories["split"] == "val"]
first, last = val[val["epoch"] == 0], val.loc[val.groupby("method")["epoch"].idxmax()]
pd.DataFrame({
    "before training": first.set_index("method")["energy_mae"] * 1000,
    "after training": last.set_index("method")["energy_mae"] * 1000,
}).round(1)"""
    ),
    new_code_cell(
        """table = pd.read_csv(evaluation_dir / "table1.csv")
fig = plot_table1(table, source=source)
save_figure(fig, figure_dir / "table1", formats, dpi=dpi)
fig"""
    ),
]

FIG3A = [
    _intro(
        "Fig. 3a: gradients in the first epoch of transfer learning",
        "Gradient norms of eight layers of CHGNet every tenth of the first epoch, for Method 3 "
        "(frozen GGA AtomRef) and Method 4 (refit AtomRef). With the GGA AtomRef the GNN must "
        "absorb an offset of tens of eV/atom, and its gradients are larger: the paper reports "
        "at least 10x.",
    ),
    _parameters(TRANSFER_DIRS),
    _transfer_setup("from mlip_transfer.plots.transfer import gradient_ratio, plot_gradients\n"),
    new_code_cell(
        """fig = plot_gradients(gradients, source=source)
save_figure(fig, figure_dir / "fig3a_gradients", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("Median ratio of gradient norms, Method 3 over Method 4, per layer:"),
    new_code_cell('gradient_ratio(gradients, "3_frozen_gga_atomref", "4_refit_atomref").round(2).to_frame("M3 / M4")'),
]

FIG3BC = [
    _intro(
        "Fig. 3b/c: validation energy MAE per epoch",
        "Panel b compares Method 3 and Method 4 as the paper does (best of 50 epochs: 18.37 vs "
        "11.82 meV/atom); panel c shows every method. Epoch 0 is the error before training.",
    ),
    _parameters(TRANSFER_DIRS),
    _transfer_setup("from mlip_transfer.plots.transfer import plot_energy_mae\n"),
    new_code_cell(
        """fig = plot_energy_mae(histories, source=source)
save_figure(fig, figure_dir / "fig3bc_energy_mae", formats, dpi=dpi)
fig"""
    ),
]

TRANSFER_NOTEBOOKS = {"table1": TABLE1, "fig3a_gradients": FIG3A, "fig3bc_energy_mae": FIG3BC}


# --- Benchmarks: Fig. 5 (density) and Fig. 6 (scaling law) -----------------------------------


def _benchmark_setup(dirs: tuple[str, ...], imports: str) -> object:
    paths = ", ".join(dirs)
    return new_code_cell(
        PREAMBLE
        + imports
        + f"""
{paths}, figure_dir = map(Path, ({paths}, figure_dir))
formats = [fmt for fmt in formats.split(",") if fmt]
source = DataSource.read(data_dir)
display(Markdown(f"**{{source.banner}}.** {{source.description}}\\n\\n" + (f"*Caveat:* {{source.caveat}}" if source.caveat else "")))"""
    )


FIG6 = [
    _intro(
        "Fig. 6: scaling law of Scratch and Transfer",
        "Validation energy and force MAE against the number of training frames for Method 1 "
        "(scratch) and Method 4 (transfer with the refit AtomRef), one point per seed. Lines are "
        "log-log fits above the threshold; the slope interval comes from the spread of per-seed "
        "slopes. The dotted line is the zero point: the pretrained GGA model with the target "
        "AtomRef, untrained. The paper (MP-r2SCAN, single runs, fits above 1,000 frames): energy "
        "slopes -0.615 scratch / -0.301 transfer, force -0.394 / -0.134; transfer with 1K points "
        "beats scratch with more than 10K.",
    ),
    _parameters({"data_dir": "results/data", "scaling_dir": "results/scaling"}),
    _benchmark_setup(("data_dir", "scaling_dir"), "from mlip_transfer.plots.benchmarks import plot_scaling_law\n"),
    new_code_cell(
        """results = pd.read_csv(scaling_dir / "scaling_results.csv")
fits = json.loads((scaling_dir / "scaling_fits.json").read_text())
fig = plot_scaling_law(results, fits, source=source)
save_figure(fig, figure_dir / "fig6_scaling_law", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Fits beside the paper's"),
    new_code_cell(
        """rows = []
for target, entry in fits["targets"].items():
    for method, fit in entry["fits"].items():
        paper = fits["paper"][target].get(method, {})
        rows.append({"target": target, "method": method, **(fit or {}),
                     "paper slope": paper.get("slope"), "paper R²": paper.get("r2")})
pd.DataFrame(rows).round(4)"""
    ),
    new_markdown_cell(
        "## Crossover and data efficiency\n\nThe crossover is where the fitted lines meet (the "
        "paper: 719,996 frames for energy, 317,475 for force). The factor at N is how many "
        "frames Scratch needs, on its fitted line, to reach the error Transfer has with N, "
        "divided by N; `extrapolated` marks sizes outside those Scratch was trained on, and "
        "`defined` is False where Scratch's fitted line does not fall with N (no size of "
        "Scratch then matches Transfer, so no factor is given)."
    ),
    new_code_cell(
        """for target, entry in fits["targets"].items():
    for method, meaning in entry.get("crossover_meaning", {}).items():
        display(Markdown(f"**{target}**, {method}: {meaning}."))
    for method, rows in entry.get("data_efficiency", {}).items():
        display(pd.DataFrame(rows).round(2))"""
    ),
]

FIG5 = [
    _intro(
        "Fig. 5: density against experiment",
        "Every lattice vector of each solid is strained by -10 %, the structure relaxed with each "
        "model (cell included), and the relaxed density compared with the experimental one. The "
        "paper relaxes ~1,000 ordered ICSD structures to 30 meV/Å and finds the ratio "
        "experimental / predicted within 0.8-1.2, Method 4 with the lowest MAE and the GGA model "
        "underestimating density the most. Failed relaxations are counted, not dropped.",
    ),
    _parameters({"data_dir": "results/data", "density_dir": "results/density"}, structures="sol58"),
    _benchmark_setup(("data_dir", "density_dir"), "from mlip_transfer.plots.benchmarks import plot_density\n"),
    new_code_cell(
        """reference = {
    "sol58": "58 cubic solids at experimental lattice constants (Hao et al. 2012)",
    "mp_api": "MP structures of ICSD-sourced materials",
}.get(structures, structures)
display(Markdown(f"Reference structures: **{reference}**. The models were trained on the data named above."))
table = pd.read_csv(density_dir / "density_all.csv")
summary = pd.read_csv(density_dir / "density_summary.csv")
fig = plot_density(table, summary, source=source, reference=structures)
save_figure(fig, figure_dir / "fig5_density", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Per model"),
    new_code_cell("summary.round(3)"),
    new_markdown_cell("## Failed or unconverged relaxations"),
    new_code_cell(
        """table[table["failed"] | ~table["converged"]][["model", "system", "failure", "n_steps"]]"""
    ),
    new_markdown_cell("## Largest deviations per model"),
    new_code_cell(
        """table.assign(deviation=(table["ratio"] - 1).abs()).sort_values("deviation", ascending=False).groupby("model").head(3)[
    ["model", "system", "prototype", "density_exp", "density_pred", "ratio"]
].round(3)"""
    ),
]

BENCHMARK_NOTEBOOKS = {"fig5_density": FIG5, "fig6_scaling_law": FIG6}
# --- Si -> Ge transfer with DimeNet++ (the sibling study) ------------------------------------
# Inputs come from <output>/elements/results/ (written by the elements rules); the provenance
# from the Ge dataset folder.

ELEMENTS_DIRS = {"data_dir": "results/elements/data/Ge", "results_dir": "results/elements/results"}


def _elements_setup(imports: str) -> object:
    return new_code_cell(
        PREAMBLE
        + imports
        + """
data_dir, results_dir, figure_dir = Path(data_dir), Path(results_dir), Path(figure_dir)
formats = [fmt for fmt in formats.split(",") if fmt]
source = DataSource.read(data_dir)
provenance = json.loads((data_dir / "provenance.json").read_text())
summary = json.loads((results_dir / "stability_structure.json").read_text())
display(Markdown(f"**{source.banner}.** {source.description}\\n\\n*Caveat:* {source.caveat}\\n\\n*Scale:* {summary['scale']}"))"""
    )


ELEMENTS_DATA_EFFICIENCY = [
    _intro(
        "Si → Ge: data efficiency",
        "Ge DimeNet++ models trained on 1 to 195 Stillinger-Weber frames, from random weights "
        "(scratch) or from the model pre-trained on Si (transfer: all weights fine-tuned, the Si "
        "species embedding copied into Ge's). Test force and energy MAE on held-out trajectories "
        "at the training temperature; points are means over seeds, bars span min to max. The "
        "study: transfer beats scratch most with little data (transfer with 10 samples beats "
        "scratch with 50).",
    ),
    _parameters(ELEMENTS_DIRS),
    _elements_setup("from mlip_transfer.plots.elements import plot_data_efficiency\n"),
    new_code_cell(
        """table = pd.read_csv(results_dir / "data_efficiency.csv")
fig = plot_data_efficiency(table, source=source, note=summary["scale"])
save_figure(fig, figure_dir / "elements_data_efficiency", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## The table (mean ± standard deviation over seeds)"),
    new_code_cell('display(Markdown((results_dir / "data_efficiency.md").read_text()))'),
    new_markdown_cell("## Transfer gain per size (scratch MAE / transfer MAE, means over seeds)"),
    new_code_cell(
        """wide = table.pivot(index="size", columns="method", values=["force_mae_mev_per_a_mean", "energy_mae_mev_per_atom_mean"])
pd.DataFrame({
    "force: scratch / transfer": wide["force_mae_mev_per_a_mean"]["scratch"] / wide["force_mae_mev_per_a_mean"]["transfer"],
    "energy: scratch / transfer": wide["energy_mae_mev_per_atom_mean"]["scratch"] / wide["energy_mae_mev_per_atom_mean"]["transfer"],
}).round(2)"""
    ),
]

ELEMENTS_TEMPERATURE = [
    _intro(
        "Si → Ge: temperature transferability",
        "Models trained on Ge frames at one temperature, tested on held-out Stillinger-Weber "
        "frames from 300 K (crystal) to 3300 K (liquid). The study finds transfer ahead across "
        "the whole range.",
    ),
    _parameters(ELEMENTS_DIRS),
    _elements_setup("from mlip_transfer.plots.elements import plot_temperature\n"),
    new_code_cell(
        """table = pd.read_csv(results_dir / "temperature.csv")
train_temperature = float(summary["train_temperature"])
fig = plot_temperature(table, source=source, train_temperature=train_temperature, note=summary["scale"])
save_figure(fig, figure_dir / "elements_temperature", formats, dpi=dpi)
fig"""
    ),
    new_markdown_cell("## Force MAE (meV/Å) per test temperature, mean over seeds"),
    new_code_cell(
        """table.pivot_table(index="temperature", columns=["method", "size"], values="force_mae_mev_per_a_mean").round(1)"""
    ),
]

ELEMENTS_STABILITY = [
    _intro(
        "Si → Ge: MD stability",
        "Langevin NVT runs with the Ge models trained on few frames. A run is unstable when its "
        "energy or forces stop being finite, two atoms come closer than the threshold, or the "
        "kinetic temperature runs away. The study (100 runs of 100 ps at 1200 K, 10 training "
        "samples): transfer 100/100 stable, scratch 35/100.",
    ),
    _parameters(ELEMENTS_DIRS),
    _elements_setup("from mlip_transfer.plots.elements import plot_stability\n"),
    new_code_cell(
        """fig = plot_stability(summary, source=source)
save_figure(fig, figure_dir / "elements_stability", formats, dpi=dpi)
fig"""
    ),
    new_code_cell(
        """display(pd.DataFrame(summary["stability"]).set_index("method"))
print(f"Stillinger-Weber reference: {summary['reference_runs_stable']}/{summary['reference_runs']} runs stable")"""
    ),
]

ELEMENTS_STRUCTURE = [
    _intro(
        "Si → Ge: structure (RDF and ADF)",
        "Radial and bond-angle distributions of the stable runs of each method, against the "
        "same runs with the Stillinger-Weber potential itself; ∫|Δ| is the integrated absolute "
        "difference from the reference. The study reports a negative transfer effect here: "
        "RDF/ADF further from the reference with transfer, despite lower force errors.",
    ),
    _parameters(ELEMENTS_DIRS),
    _elements_setup("from mlip_transfer.plots.elements import plot_structure\n"),
    new_code_cell(
        """curves = pd.read_csv(results_dir / "structure_curves.csv")
fig = plot_structure(curves, summary, source=source)
save_figure(fig, figure_dir / "elements_structure", formats, dpi=dpi)
fig"""
    ),
    new_code_cell('pd.DataFrame(summary["structure"]).T'),
]

ELEMENTS_NOTEBOOKS = {
    "elements_data_efficiency": ELEMENTS_DATA_EFFICIENCY,
    "elements_temperature": ELEMENTS_TEMPERATURE,
    "elements_stability": ELEMENTS_STABILITY,
    "elements_structure": ELEMENTS_STRUCTURE,
}


def write(name: str, cells: list) -> None:
    notebook = new_notebook(cells=cells)
    # Snakemake and papermill need the kernel and language spelled out.
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{name}-{index}"
    nbformat.validate(notebook)
    nbformat.write(notebook, NOTEBOOKS / f"{name}.ipynb")


if __name__ == "__main__":
    write("dataset_summary", DATASET_SUMMARY)
    notebooks = {**ENERGY_SCALE_NOTEBOOKS, **TRANSFER_NOTEBOOKS, **BENCHMARK_NOTEBOOKS, **ELEMENTS_NOTEBOOKS}
    for name, cells in notebooks.items():
        write(name, cells)
