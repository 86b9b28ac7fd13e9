"""``mlip-transfer data-budget``: the data-budget estimate on a user's own data, in-process."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlip_transfer.budget.settings import KNOWN_METHODS

# The default run's recipe (config/config.yaml, training); --config takes another config's.
DEFAULT_TRAINING: dict[str, Any] = {
    "source_model": "0.3.0", "functional": "r2scan", "epochs": 3, "batch_size": 16,
    "learning_rate": 1.0e-3, "final_learning_rate": 1.0e-5, "loss_ratios": [3, 1, 0.1, 1],
    "criterion": "Huber", "max_train_frames": None, "max_val_frames": 200, "device": "auto",
    "seed": 0,
}
DESCRIPTION = """\
How well would Method 4 (refit AtomRef), 4r (residual AtomRef) and Scratch do on the whole
training split of your data, and is transfer or scratch the better use of it? A few small
fine-tunes on nested subsamples (--fractions of the full training size, largest at most
--max-size frames) with the full-size recipe are fitted with a power law in log10(MAE) against
log10(N) and read at the full size, with an OLS prediction interval. Transfer (or scratch) is
called the better use of the data only when its interval lies wholly below the other's; else
"undetermined". THE RESULT IS AN EXTRAPOLATION: it assumes the learning curve keeps its slope
up to the full size. Writes data_budget.{md,json} and data_budget_points.csv to --out.
"""
EXAMPLES = """\
examples:
  mlip-transfer data-budget --xyz my_r2scan.xyz --out budget/
  mlip-transfer data-budget --data parsed/ --fractions 0.05 0.1 0.2 --max-size 500 --seeds 0 1 --out budget/
  mlip-transfer data-budget --xyz my.xyz --config config/config.yaml --measure-full --out budget/
"""


def add_parser(commands: Any) -> None:
    """The ``data-budget`` subcommand of ``mlip-transfer``."""
    parser = commands.add_parser(
        "data-budget", help="extrapolate Method 4/4r and Scratch learning curves to your full training size",
        description=DESCRIPTION, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--xyz", nargs="+", help="extended XYZ files with target labels (split 8:1:1 by material)")
    given.add_argument("--data", help="canonical dataset folder (frames.jsonl.gz; its split.csv if present)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--functional", help="label of the target frames (default: the recipe's, r2scan)")
    parser.add_argument("--methods", nargs="+", choices=KNOWN_METHODS, metavar="METHOD",
                        default=["4_refit_atomref", "4r_residual_atomref", "1_scratch"],
                        help=f"methods with a learning curve, of {', '.join(KNOWN_METHODS)}; 1_scratch is "
                        "the baseline (default: 4_refit_atomref 4r_residual_atomref 1_scratch)")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.125, 0.25, 0.5],
                        help="subsample sizes as fractions of the full training size, each in (0, 1); "
                        "three or more give an interval (default 0.125 0.25 0.5)")
    parser.add_argument("--max-size", type=int, help="cap on the largest subsample (frames); all sizes scale down with it")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one fine-tune per seed and size (default 0)")
    parser.add_argument("--confidence", type=float, default=0.9, help="level of the prediction interval (default 0.9)")
    parser.add_argument("--config", help="take the training recipe from this workflow config's training section "
                        "(default: the default run's: 3 epochs, batch 16, lr 1e-3 cosine to 1e-5, Huber)")
    parser.add_argument("--epochs", type=int, help="epochs of every fine-tune (overrides the recipe)")
    parser.add_argument("--max-train-frames", type=int, help="full size = at most this many training frames")
    parser.add_argument("--measure-full", action="store_true",
                        help="also train every method at the full size and set its error beside the estimate (slow)")
    parser.add_argument("--split-seed", type=int, default=42, help="seed of the 8:1:1 split by material (default 42)")
    parser.set_defaults(handler=_data_budget)


def _training(args: argparse.Namespace) -> dict[str, Any]:
    training = dict(DEFAULT_TRAINING)
    if args.config:
        from mlip_transfer.core.config import load_config

        training |= load_config(args.config)["training"]
    if args.functional:
        training["functional"] = args.functional
    if args.epochs:
        training["epochs"] = args.epochs
    if args.max_train_frames:
        training["max_train_frames"] = args.max_train_frames
    return training


def _frames_and_split(args: argparse.Namespace, functional: str) -> tuple[list, dict[str, str], str]:
    from mlip_transfer.core.provenance import EXTXYZ, DataSource
    from mlip_transfer.data.split import read_split, split_materials

    if args.data:
        from mlip_transfer.data.dataset import FRAMES_FILE, read_frames

        folder = Path(args.data)
        frames = read_frames(folder / FRAMES_FILE)
        banner = (DataSource.read(folder).banner if (folder / "provenance.json").is_file()
                  else f"Data: {folder}")
        if (folder / "split.csv").is_file():
            return frames, read_split(folder / "split.csv"), banner
    else:
        from mlip_transfer.data.loaders.extxyz import load_extxyz

        frames = [f for path in args.xyz for f in load_extxyz(path, functional=functional)]
        banner = EXTXYZ.banner
    split = split_materials({f.material_id for f in frames}, seed=args.split_seed)
    return frames, split, banner


def _data_budget(args: argparse.Namespace) -> int:
    """Run the points in-process, print the report, write it to ``--out``."""
    from mlip_transfer.budget.jobs import MARKDOWN_FILE, run_local
    from mlip_transfer.budget.settings import DataBudgetSettings

    settings = DataBudgetSettings(methods=args.methods, fractions=args.fractions,
                                  max_size=args.max_size, seeds=args.seeds,
                                  confidence=args.confidence)
    training = _training(args)
    frames, split, banner = _frames_and_split(args, training["functional"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_local(frames=frames, split=split, settings=settings, training=training, out_dir=out,
              measure_full=args.measure_full, banner=banner)
    print((out / MARKDOWN_FILE).read_text())
    print(f"data-budget estimate written to {out}")
    return 0
