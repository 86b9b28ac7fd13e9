"""Fetch Materials Project GGA/GGA+U and r2SCAN thermo docs for the target's material ids."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.jobs import fetch_mp_thermo

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "fetch_mp_thermo"):
    fetch_mp_thermo(r2scan_json=smk.input.r2scan, out=smk.output[0])
