"""Evaluate one model on the test split: label errors, stability relaxations, hull errors."""

from mlip_transfer.core.logs import rule_log
from mlip_transfer.transfer.jobs import evaluate_model


def main(smk) -> None:
    with rule_log(smk.log[0], f"evaluate {smk.wildcards.model}"):
        evaluate_model(
            label=smk.wildcards.model,
            model=smk.input.model if hasattr(smk.input, "model") else smk.params.reference,
            frames=smk.input.frames,
            materials=smk.input.materials,
            split=smk.input.split,
            out_metrics=smk.output.metrics,
            out_relaxed=smk.output.relaxed,
            out_hull=smk.output.hull,
            out_predictions=smk.output.predictions,
            evaluation=smk.params.evaluation,
            functional=smk.params.functional,
            device=smk.params.device,
            processes=smk.threads,
            reference_relaxed=getattr(smk.input, "reference_relaxed", None),
        )


# Relaxation workers are spawned and re-import this file: only the parent evaluates.
if __name__ == "__main__":
    main(snakemake)  # noqa: F821
