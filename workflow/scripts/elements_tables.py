"""Collect the Ge models' test errors: the data-efficiency and temperature tables."""

import json
from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.elements import experiments as X

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "elements_tables") as log:
    settings = smk.params.elements
    metrics = X.read_metrics(smk.input.metrics)
    metrics.to_csv(smk.output.metrics, index=False)
    efficiency = X.data_efficiency(metrics, temperature=settings["train_temperature"])
    efficiency.to_csv(smk.output.efficiency, index=False)
    temperature = X.temperature_transfer(metrics, sizes=settings["temperature"]["sizes"])
    temperature.to_csv(smk.output.temperature, index=False)
    source = DataSource.read(Path(smk.input.provenance).parent)
    pretrained = json.loads(Path(smk.input.pretrained).read_text())
    text = [
        "# Si -> Ge transfer: Ge test errors against training-set size",
        "",
        f"**{source.banner}.** {source.caveat}",
        "",
        X.scale_statement(settings),
        "",
        f"Test set: {settings['test_size']} Ge frames at {settings['train_temperature']:g} K (the "
        "training temperature) from trajectories not used for training; force MAE over force "
        "components, energy MAE per atom; mean ± sample standard deviation over seeds.",
        "",
        X.data_efficiency_markdown(efficiency),
        f"Si pre-training: {pretrained['frames']} frames, {pretrained['steps']} steps; Si test "
        + ", ".join(
            f"{row['temperature']:g} K force MAE {row['force_mae_mev_per_a']:.1f} meV/Å"
            for row in pretrained["test"]
        )
        + ".",
        "",
        f"The study: {X.PAPER['data_efficiency']}.",
    ]
    Path(smk.output.markdown).write_text("\n".join(text) + "\n")
    log.info("\n%s", efficiency.to_string())
