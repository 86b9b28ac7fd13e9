"""Download one registry file and keep it only if its size and checksum verify."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.registry import download, load_registry

with rule_log(snakemake.log[0], f"download {snakemake.params.entry}"):  # noqa: F821
    entry = load_registry("resources/registry.yaml")[snakemake.params.entry]  # noqa: F821
    download(entry, snakemake.output[0])  # noqa: F821
