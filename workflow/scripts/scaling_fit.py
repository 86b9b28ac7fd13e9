"""Collect the scaling-law jobs and fit error against training-set size (paper Fig. 6)."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.scaling.jobs import scaling_fit

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "scaling_fit"):
    scaling_fit(
        results=smk.input.results, provenance=smk.input.provenance, table=smk.output.table,
        fits=smk.output.fits, scaling=smk.params.scaling,
    )
