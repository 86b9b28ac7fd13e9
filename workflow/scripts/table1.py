"""Collect every model's metrics into Table 1 (CSV and markdown beside the paper's numbers)."""

import json
from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.transfer.table1 import table1, table1_markdown

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "table1") as log:
    rows = [json.loads(Path(path).read_text()) for path in smk.input.metrics]
    table = table1(rows)
    table.to_csv(smk.output.csv, index=False)
    source = DataSource.read(Path(smk.input.provenance).parent)
    settings = smk.params.training
    header = [
        "# Table 1: test-split errors and stability of each model",
        "",
        f"**{source.banner}.** {source.caveat}",
        "",
        f"Training: {settings['epochs']} epochs, batch {settings['batch_size']}, lr "
        f"{settings['learning_rate']} cosine to {settings['final_learning_rate']}, loss "
        f"{settings['criterion']} {settings['loss_ratios']}"
        + (
            f", at most {settings['max_train_frames']} training frames"
            if settings["max_train_frames"]
            else ", every training frame"
        )
        + ("" if settings["epochs"] >= 50 else " (scaled down from the paper's 50 epochs, batch 64)")
        + ".",
        "",
    ]
    Path(smk.output.markdown).write_text("\n".join(header) + table1_markdown(table) + "\n")
    log.info("\n%s", table.to_string())
