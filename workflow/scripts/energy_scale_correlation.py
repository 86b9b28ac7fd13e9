"""Pearson rho of GGA/GGA+U vs r2SCAN relaxed energies, raw and after AtomRef referencing (Fig. 2b)."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.energy_scale.jobs import correlation

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "energy_scale_correlation"):
    correlation(
        materials=smk.input.materials,
        atomrefs=smk.input.atomrefs,
        data_dir=smk.params.data_dir,
        bootstrap=smk.params.bootstrap,
        seed=smk.params.seed,
        out_correlation=smk.output.correlation,
        out_referenced=smk.output.referenced,
    )
