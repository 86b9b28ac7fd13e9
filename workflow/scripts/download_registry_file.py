"""Download one registry file and keep it only if its size and checksum verify."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.jobs import download_registry_file

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], f"download {smk.params.entry}"):
    download_registry_file(entry=smk.params.entry, out=smk.output[0])
