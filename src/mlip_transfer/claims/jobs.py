"""The ``claims_table`` job: every claim of the two studies, computed from a run's results.

It reads what the other stages wrote (nothing is typed in by hand), decides each verdict with
:mod:`mlip_transfer.claims.verdicts`, and writes ``claims.csv``, ``claims.json`` (with the data
banner, teacher, date and commit), ``claims.md`` and ``claims.html`` (the report's front page).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from mlip_transfer.claims import benchmarks, elements, energy_scale, readers, render
from mlip_transfer.claims import table1 as t1
from mlip_transfer.claims.verdicts import Claim
from mlip_transfer.core.files import write_csv_atomic, write_json_atomic, write_text_atomic

logger = logging.getLogger("mlip_transfer.claims.jobs")

PathLike = str | Path
CSV_COLUMNS = ("id", "study", "claim", "paper", "this_run", "verdict", "needs", "flags",
               "sources", "data", "teacher")


def _gradients(paths: Sequence[PathLike]) -> tuple[dict[str, float] | None, int | None]:
    """Per layer the median M3/M4 gradient ratio, and the optimiser steps it was recorded over."""
    by_method = {Path(p).parent.name: readers.read_csv(p) for p in paths}
    pair = [by_method.get(m) for m in (t1.M3, t1.M4)]
    if any(table is None or table.empty for table in pair):
        return None, readers.epoch_steps(next((t for t in by_method.values() if t is not None), None))
    # Here, not at the top: the plots module loads matplotlib; the ratio is the figure's own.
    from mlip_transfer.plots.transfer import gradient_ratio

    ratio = gradient_ratio(pd.concat(pair, ignore_index=True), t1.M3, t1.M4)
    # The window: the optimiser steps both methods' gradients were recorded over.
    window = int(min(table["step"].max() for table in pair))
    return {str(k): float(v) for k, v in ratio.items()}, window


def _ablation_sentence(path: PathLike | None) -> str:
    """The gradient ablation's computed answer ("" without its ``ablation.json``)."""
    content = readers.read_json(path) if path else None
    return (content or {}).get("sentence", "")


def _table1_inputs(
    path: PathLike, gradients: Sequence[PathLike], *, training: Mapping[str, Any],
    origin: readers.Origin, tolerance: float,
) -> t1.Table1Inputs:
    table = readers.read_csv(path)
    per_epoch = max((readers.epoch_steps(readers.read_csv(p)) or 0 for p in gradients), default=0)
    return t1.Table1Inputs(
        rows=readers.table1_rows(table, training["methods"]),
        step0=readers.step0_rows(table, training["methods"]),
        steps=per_epoch * training["epochs"] if per_epoch else None,
        source=str(path), origin=origin, tolerance=tolerance,
    )


def cross_functional_claims(
    *, inputs: Mapping[str, Any], training: Mapping[str, Any], settings: Mapping[str, Any],
    origin: readers.Origin,
) -> list[Claim]:
    """Claims 1-9 (Huang et al.): energy scale, Table 1, Fig. 3a, density, scaling law.

    Args:
        inputs: Paths by name: ``correlation``, ``importance``, ``table1``, ``gradients`` (a
            list), ``density_summary``, ``density_all``, ``scaling_fits``, ``scaling_results``,
            and optionally ``ablation`` (the gradient ablation's ``ablation.json``).
        training: The config's ``training`` section (methods, epochs).
        settings: The config's ``claims`` section.
        origin: The dataset's origin.
    """
    tolerance = settings["point_tolerance"]
    table = _table1_inputs(inputs["table1"], inputs["gradients"], training=training,
                           origin=origin, tolerance=tolerance)
    ratios, window = _gradients(inputs["gradients"])
    density = benchmarks.DensityInputs(
        summary=readers.read_csv(inputs["density_summary"]),
        solids=readers.read_csv(inputs["density_all"]),
        method_flags={m: readers.flag_list(r.get("flags")) for m, r in table.rows.items()},
        sources=(str(inputs["density_summary"]), str(inputs["density_all"])), origin=origin,
        n_boot=settings["bootstrap"], seed=settings["seed"], confidence=settings["confidence"],
    )
    scaling = benchmarks.ScalingInputs(
        fits=readers.read_json(inputs["scaling_fits"]),
        results=readers.read_csv(inputs["scaling_results"]),
        sources=(str(inputs["scaling_fits"]), str(inputs["scaling_results"])), origin=origin,
    )
    return [
        energy_scale.rho_claim(correlation=readers.read_json(inputs["correlation"]), origin=origin,
                               source=str(inputs["correlation"]), tolerance=settings["similar_tolerance"]),
        *energy_scale.importance_claims(importance=readers.read_csv(inputs["importance"]),
                                        origin=origin, source=str(inputs["importance"]),
                                        confidence=settings["confidence"]),
        t1.m4_beats_m1(table),
        t1.m2_m3_negative_transfer(table, similar=settings["similar_tolerance"]),
        t1.gradient_claim(ratios=ratios, window=window, origin=origin,
                          sources=[str(p) for p in inputs["gradients"]]
                          + ([str(inputs["ablation"])] if inputs.get("ablation") else []),
                          ablation=_ablation_sentence(inputs.get("ablation"))),
        t1.m4_best_on(table, "decomposition_energy_mae_mev"),
        t1.m4_best_on(table, "formation_energy_mae_mev"),
        benchmarks.gga_underestimates_density(density),
        benchmarks.m4_lowest_density_error(density),
        benchmarks.scaling_slopes(scaling, "energy", tolerance=tolerance),
        benchmarks.scaling_slopes(scaling, "force", tolerance=tolerance),
        benchmarks.transfer_data_efficiency(scaling, tolerance=tolerance),
    ]


