"""Collect every model's densities: one long table and the MAE / ratio summary per model."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.density.jobs import density_summary

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "density_summary"):
    density_summary(
        tables=smk.input.tables,
        provenance=smk.input.provenance,
        structures=smk.params.structures,
        out_table=smk.output.table,
        out_summary=smk.output.summary,
        strain=smk.params.strain,
        step0_models=smk.params.step0_models,
    )
