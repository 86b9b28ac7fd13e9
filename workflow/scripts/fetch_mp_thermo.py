"""Fetch Materials Project GGA/GGA+U and r2SCAN thermo documents for the target's material ids."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.loaders import mp_api

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "fetch_mp_thermo") as log:
    mp_api.fetch_thermo_for_trajectory_file(smk.input.r2scan, smk.output[0])
