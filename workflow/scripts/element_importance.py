"""Decision-tree importance of each element for the GGA/GGA+U − r2SCAN formation-energy difference (Fig. 1c/1d)."""

import pandas as pd

from mlip_transfer.core.logs import rule_log
from mlip_transfer.data.dataset import read_materials
from mlip_transfer.energy_scale.importance import (
    element_feature_importance,
    formation_energy_difference,
)

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "element_importance") as log:
    materials = read_materials(smk.input.materials)
    tree = smk.params.tree
    tables = []
    for corrected, scale in ((True, smk.params.scale_corrected), (False, smk.params.scale_uncorrected)):
        # Materials without a finite formation energy in both functionals are counted, not hidden.
        delta = formation_energy_difference(materials, corrected=corrected, on_missing="drop")
        if delta.attrs["dropped"]:
            log.warning(
                "%s corrections: %d materials left out for a missing formation energy: %s",
                "with" if corrected else "without",
                len(delta.attrs["dropped"]),
                delta.attrs["dropped"][:20],
            )
        table = element_feature_importance(delta["formula"], delta["delta"], scale=scale, **tree)
        table.insert(0, "corrections", corrected)
        tables.append(table)
        top = table.sort_values("normalised", ascending=False).head(10)["element"].tolist()
        log.info("%s MP2020 corrections: %d materials, top elements %s", "with" if corrected else "without", len(delta), top)
    pd.concat(tables, ignore_index=True).to_csv(smk.output[0], index=False)
