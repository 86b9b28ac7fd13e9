"""``mlip-transfer retention``: what your fine-tuned model forgot (the workflow's retention report).

Kept out of :mod:`mlip_transfer.cli` (one module per job); that module only registers it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlip_transfer.core.files import write_csv_atomic, write_json_atomic

EXAMPLES = """\
  mlip-transfer retention --model my_finetune.pt --xyz my_r2scan_test.xyz --out retention/
  mlip-transfer retention --model my_finetune.pt --data parsed/ --functional r2scan --source-functional gga --out retention/
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``retention`` command."""
    from mlip_transfer.transfer.retention_settings import DimerSettings, NVTSettings

    dimer, nvt = DimerSettings(), NVTSettings()
    parse = commands.add_parser(
        "retention",
        help="after fine-tuning: what did the model forget on the source functional?",
        description="The retention report of a fine-tuned CHGNet model on your test structures: "
        "its energy and force MAE against the source model's labels (and against frames of the "
        "source functional, where given), the repulsive wall of homonuclear dimers against the "
        "source model's, and short NVT runs counted stable or not. Writes retention.json, "
        "dimers.csv and md.csv to --out and prints a summary.",
        epilog="examples:\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    given = parse.add_mutually_exclusive_group(required=True)
    given.add_argument("--xyz", nargs="+", help="extended XYZ files of test structures (target labels not needed)")
    given.add_argument("--data", help="canonical dataset folder (frames.jsonl.gz): its frames of --functional are the test frames (with a split.csv, those of the test split)")
    parse.add_argument("--model", required=True, help="the fine-tuned model: a file or a chgnet model name")
    parse.add_argument("--source-model", default="0.3.0", help="the model it was fine-tuned from (default 0.3.0)")
    parse.add_argument("--out", required=True, help="output folder")
    parse.add_argument("--functional", default="r2scan", help="functional of the test frames (default r2scan)")
    parse.add_argument("--source-xyz", nargs="+", help="optional extended XYZ frames labelled with the source functional")
    parse.add_argument("--source-functional", default="gga", help="with --data: functional of the source-labelled frames (default gga)")
    parse.add_argument("--max-frames", type=int, default=100, help="at most this many frames per reference (default 100)")
    parse.add_argument("--max-elements", type=int, default=dimer.max_elements, help=f"dimer elements, most frequent first (default {dimer.max_elements})")
    parse.add_argument("--nvt-structures", type=int, default=nvt.structures, help=f"NVT runs (default {nvt.structures})")
    parse.add_argument("--nvt-steps", type=int, default=nvt.steps, help=f"steps per run (default {nvt.steps})")
    parse.add_argument("--nvt-timestep", type=float, default=nvt.timestep_fs, help=f"fs (default {nvt.timestep_fs})")
    parse.add_argument("--nvt-temperature", type=float, default=nvt.temperature, help=f"K (default {nvt.temperature:g})")
    parse.add_argument("--batch-size", type=int, default=16)
    parse.add_argument("--seed", type=int, default=0)
    parse.set_defaults(handler=_retention)


def _frames(args: argparse.Namespace) -> tuple[list, list]:
    """(test frames, source-functional frames) from --xyz/--source-xyz or --data."""
    from mlip_transfer.data.loaders.extxyz import load_extxyz

    if args.data:
        from mlip_transfer.data.dataset import FRAMES_FILE, read_frames

        every = read_frames(Path(args.data) / FRAMES_FILE)
        split = Path(args.data) / "split.csv"
        if split.exists():  # a split dataset: its test materials only
            from mlip_transfer.data.split import read_split

            test_ids = {m for m, part in read_split(split).items() if part == "test"}
            every = [f for f in every if f.material_id in test_ids]
        test = [f for f in every if f.functional == args.functional]
        source = [f for f in every if f.functional == args.source_functional]
    else:
        test = [f for path in args.xyz for f in load_extxyz(path, functional=args.functional)]
        source = [f for path in args.source_xyz or ()
                  for f in load_extxyz(path, functional=args.source_functional)]
    materials = {f.material_id for f in test}
    return test, [f for f in source if f.material_id in materials] if args.data else source


def _retention(args: argparse.Namespace) -> int:
    """The command: reference, report, files, summary."""
    from mlip_transfer.transfer.models import load_chgnet
    from mlip_transfer.transfer.retention import build_reference, retention_report
    from mlip_transfer.transfer.retention_settings import RetentionSettings

    settings = RetentionSettings.from_config({
        "source_functional": args.source_functional, "max_frames": args.max_frames,
        "seed": args.seed, "batch_size": args.batch_size,
        "dimers": {"max_elements": args.max_elements},
        "nvt": {"structures": args.nvt_structures, "steps": args.nvt_steps,
                "timestep_fs": args.nvt_timestep, "temperature": args.nvt_temperature},
    })  # fmt: skip
    test, source_frames = _frames(args)
    source = load_chgnet(args.source_model)
    model = source if args.model == args.source_model else load_chgnet(args.model)
    reference = build_reference(
        source_model=source, source_name=args.source_model, test_frames=test,
        source_frames=source_frames, settings=settings,
        info={"target_functional": args.functional, "data": args.data or list(args.xyz)},
    )  # fmt: skip
    summary, curves, md = retention_report(label=str(args.model), model=model,
                                           reference=reference, settings=settings,
                                           is_source=args.model == args.source_model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "retention.json", summary, default=str)
    write_csv_atomic(out / "dimers.csv", curves, index=False)
    write_csv_atomic(out / "md.csv", md, index=False)
    print(summary_text(summary))
    print(f"retention report written to {out}")
    return 0


def summary_text(summary: dict) -> str:
    """The report in a few lines of text."""
    lines = [f"Retention of {summary['model']} (source model {summary['source_model']}):"]
    for key, what in (("source_labels", "source-model labels"),
                      ("source_frames", "source-functional frames")):
        errors = summary.get(key)
        if errors:
            relative = errors.get("relative_energy_mae_mev")
            relative = "n/a" if relative is None else f"{relative:.2f}"
            lines.append(f"  vs {what}: relative energy MAE {relative} meV/atom (raw "
                         f"{errors['energy_mae_mev']:.1f}), force MAE "
                         f"{errors['force_mae_mev']:.1f} meV/Å ({errors['n_frames']} frames)")
    dimers, nvt = summary["dimers"], summary["nvt"]
    lost = ", ".join(f"{el} ({why})" for el, why in dimers["lost"].items()) or "none"
    lines.append(f"  dimer walls lost: {dimers['n_lost']}/{dimers['n_elements']} ({lost})")
    lines.append(f"  NVT stable: {nvt['n_stable']}/{nvt['n_runs']} ({nvt['duration_ps']:g} ps at "
                 f"{nvt['temperature']:g} K)")
    return "\n".join(lines)
