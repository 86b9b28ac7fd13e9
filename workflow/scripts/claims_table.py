"""The claims table: each claim of the two studies, what this run shows, and a verdict."""

from pathlib import Path

from mlip_transfer.claims.jobs import claims_table
from mlip_transfer.core.logs import rule_log

smk = snakemake  # noqa: F821
results = ("correlation", "importance", "table1", "density_summary", "density_all",
           "scaling_fits", "scaling_results", "efficiency", "temperature", "stability",
           "ablation")
with rule_log(smk.log[0], "claims_table"):
    claims_table(
        inputs={**{name: smk.input[name] for name in results},
                "gradients": list(smk.input.gradients)},
        data_dir=Path(smk.input.provenance).parent,
        elements_data_dir=Path(smk.input.elements_provenance).parent,
        training=smk.params.training,
        elements_settings=smk.params.elements,
        settings=smk.params.claims,
        workdir=smk.params.workdir,
        out_csv=smk.output.csv,
        out_json=smk.output.json,
        out_markdown=smk.output.markdown,
        out_html=smk.output.html,
    )
