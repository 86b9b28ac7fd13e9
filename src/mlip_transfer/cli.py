"""The ``mlip-transfer`` command: the workflow's steps for your own data, one at a time.

The Snakemake workflow calls the same library functions; this command is for users who want one
step on their own files (for example, parse an extended XYZ dataset into the canonical format and
see what the paper's filters would drop) without running the workflow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mlip_transfer.core.errors import ConfigError, DataError
from mlip_transfer.core.files import write_json_atomic
from mlip_transfer.transfer.models import load_chgnet

EXAMPLES = """\
examples:
  mlip-transfer parse extxyz --xyz my_r2scan.xyz --functional r2scan --out parsed/
  mlip-transfer parse extxyz --xyz vasp.xyz --stress-unit kBar --energy-key REF_energy --material-ids-from match --out parsed/
  mlip-transfer parse mp --r2scan-json MPr2SCAN.json --thermo-json mp_thermo.json --out parsed/ --on-invalid drop
  mlip-transfer split parsed/ --seed 42
  mlip-transfer check-config config/paper.yaml
  mlip-transfer verify
  mlip-transfer download mp_r2scan
  mlip-transfer build-default --help
  mlip-transfer diagnose --data parsed/ --functional r2scan --max-frames 500 --json diagnosis.json
  mlip-transfer diagnose --xyz my_r2scan.xyz --per-element-out diagnosis/ --bootstrap 200
  mlip-transfer retention --model my_finetune.pt --xyz my_r2scan_test.xyz --out retention/
  mlip-transfer rank-teachers results results/chgnet_r2scan_teacher --out results/teachers/ranking
  mlip-transfer data-budget --xyz my_r2scan.xyz --out budget/
