"""Escaping of untrusted mail text for the places it is shown: spreadsheet cells and Slack messages."""

from __future__ import annotations

import re
from typing import Any

# Characters that make Sheets, Excel or LibreOffice read a cell as a formula (OWASP "CSV injection").
# RAW input already stores text as text; the prefix also protects a CSV export or a copy-paste of the cell.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Google Sheets rejects a cell longer than this with 400 INVALID_ARGUMENT, failing the whole append.
SHEET_CELL_MAX = 50_000
# C0/C1 controls except tab and newline, plus bidi overrides that can make text read backwards.
_SLACK_STRIP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def sheet_cell(value: Any, limit: int = SHEET_CELL_MAX) -> str:
    """One cell's text: never a formula, never longer than Sheets accepts."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a number cannot carry a formula; "-0.5" stays readable
    text = str(value)
    if _guarded(text):
        text = "'" + text
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def sheet_cell_text(cell: str) -> str:
    """The text sheet_cell() was given, read back from a cell (undoes the formula guard)."""
    return cell[1:] if cell.startswith("'") and _guarded(cell[1:]) else cell


def _guarded(text: str) -> bool:
    """Text that gets the quote prefix: formula-like, or quotes already followed by something formula-like (else
    reading "'=" back could not tell it from a guarded "=" and would drop the quote)."""
    return text.lstrip("'").startswith(_FORMULA_START)


def slack_text(value: Any) -> str:
    """Text safe inside a Slack message: no mentions, links or broadcasts can be formed from it."""
    if value is None:
        return ""
    text = _SLACK_STRIP.sub("", str(value))
    # & first, or the entities made for < and > would be escaped a second time.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
