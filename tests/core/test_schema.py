"""The workflow's config schema read strictly: a duplicated key at any level is an error.

PyYAML's loaders keep the last of two equal keys without a word, which once made some sections
of the schema silently optional (two top-level ``required:`` lists).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlip_transfer.core.config import SCHEMA_PATH, validate_config
from mlip_transfer.core.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "config").glob("*.yaml"))


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice, at every level."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r} (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def strict_load(text: str):
    return yaml.load(text, Loader=StrictLoader)


@pytest.mark.parametrize(
    "text",
    ["a: 1\na: 2\n", "a:\n  b: 1\n  b: 2\n", "a:\n  - {c: 1, c: 2}\n"],
    ids=["top", "nested", "in a list"],
)
def test_the_strict_loader_rejects_duplicates_at_every_level(text):
    assert yaml.safe_load(text)  # what PyYAML itself accepts silently
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        strict_load(text)


def test_schema_and_configs_have_no_duplicate_keys():
    strict_load(SCHEMA_PATH.read_text())
    assert [path.name for path in CONFIGS] == ["config.yaml", "paper.yaml", "smoke.yaml"]
    for path in CONFIGS:
        strict_load(path.read_text())


def test_every_section_of_the_configs_is_required():
    schema = strict_load(SCHEMA_PATH.read_text())
    sections = [set(strict_load(path.read_text())) for path in CONFIGS]
    assert set(schema["required"]) == set.intersection(*sections) == set(schema["properties"])
    config = strict_load(CONFIGS[0].read_text())
    for section in ("scaling", "density", "elements"):  # optional under the duplicate key
        without = {key: value for key, value in config.items() if key != section}
        with pytest.raises(ConfigError, match=f"'{section}' is a required property"):
            validate_config(without)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_each_shipped_config_validates(path):
    validate_config(strict_load(path.read_text()))


def test_schema_declares_every_extxyz_setting_with_the_loaders_default():
    """Every setting the extended XYZ loader reads is in the schema, typed, with its default."""
    from dataclasses import fields

    from mlip_transfer.data.loaders.extxyz import ExtxyzConfig
    from mlip_transfer.data.sources import _KNOWN_SETTINGS

    extxyz = strict_load(SCHEMA_PATH.read_text())["properties"]["data"]["properties"]["extxyz"]
    declared = extxyz["properties"]
    assert set(declared) == _KNOWN_SETTINGS["extxyz"] - {"material_ids", "max_materials"}
    for item in fields(ExtxyzConfig):
        assert declared[item.name]["default"] == item.default, item.name
        assert declared[item.name]["type"] == "string" and declared[item.name]["description"]
    config = strict_load(CONFIGS[0].read_text())
    config["data"]["extxyz"] |= {"energy_key": "REF_energy", "forces_key": "REF_forces"}
    validate_config(config)
    for bad in ({"energy_key": ""}, {"stress_key": 3}, {"forces_name": "F"}):
        broken = strict_load(CONFIGS[0].read_text())
        broken["data"]["extxyz"] |= bad
        with pytest.raises(ConfigError):
            validate_config(broken)
