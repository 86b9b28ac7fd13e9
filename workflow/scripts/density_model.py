"""Relax the strained benchmark solids with one model and compare densities with experiment."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.density.benchmark import (
    density_table,
    mp_reference_table,
    read_experimental,
    strained,
)
from mlip_transfer.transfer.relaxation import relax_structures


def main(smk) -> None:
    label, settings = smk.wildcards.model, smk.params.density
    with rule_log(smk.log[0], f"density {label}") as log:
        if settings["structures"] == "mp_api":
            reference = mp_reference_table(smk.input.reference)
            if settings["systems"]:
                reference = reference[reference["system"].isin(settings["systems"])]
        else:
            reference = read_experimental(smk.input.reference, systems=settings["systems"])
        starts = {
            row.system: strained(row.structure, settings["strain"])
            for row in reference.itertuples(index=False)
        }
        model_ref = smk.input.model if hasattr(smk.input, "model") else smk.params.reference
        relaxed = relax_structures(
            starts,
            model_path_or_name=model_ref,
            fmax=settings["fmax"],
            max_steps=settings["max_steps"],
            processes=smk.threads,
        )
        relaxed.to_csv(smk.output.relaxed, index=False)
        table = density_table(relaxed, reference, model=label)
        table.to_csv(smk.output.table, index=False)
        log.info("\n%s", table.drop(columns=["model"]).to_string())


# Relaxation workers are spawned and re-import this file: only the parent runs.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821
