"""Rebuild the surrogate default dataset with the teachers of the config (data.default.build)."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.jobs import build_default_dataset


def main(smk) -> None:
    with rule_log(smk.log[0], "build_default_dataset"):
        build_default_dataset(
            wbm=smk.input.wbm,
            elements=smk.input.elements,
            out_dir=Path(smk.output.frames).parent,
            settings=smk.params.settings,
            processes=smk.threads,
        )


# Worker processes are spawned and re-import this file: only the parent may build.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821
