"""Command line of the surrogate build: ``python -m mlip_transfer.data.surrogate --help``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from mlip_transfer.core.files import dumps_json
from mlip_transfer.data.surrogate.build import build_surrogate_dataset
from mlip_transfer.data.surrogate.settings import (
    DEFAULT_ELEMENTAL_PATH,
    DEFAULT_OUT_DIR,
    DEFAULT_WBM_PATH,
    BuildSettings,
)
from mlip_transfer.data.surrogate.teacher_models import TEACHERS


def _parser() -> argparse.ArgumentParser:
    defaults = BuildSettings()
    parser = argparse.ArgumentParser(
        prog="python -m mlip_transfer.data.surrogate",
        description="Build the surrogate GGA/r2SCAN dataset, labelled by pretrained potentials "
        "(--teachers: one GGA teacher and one or more r2SCAN teachers).",
    )
    parser.add_argument("--wbm", type=Path, default=DEFAULT_WBM_PATH, help="WBM json.gz")
    parser.add_argument("--elemental", type=Path, default=DEFAULT_ELEMENTAL_PATH,
                        help="MatPES-PBE elemental references json.gz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="output folder")
    parser.add_argument("--material-ids", nargs="+", default=None,
                        help="build exactly these materials (plus their elemental references)")
    # One flag per build setting, so a new setting needs no new flag here.
    for item in fields(BuildSettings):
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="+", default=default, metavar="NAME",
                                help=f"default {' '.join(default)}; known: {', '.join(TEACHERS)}")
        else:
            parser.add_argument(flag, type=type(default), default=default,
                                help=f"default {default}")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry: ``python -m mlip_transfer.data.surrogate --help``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = BuildSettings(**{f.name: getattr(args, f.name) for f in fields(BuildSettings)})
    summary = build_surrogate_dataset(
        wbm_path=args.wbm,
        elemental_path=args.elemental,
        out_dir=args.out,
        settings=settings,
        material_ids=args.material_ids,
        progress=not args.no_progress,
    )
    print(dumps_json({k: v for k, v in summary.items() if k != "elements"}))
    return summary
