"""Relax the strained benchmark solids with one model and compare densities with experiment."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.density.jobs import density_model


def main(smk) -> None:
    with rule_log(smk.log[0], f"density {smk.wildcards.model}"):
        density_model(
            label=smk.wildcards.model,
            model=smk.input.model if hasattr(smk.input, "model") else smk.params.reference,
            reference=smk.input.reference,
            out_table=smk.output.table,
            out_relaxed=smk.output.relaxed,
            density=smk.params.density,
            processes=smk.threads,
        )


# Relaxation workers are spawned and re-import this file: only the parent runs.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821
