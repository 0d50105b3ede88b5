"""The limits of the config loader keep legitimate configs loading and every message short. (The bombs themselves,
a config expanding to gigabytes or nesting a thousand levels, go through the real process in the hostile suite:
tests/resilience/test_hostile.py.)"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml

from bot.config import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_EXPANDED, ConfigError, load_config, read_yaml

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


# ---------------------------------------------------------------- in-process: what the operator reads


def laughs(levels: int) -> str:
    """Anchors that each repeat the one before ten times, under `lol`: 10**levels strings once expanded."""
    lines = ["lol:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        read_yaml(text)
    return err.value.problems


def expands_msg(path: str) -> str:
    return (f"{path}: expands to more than {MAX_EXPANDED:,} values and characters through YAML aliases "
            "(&anchor/*alias); write the value out instead")


def test_a_billion_laughs_is_refused_naming_every_key_that_expands_too_far() -> None:
    # l0 holds 41 values and characters, each level ten times the one before: l5 (about 4.1 million) and up are over
    assert problems_of(laughs(9)) == [expands_msg(f"lol.l{i}") for i in (5, 6, 7, 8)]


def test_an_alias_bomb_deep_in_the_config_is_named_by_its_full_path() -> None:
    text = laughs(5) + "routing:\n  pools:\n    dach:\n      members: [" + ", ".join(["*l4"] * 10) + "]\n"
    assert problems_of(text) == [expands_msg("routing.pools.dach.members")]


def test_an_alias_that_contains_itself_is_refused_naming_its_key() -> None:
    assert problems_of("company:\n  domains: &loop [*loop]\n") == [expands_msg("company.domains")]


def test_a_mapping_that_contains_itself_is_refused_naming_its_key() -> None:
    assert problems_of("routing:\n  pools: &p {dach: *p}\n") == [expands_msg("routing.pools")]


def sized(total: int) -> str:
    """A document holding exactly `total` values and characters once its aliases are expanded: a mapping of three
    keys (`pad`, `big`, `rest`: 1 + 4 + 4 + 5), a 999-character string (1 + 999), a list of 1,990 aliases to it
    (1 + 1,990 * 1,000) and a string of the remaining characters."""
    rest = total - (1 + 4 + 4 + 5) - 1000 - (1 + 1990 * 1000) - 1
    return f"pad: &p {'x' * 999}\nbig: [{', '.join(['*p'] * 1990)}]\nrest: {'y' * rest}\n"


def test_a_document_expanding_to_exactly_the_limit_loads_and_one_character_more_does_not() -> None:
    data = read_yaml(sized(MAX_EXPANDED))
    assert len(data["big"]) == 1990 and data["big"][0] == "x" * 999
    # no single key holds the excess: the whole document is named
    assert problems_of(sized(MAX_EXPANDED + 1)) == [expands_msg("(top level)")]


def test_a_key_expanding_to_exactly_the_limit_is_not_blamed_for_the_excess() -> None:
    text = sized(MAX_EXPANDED)
    inner = "doc:\n" + "".join(f"  {line}\n" for line in text.splitlines())
    # `doc` holds the limit exactly (its key and the outer mapping add 5 values and characters)
    assert problems_of(inner) == [expands_msg("(top level)")]
    assert problems_of(inner.replace("rest: y", "rest: yy")) == [expands_msg("doc")]


def test_a_value_under_a_key_that_is_not_text_is_named_by_a_question_mark() -> None:
    text = laughs(5) + "? [a, b]\n: [" + ", ".join(["*l4"] * 10) + "]\n"
    assert problems_of(text) == [expands_msg("?")]


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_thirty_two_levels_of_nesting_load_and_thirty_three_do_not() -> None:
    data, depth = read_yaml(nested(MAX_DEPTH)), 1
    while data:
        data, depth = data[0], depth + 1
    assert data == [] and depth == MAX_DEPTH
    assert problems_of(nested(MAX_DEPTH + 1)) == [f"{'[0]' * (MAX_DEPTH - 1)}: nested more than {MAX_DEPTH} "
                                                  "levels deep (line 1)"]


@pytest.mark.parametrize(("text", "path", "line"), [
    ("company:\n  name:\n    - a\n    - " + nested(40) + "\n", "company.name[1]" + "[0]" * 28, 4),
    ("X-Labels:\n  " + nested(40) + "\n", "X-Labels" + "[0]" * 30, 2),
    ("? " + nested(40) + "\n: 1\n", "?" + "[0]" * 30, 1),
    ("a:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(40)), "a." + ".".join(f"k{i}" for i in range(30)),
     32),
], ids=["list in a mapping", "key starting with X", "key that is not text", "mappings"])
def test_too_deep_nesting_is_named_by_its_yaml_path_and_line(text: str, path: str, line: int) -> None:
    assert problems_of(text) == [f"{path}: nested more than {MAX_DEPTH} levels deep (line {line})"]


def deep_keys(first: int) -> str:
    """Mappings nested past the limit under a first key of `first` characters and then 5-character keys: the path
    of the refused level has that key and 30 more, joined by 30 dots."""
    keys = ["a" * first] + [f"k{i:04d}" for i in range(40)]
    return "".join("  " * i + f"{k}:\n" for i, k in enumerate(keys))


def test_a_long_path_is_cut_to_two_hundred_characters_in_the_message() -> None:
    whole = "a" * 20 + "".join(f".k{i:04d}" for i in range(30))
    assert len(whole) == 200
    assert problems_of(deep_keys(20)) == [f"{whole}: nested more than {MAX_DEPTH} levels deep (line 32)"]
    cut = "a" * 21 + "".join(f".k{i:04d}" for i in range(30))
    assert problems_of(deep_keys(21)) == [f"{cut[:199]}…: nested more than {MAX_DEPTH} levels deep (line 32)"]


def test_a_key_up_to_120_characters_is_named_as_written_and_a_longer_one_is_shortened() -> None:
    keys = {"k" * 120: "k" * 120, "k" * 121: "'" + "k" * 57 + "..." + "k" * 58 + "'", 7: "7"}
    for key, shown in keys.items():
        text = f"{key}:\n  " + nested(40) + "\n"
        assert problems_of(text)[0].startswith(shown + "[0]"), key


# ---------------------------------------------------------------- the file itself


def test_a_file_of_exactly_the_size_limit_loads_and_one_byte_more_does_not(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    body = SHIPPED.encode("utf-8")
    padded = body + b"#" + b"x" * (MAX_CONFIG_BYTES - len(body) - 2) + b"\n"
    assert len(padded) == MAX_CONFIG_BYTES
    path.write_bytes(padded)
    assert load_config(path).company == load_config(ROOT / "config.yaml").company
    path.write_bytes(padded + b"\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: 1 problem(s):\n  - the config file is larger than 1024 KB"


def test_a_config_path_naming_an_endless_stream_is_refused_without_reading_it_to_the_end(tmp_path: Path) -> None:
    # a config path pointed at a pipe or a device by mistake: the loader stops one byte past the limit
    path = tmp_path / "config.yaml"
    os.mkfifo(path)
    offered = 8 * MAX_CONFIG_BYTES
    written: list[int] = []

    def feed() -> None:
        fd, sent = os.open(path, os.O_WRONLY), 0
        try:
            while sent < offered:
                sent += os.write(fd, b"#" * min(65536, offered - sent))
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)
            written.append(sent)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(ConfigError) as err:
        load_config(path)
    writer.join(timeout=30)

    assert str(err.value) == f"{path}: 1 problem(s):\n  - the config file is larger than 1024 KB"
    assert written and written[0] < offered


@pytest.mark.parametrize(("content", "problem"), [
    (None, "cannot read the config file: No such file or directory"),
    (b"company: \xff\n", "not UTF-8 text: invalid start byte at byte 9"),
    (b"company: [unclosed\n", "not valid YAML: "),
    (("company:\n  name: " + nested(40) + "\n").encode(), "company.name" + "[0]" * 29 + ": nested more than"),
], ids=["missing", "not UTF-8", "not YAML", "too deep"])
def test_every_file_error_names_the_file(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "ops-config.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: 1 problem(s):\n  - {problem}")
