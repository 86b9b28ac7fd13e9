"""data_budget settings: sizes from fractions of the full size, the cap, and errors naming keys."""

from __future__ import annotations

import pytest

from mlip_transfer.budget.settings import DataBudgetSettings
from mlip_transfer.core.errors import ConfigError

METHODS = ["4_refit_atomref", "4r_residual_atomref", "1_scratch"]


def test_sizes_are_fractions_of_the_full_size():
    settings = DataBudgetSettings(methods=METHODS, fractions=[0.5, 0.125, 0.25])
    assert settings.sizes(350) == {0.125: 44, 0.25: 88, 0.5: 175}


def test_the_cap_scales_every_size_by_one_factor():
    settings = DataBudgetSettings(methods=METHODS, fractions=[0.125, 0.25, 0.5], max_size=100)
    assert settings.sizes(4000) == {0.125: 25, 0.25: 50, 0.5: 100}


@pytest.mark.parametrize(
    ("changes", "key"),
    [({"fractions": [0.5]}, "data_budget.fractions"),
     ({"fractions": [0.5, 1.0]}, "data_budget.fractions"),
     ({"methods": ["5_magic"]}, "data_budget.methods"),
     ({"confidence": 1.5}, "data_budget.confidence"),
     ({"atomref_frames": "some"}, "data_budget.atomref_frames"),
     ({"seeds": []}, "data_budget.seeds"),
     ({"max_size": 1}, "data_budget.max_size")],
)
def test_bad_settings_name_their_key(changes, key):
    with pytest.raises(ConfigError, match=key):
        DataBudgetSettings(**{"methods": METHODS, "fractions": [0.25, 0.5], **changes})


def test_too_few_training_frames_for_distinct_sizes():
    settings = DataBudgetSettings(methods=METHODS, fractions=[0.1, 0.12])
    with pytest.raises(ConfigError, match="distinct sizes below the full size"):
        settings.sizes(8)


def test_config_files_hold_valid_settings():
    from mlip_transfer.core.config import REPO_ROOT, load_config

    for name in ("config.yaml", "smoke.yaml", "paper.yaml"):
        section = load_config(REPO_ROOT / "config" / name)["data_budget"]
        assert DataBudgetSettings.from_config(section).methods


def test_the_workflow_config_check_refuses_bad_data_budget_settings():
    from mlip_transfer.core.config import REPO_ROOT, load_config, validate_config

    config = load_config(REPO_ROOT / "config" / "smoke.yaml")
    config["data_budget"]["fractions"] = [0.01, 0.012]  # 1 and 1 of 64 frames
    with pytest.raises(ConfigError, match="distinct sizes"):
        validate_config(config)
    config["data_budget"]["fractions"] = [0.25, 1.5]
    with pytest.raises(ConfigError, match="data_budget.fractions"):
        validate_config(config)
