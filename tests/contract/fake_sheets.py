"""A stateful fake of the Google Sheets v4 API: just what the audit sink and gspread use.

Cells are strings. A value written with USER_ENTERED that starts with "=" becomes a formula (kept in `formulas`),
the way the real service would evaluate it; RAW stores text as it is. Every write records its valueInputOption.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.httpfake import FakeServer, Request, Response

_CELL = re.compile(r"^([A-Z]*)(\d*)$")


@dataclass
class FakeSheet:
    sheet_id: int
    title: str
    rows: list[list[str]] = field(default_factory=list)
    formulas: set[tuple[int, int]] = field(default_factory=set)  # 0-based (row, col)
    bold_rows: set[int] = field(default_factory=set)
    frozen_rows: int = 0
    row_count: int = 1000
    column_count: int = 26

    def cell(self, row: int, col: int) -> str:
        return self.rows[row][col] if row < len(self.rows) and col < len(self.rows[row]) else ""

    def put(self, row: int, col: int, value: str, formula: bool) -> None:
        while len(self.rows) <= row:
            self.rows.append([])
        line = self.rows[row]
        line.extend([""] * (col + 1 - len(line)))
        line[col] = value
        (self.formulas.add if formula else self.formulas.discard)((row, col))
        self.row_count = max(self.row_count, row + 1)
        self.column_count = max(self.column_count, col + 1)

    def last_row(self) -> int:
        """Index of the last row holding any value, -1 when the sheet is empty."""
        return max((i for i, r in enumerate(self.rows) if any(r)), default=-1)

    def properties(self, index: int) -> dict[str, Any]:
        return {"sheetId": self.sheet_id, "title": self.title, "index": index, "sheetType": "GRID",
                "gridProperties": {"rowCount": self.row_count, "columnCount": self.column_count,
                                   "frozenRowCount": self.frozen_rows}}


def col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def col_letters(index: int) -> str:
    out, n = "", index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def _error(code: int, message: str, status: str) -> Response:
    return Response(code, {"error": {"code": code, "message": message, "status": status}})


class FakeSheets:
    """Register on a FakeServer; `spreadsheet_id` is the only spreadsheet that exists."""

    def __init__(self, srv: FakeServer, spreadsheet_id: str = "sheet-key", write_quota_per_minute: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.srv = srv
        self.spreadsheet_id = spreadsheet_id
        self.sheets: list[FakeSheet] = []
        self.write_quota = write_quota_per_minute
        self.clock = clock
        self.writes_per_minute: Counter[int] = Counter()
        self.value_input_options: list[str] = []  # one entry per values write, in order
        self.batch_requests: list[dict[str, Any]] = []
        self.lost_append_responses = 0  # the next N appends are stored, then answered 503 (a lost response)
        self._next_id = 100
        base = r"/v4/spreadsheets/(?P<sid>[^/:]+)"
        srv.route("GET", base, self._get)
        srv.route("POST", base + ":batchUpdate", self._batch_update)
        srv.route("GET", base + "/values/(?P<range>[^:]+)", self._values_get)
        srv.route("PUT", base + "/values/(?P<range>[^:]+)", self._values_update)
        srv.route("POST", base + "/values/(?P<range>[^:]+):append", self._values_append)
        srv.route("POST", base + "/values:batchUpdate", self._values_batch_update)

    # ------------------------------------------------------------ test helpers

    def add_sheet(self, title: str, rows: list[list[str]] | None = None) -> FakeSheet:
        sheet = FakeSheet(self._next_id, title)
        self._next_id += 1
        for r, line in enumerate(rows or []):
            for c, value in enumerate(line):
                sheet.put(r, c, value, formula=False)
        self.sheets.append(sheet)
        return sheet

    def sheet(self, title: str) -> FakeSheet:
        return next(s for s in self.sheets if s.title == title)

    def values(self, title: str) -> list[list[str]]:
        return [list(r) for r in self.sheet(title).rows]

    @property
    def write_count(self) -> int:
        return sum(self.writes_per_minute.values())

    # ------------------------------------------------------------ plumbing

    def _check(self, req: Request) -> Response | None:
        if not req.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "Request is missing required authentication credential.", "UNAUTHENTICATED")
        if req.match is None or req.match.group("sid") != self.spreadsheet_id:
            return _error(404, "Requested entity was not found.", "NOT_FOUND")
        return None

    def _count_write(self) -> Response | None:
        minute = int(self.clock() // 60)
        if self.write_quota is not None and self.writes_per_minute[minute] >= self.write_quota:
            return _error(429, "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per "
                               "minute per user'.", "RESOURCE_EXHAUSTED")
        self.writes_per_minute[minute] += 1
        return None

    def _find(self, title: str) -> FakeSheet | None:
        return next((s for s in self.sheets if s.title == title), None)

    def _parse_range(self, raw: str) -> tuple[FakeSheet | None, int, int, int | None, int | None]:
        """'Title'!A1:C3 -> sheet, first row, first col, last row, last col (0-based, None = open-ended)."""
        text = unquote(raw)
        if "!" in text:
            title, _, cells = text.rpartition("!")
        else:
            title, cells = text, ""
        if title.startswith("'") and title.endswith("'"):
            title = title[1:-1].replace("''", "'")
        start, _, end = cells.partition(":")
        r1, c1 = self._ref(start) if start else (0, 0)
        if end:
            r2, c2 = self._ref(end)
        elif start:
            r2, c2 = self._ref(start)
        else:
            r2 = c2 = None
        return self._find(title), r1 or 0, c1 or 0, r2, c2

    @staticmethod
    def _ref(ref: str) -> tuple[int | None, int | None]:
        m = _CELL.match(ref)
        if not m:
            raise ValueError(f"bad A1 reference {ref!r}")
        letters, digits = m.groups()
        return (int(digits) - 1 if digits else None), (col_index(letters) if letters else None)

    def _write(self, sheet: FakeSheet, row: int, col: int, values: list[list[Any]], option: str) -> int:
        self.value_input_options.append(option)
        for r, line in enumerate(values):
            for c, value in enumerate(line):
                if value is None:  # the API skips null values: the cell keeps what it has
                    continue
                text = str(value)
                formula = option == "USER_ENTERED" and text.startswith("=")
                if option == "USER_ENTERED" and text.startswith("'"):
                    text = text[1:]  # the UI's "keep as text" prefix is not stored
                sheet.put(row + r, col + c, text, formula)
        return sum(len(line) for line in values)

    # ------------------------------------------------------------ handlers

    def _get(self, req: Request) -> Response:
        bad = self._check(req)
        if bad:
            return bad
        return Response(200, {"spreadsheetId": self.spreadsheet_id,
                              "properties": {"title": "Triage audit", "locale": "en_US", "timeZone": "Etc/UTC"},
                              "sheets": [{"properties": s.properties(i)} for i, s in enumerate(self.sheets)]})

    def _batch_update(self, req: Request) -> Response:
        bad = self._check(req) or self._count_write()
        if bad:
            return bad
        replies: list[dict[str, Any]] = []
        for item in req.json()["requests"]:
            self.batch_requests.append(item)
            (kind, body), = item.items()
            if kind == "addSheet":
                props = body["properties"]
                if self._find(props["title"]):
                    return _error(400, f"A sheet with the name \"{props['title']}\" already exists.",
                                  "INVALID_ARGUMENT")
                sheet = self.add_sheet(props["title"])
                grid = props.get("gridProperties", {})
                sheet.row_count, sheet.column_count = grid.get("rowCount", 1000), grid.get("columnCount", 26)
                replies.append({"addSheet": {"properties": sheet.properties(len(self.sheets) - 1)}})
                continue
            target = next((s for s in self.sheets if s.sheet_id in (body.get("range", {}).get("sheetId"),
                                                                    body.get("properties", {}).get("sheetId"))), None)
            if target is None:
                return _error(400, f"No grid with id in {kind}", "INVALID_ARGUMENT")
            if kind == "repeatCell" and body["cell"]["userEnteredFormat"]["textFormat"].get("bold"):
                rng = body["range"]
                target.bold_rows.update(range(rng.get("startRowIndex", 0), rng["endRowIndex"]))
            elif kind == "updateSheetProperties":
                target.frozen_rows = body["properties"]["gridProperties"]["frozenRowCount"]
            else:
                return _error(400, f"Unsupported request {kind}", "INVALID_ARGUMENT")
            replies.append({})
        return Response(200, {"spreadsheetId": self.spreadsheet_id, "replies": replies})

    def _values_get(self, req: Request) -> Response:
        bad = self._check(req)
        if bad:
            return bad
        assert req.match is not None
        sheet, r1, c1, r2, c2 = self._parse_range(req.match.group("range"))
        if sheet is None:
            return _error(400, "Unable to parse range: " + unquote(req.match.group("range")), "INVALID_ARGUMENT")
        last_row = sheet.last_row() if r2 is None else min(r2, sheet.last_row())
        width = max((len(r) for r in sheet.rows), default=0)
        last_col = width - 1 if c2 is None else min(c2, width - 1)
        grid = [[sheet.cell(r, c) for c in range(c1, last_col + 1)] for r in range(r1, last_row + 1)]
        if req.arg("majorDimension") == "COLUMNS":
            grid = [list(col) for col in zip(*grid, strict=True)] if grid else []
        grid = [_trim(line) for line in grid]
        while grid and not grid[-1]:
            grid.pop()  # the service leaves out trailing empty rows and cells
        body: dict[str, Any] = {"range": unquote(req.match.group("range")),
                                "majorDimension": req.arg("majorDimension", "ROWS")}
        if grid:
            body["values"] = grid
        return Response(200, body)

    def _values_update(self, req: Request) -> Response:
        bad = self._check(req) or self._count_write()
        if bad:
            return bad
        assert req.match is not None
        sheet, r1, c1, _, _ = self._parse_range(req.match.group("range"))
        if sheet is None:
            return _error(400, "Unable to parse range", "INVALID_ARGUMENT")
        values = req.json()["values"]
        cells = self._write(sheet, r1, c1, values, req.arg("valueInputOption") or "")
        return Response(200, {"spreadsheetId": self.spreadsheet_id, "updatedRange": unquote(req.match.group("range")),
                              "updatedRows": len(values), "updatedCells": cells})

    def _values_batch_update(self, req: Request) -> Response:
        """values:batchUpdate: several ranges in one write request."""
        bad = self._check(req) or self._count_write()
        if bad:
            return bad
        body = req.json()
        option, cells, replies = body.get("valueInputOption") or "", 0, []
        for item in body.get("data", []):
            sheet, r1, c1, _, _ = self._parse_range(item["range"])
            if sheet is None:
                return _error(400, "Unable to parse range: " + item["range"], "INVALID_ARGUMENT")
            cells += self._write(sheet, r1, c1, item["values"], option)
            replies.append({"updatedRange": item["range"], "updatedRows": len(item["values"])})
        return Response(200, {"spreadsheetId": self.spreadsheet_id, "totalUpdatedCells": cells,
                              "responses": replies})

    def _values_append(self, req: Request) -> Response:
        bad = self._check(req) or self._count_write()
        if bad:
            return bad
        assert req.match is not None
        sheet, _, c1, _, _ = self._parse_range(req.match.group("range"))
        if sheet is None:
            return _error(400, "Unable to parse range", "INVALID_ARGUMENT")
        values = req.json()["values"]
        start = sheet.last_row() + 1
        cells = self._write(sheet, start, c1, values, req.arg("valueInputOption") or "")
        width = max((len(v) for v in values), default=1)
        if self.lost_append_responses > 0:
            self.lost_append_responses -= 1
            return _error(503, "The service is currently unavailable.", "UNAVAILABLE")
        updated = f"{sheet.title}!{col_letters(c1)}{start + 1}:{col_letters(c1 + width - 1)}{start + len(values)}"
        return Response(200, {"spreadsheetId": self.spreadsheet_id,
                              "updates": {"spreadsheetId": self.spreadsheet_id, "updatedRange": updated,
                                          "updatedRows": len(values), "updatedCells": cells}})


def _trim(line: list[str]) -> list[str]:
    while line and line[-1] == "":
        line = line[:-1]
    return line
