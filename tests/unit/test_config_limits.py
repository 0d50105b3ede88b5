"""A config that would expand to gigabytes or nest a thousand levels deep is an ordinary config error.

Each case runs `run.py --config FILE check` in its own process under a generous address-space limit (1 GiB), so
an unbounded load fails the test by running out of memory instead of taking the machine's; the peak RSS the
kernel measured for that process (tests/peak.py) must stay under 100 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, read_yaml
from tests.peak import run_measured

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "config.yaml").read_text(encoding="utf-8")


def billion_laughs(levels: int = 9) -> str:
    """Anchors that each repeat the one before nine times: 9**levels strings once expanded."""
    lines = ['b0: &b0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def with_value(path: str, value: str, prefix: str = "") -> str:
    """The shipped config with the value at `path` ("company.name") replaced by raw YAML text."""
    section, key = path.split(".")
    start = SHIPPED.index(f"\n{section}:")
    line_start = SHIPPED.index(f"\n  {key}:", start) + 1
    line_end = SHIPPED.index("\n", line_start)
    return prefix + SHIPPED[:line_start] + f"  {key}: {value}" + SHIPPED[line_end:]


CASES = {
    "alias bomb in company.name": (with_value("company.name", "*b8", billion_laughs()), "company.name: expands"),
    "alias bomb in prefilter.block_senders": (
        with_value("prefilter.block_senders", "*b8", billion_laughs()), "prefilter.block_senders: expands"),
    "a long string repeated by aliases": (
        "s: &s " + "x" * 500_000 + "\n" + with_value("company.name", "[" + ", ".join(["*s"] * 200) + "]"),
        "company.name: expands"),
    "an alias that contains itself": (with_value("company.domains", "&loop [*loop]"), "company.domains: expands"),
    "1,000 levels of nesting": (with_value("company.name", "[" * 1000 + "]" * 1000),
                                "company.name[0][0]"),
    "1,000 levels of mappings": (with_value("company.name", "{a: " * 1000 + "1" + "}" * 1000),
                                 "company.name.a.a.a"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_config_bomb_is_a_config_error_in_bounded_memory(tmp_path: Path, case: str) -> None:
    text, where = CASES[case]
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    done = run_measured([sys.executable, str(ROOT / "run.py"), "--config", str(path), "check"], cwd=tmp_path,
                        limits={"RLIMIT_AS": 1 << 30, "RLIMIT_CPU": 60})  # the CPU limit guards the suite only
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"config error in {path}" in done.stderr and where in done.stderr, done.stderr[:2000]
    assert "Traceback" not in done.stderr and len(done.stderr) < 3000
    assert done.peak_mib < 100, f"peak RSS {done.peak_mib:.0f} MiB"


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
