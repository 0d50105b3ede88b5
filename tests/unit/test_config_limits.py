"""The limits of the config loader keep legitimate configs loading and every message short. (The bombs themselves,
a config expanding to gigabytes or nesting a thousand levels, go through the real process in the hostile suite:
tests/resilience/test_hostile.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, read_yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")


def test_nesting_and_expansion_within_the_limits_still_load() -> None:
    data = read_yaml("a: &a {b: [1, 2, {c: [x, y]}]}\nd: *a\ne: " + "[" * 20 + "]" * 20 + "\n")
    assert data["d"] == data["a"] == {"b": [1, 2, {"c": ["x", "y"]}]}


def test_an_overlong_value_is_shown_cut_short_in_the_message(tmp_path: Path) -> None:
    data = yaml.safe_load(SHIPPED)
    data["company"]["name"] = ["x" * 100_000] * 50
    from bot.config import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(data, tmp_path / "config.yaml")
    assert len(str(err.value)) < 1000 and "company.name: expected a string" in str(err.value)
