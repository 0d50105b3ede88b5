"""Audit rows appended to a Google Sheet (one tab, one row per message), through gspread.

gspread's own retries stay off (plain HTTPClient): bot.retry owns retrying, and a retried append is only safe
after checking which rows already landed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import gspread
import requests
from google.auth.credentials import Credentials
from google.auth.exceptions import GoogleAuthError, TransportError
from gspread.exceptions import APIError, SpreadsheetNotFound, WorksheetNotFound
from gspread.utils import ValueInputOption, rowcol_to_a1

from bot.config import Config, SheetsConfig
from bot.escape import sheet_cell, sheet_cell_text
from bot.models import AUDIT_FIELDS, AUDIT_FIELDS_V1
from bot.ports import SinkUnavailable
from bot.retry import call_with_retry, parse_retry_after

log = logging.getLogger(__name__)
T = TypeVar("T")

GOOGLE_ROOTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")
HEADER = list(AUDIT_FIELDS)
IDENTITY = "provider_id"  # a row's identity: two mails may carry the same Message-ID, never the same provider id


class SheetLayoutError(SinkUnavailable):
    """Row 1 of the tab is not our header: appending would put values under the wrong columns."""


class LocalRedirect:
    """Mixed into a gspread HTTP client: Google API URLs go to `base_url` (a proxy, or a local fake)."""

    base_url = GOOGLE_ROOTS[0]

    def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
        for root in GOOGLE_ROOTS:
            if endpoint.startswith(root):
                endpoint = self.base_url + endpoint[len(root):]
                break
        return super().request(method, endpoint, *args, **kwargs)  # type: ignore[misc]


def redirecting(http_client: type[gspread.HTTPClient], base_url: str) -> type[gspread.HTTPClient]:
    """`http_client` sending its calls to base_url; unchanged for the public Google endpoint."""
    root = base_url.rstrip("/")
    if root == GOOGLE_ROOTS[0]:
        return http_client
    return type("LocalRedirect" + http_client.__name__, (LocalRedirect, http_client), {"base_url": root})


def _status(exc: BaseException) -> int | None:
    return exc.response.status_code if isinstance(exc, APIError) else None


def _retryable(exc: BaseException) -> bool:
    status = _status(exc)
    if status is not None:
        return status in (408, 429) or status >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, TransportError))


def _retry_after(exc: BaseException) -> float | None:
    return parse_retry_after(exc.response.headers.get("Retry-After")) if isinstance(exc, APIError) else None


def sheets_credentials(cfg: Config) -> Credentials:
    """The service account named in audit.sheets.credentials_file, else the mailbox's own OAuth token."""
    path = cfg.audit.sheets.credentials_file
    if path is not None:
        from google.oauth2 import service_account

        from bot.adapters.gmail_auth import SHEETS_SCOPE

        return service_account.Credentials.from_service_account_file(str(path), scopes=[SHEETS_SCOPE])
    from bot.adapters.gmail_auth import load_credentials, scopes

    return load_credentials(cfg.mail.gmail, scopes(sheets=True))


