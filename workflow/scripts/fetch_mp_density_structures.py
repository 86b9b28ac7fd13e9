"""Fetch structures of the benchmark solids (ICSD-sourced materials) from the MP API, once."""

import pandas as pd

from mlip_transfer.core.logs import rule_log
from mlip_transfer.density.benchmark import fetch_mp_structures, save_mp_structures

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "fetch_mp_density_structures") as log:
    table = pd.read_csv(smk.input[0], dtype=str)
    wanted = dict(zip(table["system"].str.strip(), table["structure"].str.strip().str.lower()))
    docs = fetch_mp_structures(wanted)
    save_mp_structures(smk.output[0], docs, requested=list(wanted))
    log.info("%d of %d solids found", len(docs), len(wanted))