"""


# extxyz settings with a flag of their own (--stress-unit ...); unset flags keep the loader's defaults.
EXTXYZ_FLAGS = (
    "stress_unit",
    "material_ids_from",
    "material_id_key",
    "energy_key",
    "forces_key",
    "stress_key",
    "magmoms_key",
    "energy_uncorrected_key",
    "frame_id_key",
)
LABEL_FLAGS = {
    "energy_key": "total energy (eV) in atoms.info or the calculator results",
    "forces_key": "per-atom forces (eV/A) in atoms.arrays",
    "stress_key": "stress in atoms.info (Voigt 6 or 3x3 values, in --stress-unit)",
    "magmoms_key": "per-atom magnetic moments (muB) in atoms.arrays",
    "energy_uncorrected_key": "energy before empirical corrections in atoms.info",
    "frame_id_key": "frame id in atoms.info (else FILESTEM-INDEX)",
}


def _add_extxyz_flags(parse: argparse.ArgumentParser) -> None:
    """The flags of the ``data.extxyz`` settings: stress unit, material ids, label names."""
    from mlip_transfer.data.loaders.extxyz import MATERIAL_ID_MODES, ExtxyzConfig
    from mlip_transfer.data.loaders.stress_units import STRESS_UNITS

    defaults = ExtxyzConfig()
    group = parse.add_argument_group("extxyz settings (data.extxyz in a workflow config)")
    group.add_argument(
        "--stress-unit", choices=list(STRESS_UNITS),
        help="unit of the stress in the files, ASE sign (positive = tensile); converted to GPa "
        f"(default {defaults.stress_unit}, ASE's unit; eV/A3 is the old spelling)",
    )
    group.add_argument(
        "--material-ids-from", choices=list(MATERIAL_ID_MODES),
        help="info: the material id is atoms.info[--material-id-key], a frame without one is "
        "refused if it could leak across the split; match: group frames without one by "
        f"structure matching (default {defaults.material_ids_from})",
    )
    group.add_argument(
        "--material-id-key", metavar="KEY",
        help=f"atoms.info key of the material id (default {defaults.material_id_key})",
    )
    for key, what in LABEL_FLAGS.items():
        group.add_argument(
            "--" + key.replace("_", "-"), metavar="NAME",
            help=f"name of the {what} (default {getattr(defaults, key)})",
        )


def _parse(args: argparse.Namespace) -> int:
    from mlip_transfer.core.config import load_config
    from mlip_transfer.data.filters import FilterConfig
    from mlip_transfer.data.parse import parse_dataset

    filters = dict(load_config(args.config)["filters"]) if args.config else {}
    if args.on_invalid:
        filters["on_invalid_record"] = args.on_invalid
    if args.no_dedup:
        filters["deduplicate"] = False
    given = [key for key in EXTXYZ_FLAGS if getattr(args, key) is not None]
    if given and args.source != "extxyz":
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise ConfigError(f"{flags}: only for source extxyz, not {args.source}")
    if args.source == "default":
        settings = {"path": args.path}
    elif args.source == "mp":
        settings = {"r2scan_json": args.r2scan_json, "mptrj_json": args.mptrj_json, "thermo_json": args.thermo_json}
    else:
        settings = {"paths": args.xyz, "functional": args.functional, "materials_csv": args.materials_csv}
        settings |= {key: getattr(args, key) for key in given}
    if args.max_materials:
        settings["max_materials"] = args.max_materials
    report = parse_dataset(
        source=args.source, settings=settings, filters=FilterConfig.from_dict(filters), out_dir=args.out
    )
    print("\n".join(report.summary_lines()))
    print(f"canonical dataset written to {args.out}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from mlip_transfer.data.dataset import MATERIALS_FILE, read_materials
    from mlip_transfer.data.split import split_materials, write_split
    from mlip_transfer.data.summary import frame_table

    data_dir = Path(args.data_dir)
    frames = frame_table(data_dir / "frames.jsonl.gz")
    ids = sorted(frames["material_id"].unique())
    forced = []
    if args.elemental_in_train:
        materials = read_materials(data_dir / MATERIALS_FILE)
        forced = sorted(set(materials.loc[materials["is_elemental_reference"], "material_id"]) & set(ids))
    assignment = split_materials(ids, fractions=tuple(args.fractions), seed=args.seed, force_train=forced)
    table = write_split(data_dir / "split.csv", assignment)
    print(table["split"].value_counts().to_string())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from mlip_transfer.core.config import load_config

    for path in args.paths:
        load_config(path)
        print(f"{path}: valid")
    return 0


def _rank_teachers(args: argparse.Namespace) -> int:
    from mlip_transfer.teachers.ranking import rank_teachers

    result = rank_teachers(args.runs, out_dir=args.out, tolerance=args.tolerance)
    print(result["sentence"])
    print(f"written: {Path(args.out) / 'method_ranking.md'} (.csv, .json)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from mlip_transfer.core.registry import load_registry, verify_file

    root = Path(args.registry).resolve().parent.parent
    for entry in load_registry(args.registry).values():
        path = root / entry.path
        if not path.exists():
            print(f"{entry.name}: absent ({entry.path}){'' if entry.shipped else ', downloadable'}")
            continue
        verify_file(entry, path)
        print(f"{entry.name}: verified")
    return 0


def _download(args: argparse.Namespace) -> int:
    from mlip_transfer.core.registry import download, load_registry

    entry = load_registry(args.registry)[args.name]
    path = download(entry, args.dest or entry.path)
    print(f"{entry.name}: downloaded and verified at {path}")
    return 0


MATPES_REFS = (
    "resources/reference/MatPES-PBE-Element-Refs.json.gz",
    "resources/reference/MatPES-r2SCAN-Element-Refs.json.gz",
)


def _expected_shifts(args: argparse.Namespace, functional: str | None) -> tuple[dict | None, str | None]:
    """Expected per-element shifts: --expected-refs, else MatPES PBE -> r2SCAN for r2SCAN labels
    when the files are present (relative to the working directory), else none."""
    from mlip_transfer.energy_scale.element_report import matpes_expected_shifts

    if args.no_expected:
        return None, None
    if args.expected_refs:
        paths = args.expected_refs
    elif (functional or "r2scan") == "r2scan" and all(Path(p).exists() for p in MATPES_REFS):
        paths = MATPES_REFS
    else:
        logging.getLogger(__name__).warning("no expected shifts: pass --expected-refs SOURCE TARGET")
        return None, None
    label = f"ground states, {Path(paths[1]).name} − {Path(paths[0]).name}"
    return matpes_expected_shifts(*paths), label


def _element_criteria(args: argparse.Namespace):
    from mlip_transfer.energy_scale.element_report import ElementCriteria

    return ElementCriteria(
        n_resamples=args.bootstrap, resample=args.resample, seed=args.seed,
        min_frames=args.min_frames, max_interval=args.max_interval,
        mismatch_z=args.mismatch_z, mismatch_floor=args.mismatch_floor,
    )  # fmt: skip


def _diagnose(args: argparse.Namespace) -> int:
    from mlip_transfer.data.dataset import FRAMES_FILE, read_frames
    from mlip_transfer.energy_scale.diagnose import diagnose

    if args.data:
        frames = read_frames(Path(args.data) / FRAMES_FILE)
    else:
        from mlip_transfer.data.loaders.extxyz import load_extxyz

        functional = args.functional or "r2scan"
        frames = [frame for path in args.xyz for frame in load_extxyz(path, functional=functional)]
    per_element = expected = label = None
    if args.per_element_out:
        per_element = _element_criteria(args)
        functional = args.functional or (frames[0].functional if frames else None)
        expected, label = _expected_shifts(args, functional)
    report = diagnose(
        model=load_chgnet(args.model),
        frames=frames,
        functional=args.functional,
        batch_size=args.batch_size,
        max_frames=args.max_frames,
        top=args.top,
        model_label=f"CHGNet {args.model}",
        per_element=per_element,
        expected_shift=expected,
        expected_label=label,
    )
    print(report.to_markdown())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.json, report.to_dict())  # standard JSON: NaN -> null
    if args.per_element_out:
        from mlip_transfer.energy_scale.element_outputs import (
            element_markdown,
            write_element_report,
        )

        print(element_markdown(report.elements_report))
        paths = write_element_report(report.elements_report, args.per_element_out, title=f"{report.model}")
        print(f"per-element report written: {', '.join(str(p) for p in paths.values())}")
    return 0


def _add_per_element_flags(diag: argparse.ArgumentParser) -> None:
    """The flags of the per-element report (all but --per-element-out only matter with it)."""
    group = diag.add_argument_group(
        "per element (with --per-element-out)",
        "Per element: frames and atoms holding it, the Eq. 2 and residual-fit shifts with "
        "bootstrap intervals, a collinearity flag with its partners, the deviation from the shift "
        "expected from elemental ground states, and a recommendation (enough data / add "
        "structures with this element / check your DFT settings).",
    )
    group.add_argument("--per-element-out", metavar="DIR",
                       help="write elements.{md,json,csv,png} here and print the per-element table")
    group.add_argument("--bootstrap", type=int, default=200, metavar="N",
                       help="bootstrap resamples for the shift intervals (default 200; 0 = none)")
    group.add_argument("--resample", choices=["materials", "frames"], default="materials",
                       help="resample whole materials (default: their frames are correlated) or single frames")
    group.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    group.add_argument("--min-frames", type=int, default=5,
                       help="fewer frames holding an element: 'add structures' (default 5)")
    group.add_argument("--max-interval", type=float, default=0.2, metavar="EV",
                       help="a wider 95%% interval of the residual shift (eV/atom): 'add structures' (default 0.2)")
    group.add_argument("--mismatch-z", type=float, default=5.0, metavar="Z",
                       help="robust z (median/MAD) of the deviation from the expected shift beyond "
                       "which an element is flagged 'check your DFT settings' (default 5)")
    group.add_argument("--mismatch-floor", type=float, default=0.3, metavar="EV",
                       help="never flag a deviation within this many eV/atom of the median (default 0.3)")
    group.add_argument("--expected-refs", nargs=2, metavar=("SOURCE", "TARGET"),
                       help="elemental ground-state references of the two functionals, MatPES "
                       "json.gz format (default for r2SCAN labels: MatPES PBE and r2SCAN in "
                       "resources/reference, when present)")
    group.add_argument("--no-expected", action="store_true", help="no expected shifts, no mismatch flag")


def _build_default(argv: Sequence[str]) -> int:
    from mlip_transfer.data.surrogate import main as build_main

    build_main(list(argv))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip-transfer",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parse = commands.add_parser(
        "parse",
        help="parse a data source into the canonical format with the paper's filters",
        description="Parse data into the canonical format (frames.jsonl.gz, materials.csv), applying "
        "the paper's filters; writes parse_report.json and dropped.csv (every dropped record, with its reason).",
    )
    parse.add_argument("source", choices=["default", "mp", "extxyz"], help="kind of input")
    parse.add_argument("--out", required=True, help="output folder")
    parse.add_argument("--path", help="default: folder with a canonical frames.jsonl.gz and materials.csv")
    parse.add_argument("--r2scan-json", help="mp: MP-r2SCAN trajectory JSON")
    parse.add_argument("--mptrj-json", help="mp: optional MPtrj JSON for GGA/GGA+U frames")
    parse.add_argument("--thermo-json", help="mp: cached Materials Project thermo documents")
    parse.add_argument("--xyz", nargs="+", help="extxyz: one or more extended XYZ files")
    parse.add_argument("--functional", default="r2scan", help="extxyz: label of the labels' functional (default r2scan)")
    parse.add_argument("--materials-csv", help="extxyz: optional canonical per-material table")
    parse.add_argument("--config", help="take filter settings from this workflow config (default: the paper's)")
    parse.add_argument("--on-invalid", choices=["error", "drop"], help="malformed records: stop (default) or drop and count")
    parse.add_argument("--no-dedup", action="store_true", help="skip the StructureMatcher deduplication (criterion 4)")
    parse.add_argument("--max-materials", type=int, help="parse only this many materials (quick look)")
    _add_extxyz_flags(parse)
    parse.set_defaults(handler=_parse)

    split = commands.add_parser("split", help="split a canonical dataset 8:1:1 by material id")
    split.add_argument("data_dir", help="folder with frames.jsonl.gz and materials.csv; split.csv is written there")
    split.add_argument("--fractions", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST"))
    split.add_argument("--seed", type=int, default=42)
    split.add_argument("--elemental-in-train", action="store_true", help="force elemental references into training")
    split.set_defaults(handler=_split)

    check = commands.add_parser("check-config", help="validate workflow config files against the schema")
    check.add_argument("paths", nargs="+")
    check.set_defaults(handler=_check_config)

    verify = commands.add_parser("verify", help="check every file of the registry that is present")
    verify.add_argument("--registry", default="resources/registry.yaml")
    verify.set_defaults(handler=_verify)

    fetch = commands.add_parser("download", help="download a registry file and verify its checksum")
    fetch.add_argument("name", help="registry entry, e.g. mp_r2scan or mptrj")
    fetch.add_argument("--registry", default="resources/registry.yaml")
    fetch.add_argument("--dest", help="where to put it (default: the registry's path)")
    fetch.set_defaults(handler=_download)

    diag = commands.add_parser(
        "diagnose",
        help="before fine-tuning: does a pretrained model's AtomRef match your labels' energy scale?",
        description="Predict your target frames' energies with a source CHGNet model and compare "
        "the energy MAE with its own AtomRef, with an AtomRef refit on your labels (Eq. 2) and "
        "with a shift fitted to the residual; prints a markdown report with a recommendation. "
        "With --per-element-out, also how well the data determine each element's shift.",
    )
    given = diag.add_mutually_exclusive_group(required=True)
    given.add_argument("--data", help="canonical dataset folder (frames.jsonl.gz)")
    given.add_argument("--xyz", nargs="+", help="one or more extended XYZ files with target labels")
    diag.add_argument("--model", default="0.3.0", help="chgnet model name (0.3.0, r2scan) or a checkpoint file (default 0.3.0)")
    diag.add_argument("--functional", help="use only frames of this functional (with --xyz: their label, default r2scan)")
    diag.add_argument("--max-frames", type=int, help="diagnose at most this many frames, evenly spaced")
    diag.add_argument("--batch-size", type=int, default=16)
    diag.add_argument("--top", type=int, default=10, help="list this many elements with the largest shifts")
    diag.add_argument("--json", help="also write the report as JSON here")
    _add_per_element_flags(diag)
    diag.set_defaults(handler=_diagnose)

    rank = commands.add_parser(
        "rank-teachers",
        help="does the ranking of the transfer methods survive a change of r2SCAN teacher?",
        description="Rank the trained methods of each run's Table 1 (one run per teacher, e.g. the "
        "default run and config/overlays/chgnet_r2scan_teacher.yaml), give Kendall's tau between "
        "teachers and check each of the paper's pairwise orderings under every teacher.",
    )
    rank.add_argument("runs", nargs="+", help="run folders (output_dir), each with evaluation/table1.csv and data/provenance.json")
    rank.add_argument("--out", required=True, help="folder for method_ranking.{md,csv,json}")
    rank.add_argument("--tolerance", type=float, default=0.01,
                      help="relative difference within which two methods tie (default 0.01, as claims.point_tolerance)")
    rank.set_defaults(handler=_rank_teachers)

    from mlip_transfer.transfer import retention_cli

    retention_cli.add_parser(commands)

    from mlip_transfer.budget.cli import add_parser as add_data_budget

    add_data_budget(commands)

    commands.add_parser(
        "build-default",
        help="rebuild the surrogate default dataset with the pretrained CHGNet models",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "build-default":
        return _build_default(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except (DataError, ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
