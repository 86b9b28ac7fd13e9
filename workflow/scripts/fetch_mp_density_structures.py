"""Fetch structures of the benchmark solids (ICSD-sourced materials) from the MP API, once."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.density.jobs import fetch_mp_density_structures

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "fetch_mp_density_structures"):
    fetch_mp_density_structures(experimental_csv=smk.input[0], out=smk.output[0])