def cross_element_claims(
    *, inputs: Mapping[str, Any], settings: Mapping[str, Any], elements_settings: Mapping[str, Any],
    origin: readers.Origin,
) -> list[Claim]:
    """Claim 10 (Röcken & Zavadlav): data efficiency, stability, temperature, structure.

    Args:
        inputs: Paths by name: ``efficiency``, ``temperature``, ``stability``.
        settings: The config's ``claims`` section.
        elements_settings: The config's ``elements`` section.
        origin: The Ge dataset's origin.
    """
    data = elements.ElementInputs(
        efficiency=readers.read_csv(inputs["efficiency"]),
        temperature=readers.read_csv(inputs["temperature"]),
        stability=readers.read_json(inputs["stability"]), settings=elements_settings,
        sources=tuple(str(inputs[k]) for k in ("efficiency", "temperature", "stability")),
        origin=origin, tolerance=settings["point_tolerance"], confidence=settings["confidence"],
    )
    return [elements.data_efficiency(data), elements.stability(data),
            elements.temperature_transfer(data), elements.structure(data)]


def _record(claims: Sequence[Claim], origins: Mapping[str, readers.Origin], workdir: PathLike) -> dict:
    from mlip_transfer.core.report import git_state

    now = datetime.now(UTC)
    main = origins["cross-functional"]
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "date": now.date().isoformat(),
        "git": git_state(workdir),
        "data_banner": main.data,
        "teacher": main.teacher,
        "origins": {study: asdict(o) for study, o in origins.items()},
        "counts": render.counts_line([asdict(c) for c in claims]),
        "claims": [asdict(c) for c in claims],
    }


def _table(claims: Sequence[Claim]) -> pd.DataFrame:
    rows = [{**asdict(c), "flags": "; ".join(c.flags), "sources": " ".join(c.sources)}
            for c in claims]
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def claims_table(
    *, inputs: Mapping[str, Any], data_dir: PathLike, elements_data_dir: PathLike,
    training: Mapping[str, Any], elements_settings: Mapping[str, Any],
    settings: Mapping[str, Any], workdir: PathLike, out_csv: PathLike, out_json: PathLike,
    out_markdown: PathLike, out_html: PathLike,
) -> dict[str, Any]:
    """The ``claims_table`` job.

    Args:
        inputs: Result paths by name (see :func:`cross_functional_claims` and
            :func:`cross_element_claims`); an absent file makes its claims not testable.
        data_dir: The CHGNet stages' dataset folder (its ``provenance.json``).
        elements_data_dir: The Ge dataset folder of the Si -> Ge stage.
        training, elements_settings, settings: The config's ``training``, ``elements`` and
            ``claims`` sections.
        workdir: The workflow's checkout, whose git commit the record names.
        out_csv, out_json, out_markdown, out_html: Where the table goes.

    Returns:
        The record written to ``out_json``.
    """
    origins = {"cross-functional": readers.origin(data_dir),
               "cross-element": readers.origin(elements_data_dir)}
    claims = [
        *cross_functional_claims(inputs=inputs, training=training, settings=settings,
                                 origin=origins["cross-functional"]),
        *cross_element_claims(inputs=inputs, settings=settings, elements_settings=elements_settings,
                              origin=origins["cross-element"]),
    ]
    record = _record(claims, origins, workdir)
    write_csv_atomic(out_csv, _table(claims), index=False)
    write_json_atomic(out_json, record)
    write_text_atomic(out_markdown, render.claims_markdown(record))
    write_text_atomic(out_html, render.claims_html(record))
    for claim in claims:
        logger.info("%-32s %-28s %s", claim.id, claim.verdict, claim.this_run[:160])
    logger.info("%s", record["counts"])
    return record
