"""Sample Stillinger-Weber reference frames of one element and set, at each of its temperatures."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.elements.jobs import sample_set

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], f"sw_frames {smk.wildcards.element} {smk.wildcards.set}"):
    sample_set(
        out=smk.output[0],
        element=smk.wildcards.element,
        set_name=smk.wildcards.set,
        sizes=smk.params.sizes,
        sampling=smk.params.sampling,
        seed=smk.params.seed,
    )
