"""Configuration checks that a JSON schema cannot express, and loading outside Snakemake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlip_transfer.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def check_config(config: dict[str, Any]) -> None:
    """Cross-field checks; raises ConfigError naming the key and the fix."""
    fractions = config["split"]["fractions"]
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"split.fractions must sum to 1, got {fractions} (sum {sum(fractions):g})")
    data = config["data"]
    if data["source"] == "extxyz" and not data["extxyz"]["paths"]:
        raise ConfigError("data.source is 'extxyz' but data.extxyz.paths is empty: list your .xyz files")
    filters = config["filters"]
    if filters["max_energy_below_relaxed"] >= filters["max_energy_above_relaxed"]:
        raise ConfigError(
            "filters.max_energy_below_relaxed must be smaller than filters.max_energy_above_relaxed"
        )
    if "elements" in config:
        check_elements_config(config["elements"])
    if "data_budget" in config:
        check_data_budget_config(config["data_budget"], training=config["training"])


def check_data_budget_config(section: dict[str, Any], *, training: dict[str, Any]) -> None:
    """The data-budget settings (their dataclass checks them) and, with a training cap, that
    the fractions give distinct sizes below it."""
    from mlip_transfer.budget.settings import DataBudgetSettings

    settings = DataBudgetSettings.from_config(section)
    if training.get("max_train_frames"):
        settings.sizes(training["max_train_frames"])


def check_elements_config(elements: dict[str, Any]) -> None:
    """Cross-field checks of the Si -> Ge stage (``elements:``)."""
    sizes = elements["data_efficiency"]["sizes"]
    if max(sizes) + elements["validation_size"] > elements["pool_size"]:
        raise ConfigError(
            f"elements.data_efficiency.sizes go up to {max(sizes)} with validation_size "
            f"{elements['validation_size']} but elements.pool_size is {elements['pool_size']}: "
            "the pool must hold the largest training set and the validation frames"
        )
    extra = sorted(set(elements["temperature"]["sizes"]) - set(sizes))
    if extra:
        raise ConfigError(
            f"elements.temperature.sizes {extra} are not in elements.data_efficiency.sizes "
            "(the temperature test reuses those models)"
        )
    if elements["stability"]["train_size"] not in sizes:
        raise ConfigError(
            f"elements.stability.train_size {elements['stability']['train_size']} is not in "
            "elements.data_efficiency.sizes (the MD runs reuse those models)"
        )
    if len(elements["pretrain_temperatures"]) > elements["pretrain_pool_size"]:
        raise ConfigError("elements.pretrain_pool_size must give each pretrain temperature a frame")
    for stage in ("pretrain", "finetune"):
        training = elements[stage]
        if training["final_learning_rate"] > training["learning_rate"]:
            raise ConfigError(f"elements.{stage}.final_learning_rate exceeds its learning_rate")
        if training["patience"] and not training["validate_every"]:
            raise ConfigError(f"elements.{stage}.patience needs validate_every >= 1")
    if elements["pretrain"]["patience"]:
        raise ConfigError("elements.pretrain.patience must be 0: the Si pool has no validation frames")
    if elements["finetune"]["patience"] and not elements["validation_size"]:
        raise ConfigError("elements.finetune.patience needs validation_size >= 1")


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Validate against the workflow's schema and the cross-field checks (for use outside Snakemake)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as exc:
        key = ".".join(str(part) for part in exc.absolute_path) or "(top level)"
        raise ConfigError(f"config key {key}: {exc.message}") from exc
    check_config(config)
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a YAML configuration file."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a YAML mapping of config keys, got {type(config).__name__}")
    try:
        return validate_config(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
