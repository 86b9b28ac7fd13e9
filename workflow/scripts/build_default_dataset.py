"""Rebuild the surrogate default dataset with the two pretrained CHGNet models."""

from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.surrogate import BuildSettings, build_surrogate_dataset


def main(smk) -> None:
    with rule_log(smk.log[0], "build_default_dataset") as log:
        settings = BuildSettings(**{**smk.params.settings, "processes": smk.threads})
        summary = build_surrogate_dataset(
            wbm_path=smk.input.wbm,
            elemental_path=smk.input.elements,
            out_dir=Path(smk.output.frames).parent,
            settings=settings,
        )
        log.info("built: %s", summary)


# Worker processes are spawned and re-import this file: only the parent may build.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821
