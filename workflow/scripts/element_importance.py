"""Decision-tree importance of each element for the GGA/GGA+U − r2SCAN formation-energy difference (Fig. 1c/1d)."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.energy_scale.jobs import element_importance

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "element_importance"):
    element_importance(
        materials=smk.input.materials,
        tree=smk.params.tree,
        scale_corrected=smk.params.scale_corrected,
        scale_uncorrected=smk.params.scale_uncorrected,
        frames=smk.input.frames,
        min_atoms=smk.params.min_atoms,
        out=smk.output[0],
    )
