"""Split the parsed dataset 8:1:1 by material id and write its size statistics."""

import json
from pathlib import Path

from mlip_transfer.core.logs import rule_log
from mlip_transfer.core.provenance import DataSource
from mlip_transfer.data.dataset import read_materials
from mlip_transfer.data.split import split_materials, write_split
from mlip_transfer.data.summary import dataset_statistics, frame_table

smk = snakemake  # noqa: F821
with rule_log(smk.log[0], "split_dataset") as log:
    settings = smk.params.split
    materials = read_materials(smk.input.materials)
    frames = frame_table(smk.input.frames)
    # Only materials that kept frames are split; elemental references may be forced into training.
    material_ids = sorted(frames["material_id"].unique())
    forced = []
    if settings["elemental_references_in_train"]:
        references = set(materials.loc[materials["is_elemental_reference"], "material_id"])
        forced = sorted(references.intersection(material_ids))
    assignment = split_materials(
        material_ids, fractions=tuple(settings["fractions"]), seed=settings["seed"], force_train=forced
    )
    write_split(smk.output.split, assignment)
    frames["split"] = frames["material_id"].map(assignment)
    stats = {"data_source": DataSource.read(Path(smk.input.provenance).parent).name}
    stats.update(dataset_statistics(frames, materials))
    with open(smk.output.statistics, "w") as handle:
        json.dump(stats, handle, indent=2)
    log.info("split: %s", stats["materials_per_split"])