class SheetsAuditSink:
    name = "sheets"

    def __init__(self, cfg: SheetsConfig, credentials: Credentials,
                 http_client: type[gspread.HTTPClient] = gspread.HTTPClient, *,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = 5) -> None:
        self.cfg = cfg
        self._gc = gspread.authorize(credentials, http_client=redirecting(http_client, cfg.base_url))
        self._gc.set_timeout((5, cfg.timeout_seconds))  # gspread's default is to wait forever
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._ws: gspread.Worksheet | None = None
        self._columns: dict[str, int] = {}  # audit field -> 0-based column of the tab (read from row 1)

    def write(self, rows: Sequence[dict[str, Any]], retry: bool) -> None:
        """Append the rows with one request; with retry=True, skip rows whose provider_id is already there."""
        if not rows:
            return
        maybe_landed = retry

        def attempt() -> None:
            nonlocal maybe_landed
            ws = self._worksheet()
            todo = values = [self._cells(row) for row in rows]
            if maybe_landed:
                key = self._columns[IDENTITY]
                present = set(ws.col_values(key + 1))
                todo = [v for v in values if v[key] not in present]
                if len(todo) < len(values):
                    log.info("sheets: %d of %d rows were already written", len(values) - len(todo), len(values))
                if not todo:
                    return
            try:
                ws.append_rows(todo, value_input_option=ValueInputOption.raw,  # type: ignore[arg-type]
                               table_range="A1")  # None: the API leaves that cell alone
            except Exception as exc:
                # Only a 429 is known to be refused before the append; anything else may have landed.
                maybe_landed = maybe_landed or _status(exc) != 429
                raise

        self._call(attempt)

    def update(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Fill in the given fields on the row of each provider_id (one read of the id column, one write for all);
        every other cell stays as it is. Returns the provider ids that have no row."""
        if not rows:
            return set()

        def attempt() -> set[str]:
            ws = self._worksheet()
            found: dict[str, int] = {}
            for line, value in enumerate(ws.col_values(self._columns[IDENTITY] + 1), start=1):
                if line > 1 and value:
                    found.setdefault(str(value), line)
            data: list[dict[str, Any]] = []
            missing: set[str] = set()
            for row in rows:
                at = found.get(sheet_cell(row.get(IDENTITY)))
                if at is None:
                    missing.add(str(row.get(IDENTITY)))
                    continue
                data += [{"range": rowcol_to_a1(at, self._columns[f] + 1), "values": [[sheet_cell(value)]]}
                         for f, value in row.items() if f in self._columns and f not in ("message_id", "provider_id")]
            if data:
                ws.batch_update(data, value_input_option=ValueInputOption.raw)
            return missing

        return self._call(attempt)

    def read_corrections(self) -> list[tuple[str, str]]:
        """(message_id, corrected category) for every row where a person filled in the correction column."""
        values = self._call(lambda: self._worksheet().get_all_values())
        if not values:
            return []
        header = values[0]
        mid, corr = header.index("message_id"), header.index("correction")
        out: list[tuple[str, str]] = []
        for line in values[1:]:
            category = line[corr].strip().lower() if corr < len(line) else ""
            if category and mid < len(line) and line[mid]:
                out.append((sheet_cell_text(line[mid]), category))
        return out

    # ------------------------------------------------------------ internals

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return call_with_retry(fn, is_retryable=_retryable, retry_after=_retry_after,
                                   max_attempts=self._max_attempts, sleep=self._sleep, what="sheets")
        except SinkUnavailable:
            self._ws = None
            raise
        except (APIError, SpreadsheetNotFound, PermissionError, requests.RequestException, GoogleAuthError) as exc:
            self._ws = None  # the tab may have been renamed or deleted: look it up again next time
            if _retryable(exc) or _status(exc) in (None, 401, 403, 404):
                raise SinkUnavailable(f"Google Sheets: {_describe(exc)}") from exc
            raise

    def _worksheet(self) -> gspread.Worksheet:
        if self._ws is None:
            sh = self._gc.open_by_key(self.cfg.spreadsheet_key)
            try:
                ws = sh.worksheet(self.cfg.worksheet)
            except WorksheetNotFound:
                ws = sh.add_worksheet(self.cfg.worksheet, rows=1000, cols=len(HEADER))
                self._write_header(sh, ws)
            else:
                self._check_header(sh, ws)
            self._ws = ws
        return self._ws

    def _cells(self, row: dict[str, Any]) -> list[str | None]:
        """One row in the tab's column order; None leaves a cell alone (a column people added between ours)."""
        cells: list[str | None] = [None] * (max(self._columns.values()) + 1)
        for f, col in self._columns.items():
            cells[col] = sheet_cell(row.get(f))
        return cells

    def _check_header(self, sh: gspread.Spreadsheet, ws: gspread.Worksheet) -> None:
        header = ws.row_values(1)
        if not any(header):
            self._write_header(sh, ws)
            return
        core = list(AUDIT_FIELDS_V1)
        if header[: len(core)] != core:
            wrong = next(i for i, f in enumerate(core) if i >= len(header) or header[i] != f)
            raise SheetLayoutError(f"Google Sheets: row 1 of {self.cfg.worksheet!r} is not the audit header "
                                   f"(column {wrong + 1} should be {core[wrong]!r}); fix it or use another tab")
        self._columns = {f: header.index(f) for f in HEADER if f in header}
        missing = [f for f in HEADER if f not in self._columns]
        if missing:  # a tab from before these columns: they go after everything there, people's columns included
            first = len(header)
            ws.update([missing], rowcol_to_a1(1, first + 1), value_input_option=ValueInputOption.raw)
            self._columns.update({f: first + i for i, f in enumerate(missing)})
            log.info("sheets: added the columns %s to %r", ", ".join(missing), self.cfg.worksheet)

    def _write_header(self, sh: gspread.Spreadsheet, ws: gspread.Worksheet) -> None:
        ws.update([HEADER], "A1", value_input_option=ValueInputOption.raw)
        self._columns = {f: i for i, f in enumerate(HEADER)}
        sh.batch_update({"requests": [
            {"repeatCell": {"range": {"sheetId": ws.id, "startRowIndex": 0, "endRowIndex": 1,
                                      "startColumnIndex": 0, "endColumnIndex": len(HEADER)},
                            "cell": {"userEnteredFormat": {"textFormat": {"bold": True}}},
                            "fields": "userEnteredFormat.textFormat.bold"}},
            {"updateSheetProperties": {"properties": {"sheetId": ws.id, "gridProperties": {"frozenRowCount": 1}},
                                       "fields": "gridProperties.frozenRowCount"}},
        ]})
        log.info("sheets: wrote the audit header to %r", self.cfg.worksheet)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SpreadsheetNotFound):
        return "spreadsheet not found (check audit.sheets.spreadsheet_key and that it is shared with the account)"
    if isinstance(exc, PermissionError):
        return "no access to the spreadsheet (share it with the account that writes the audit)"
    status = _status(exc)
    return f"HTTP {status}: {exc}" if status is not None else f"{type(exc).__name__}: {exc}"
