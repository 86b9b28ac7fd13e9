import copy
from pathlib import Path

import pytest
import yaml

from mlip_transfer.core.config import load_config, validate_config
from mlip_transfer.core.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "config").glob("*.yaml"))


@pytest.fixture
def config():
    return load_config(CONFIGS[0])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    assert load_config(path)["output_dir"]


def test_shipped_configs_cover_default_smoke_and_paper():
    assert {p.stem for p in CONFIGS} >= {"config", "smoke", "paper"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["data"].update(source="mptrj"), r"data.source: 'mptrj' is not one of"),
        (lambda c: c["filters"].update(on_invalid_record="ignore"), "filters.on_invalid_record"),
        (lambda c: c["filters"].update(max_energy_above_relaxed=-1), "filters.max_energy_above_relaxed"),
        (lambda c: c["split"].update(fractions=[0.8, 0.2]), "split.fractions"),
        (lambda c: c["split"].update(fractions=[0.8, 0.1, 0.2]), "must sum to 1"),
        (lambda c: c["data"]["default"]["build"].update(processes=0), "build.processes"),
        (lambda c: c.update(outptu_dir="x"), "outptu_dir"),
        (lambda c: c["data"].update(source="extxyz"), "data.extxyz.paths is empty"),
        (lambda c: c["figures"].update(formats=["jpeg"]), "figures.formats.0"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(config, edit, message):
    bad = copy.deepcopy(config)
    edit(bad)
    with pytest.raises(ConfigError, match=message):
        validate_config(bad)


def test_load_config_names_the_file(tmp_path, config):
    bad = copy.deepcopy(config)
    bad["split"]["seed"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=r"bad.yaml: config key split.seed"):
        load_config(path)


def test_a_file_that_is_not_a_config_is_named(tmp_path):
    path = tmp_path / "frames.xyz"
    path.write_text("2\nLattice=...\nSi 0 0 0\n")
    with pytest.raises(ConfigError, match=r"frames.xyz: expected a YAML mapping"):
        load_config(path)


def _merged(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile merge: nested mappings update, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


@pytest.mark.parametrize("path", sorted((CONFIGS[0].parent / "overlays").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_overlay_on_the_default_config_is_valid(path):
    """Overlays (`--configfile config/overlays/X.yaml`) hold only what they change."""
    overlay = yaml.safe_load(path.read_text())
    base = yaml.safe_load(CONFIGS[0].read_text())
    validate_config(_merged(base, overlay))
    with pytest.raises(ConfigError):  # an overlay is not a config on its own
        validate_config(overlay)
