"""Response tracking on a Maildir on disk: answers in the Sent folder (or the inbox) found by In-Reply-To and
References, written into the real CSV audit file in place."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.csv_audit import CsvAuditSink
from bot.adapters.maildir import MaildirProvider
from bot.followup.store import FollowupStore
from bot.models import AUDIT_FIELDS, AUDIT_FIELDS_V1
from bot.pipeline import Pipeline, Services
from bot.state import Ledger
from tests.fakes import Clock, FakeNotifier, KeywordClassifier, make_config, raw_mail

LEAD = "Quote for 3 pumps [lead:en:0.95]"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Berlin


def when(hour: int, minute: int = 0, day: int = 23) -> str:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


class MaildirBot:
    def __init__(self, tmp_path: Path, patch: dict[str, Any] | None = None) -> None:
        self.cfg = make_config(tmp_path, {"routing": {"colleagues": ["rep@agency.example"]}} | (patch or {}))
        self.root = self.cfg.mail.maildir.path
        self.mail = MaildirProvider(self.root, processed_label=self.cfg.labels.processed)
        self.audit = CsvAuditSink(self.cfg.audit.csv_path)
        self.clock = Clock(MONDAY)
        self.ledger = Ledger(self.cfg.state_dir / "ledger.sqlite3")
        self.pipeline = Pipeline(Services(cfg=self.cfg, mail=self.mail, classifier=KeywordClassifier(),
                                          ledger=self.ledger, audit_sinks=[self.audit], notifiers=[FakeNotifier()],
                                          clock=self.clock))
        self.n = 0

    def put(self, raw: bytes, folder: str = "") -> None:
        """A file as a mail client or the MTA would store it."""
        self.n += 1
        target = (self.root / folder if folder else self.root) / "cur"
        target.mkdir(parents=True, exist_ok=True)
        (target / f"17000000{self.n:02d}.M1P1.test:2,S").write_bytes(raw)

    def lead(self, name: str, date: str) -> str:
        msgid = f"<{name}@prospect.example>"
        self.put(raw_mail(f"{LEAD} {name}", sender=f"{name} <{name}@prospect.example>", msgid=msgid, date=date))
        return msgid

    def answer(self, lead_id: str, sender: str, date: str, folder: str = ".Sent", refs: bool = True) -> None:
        extra = f"In-Reply-To: {lead_id}\r\n" + (f"References: {lead_id}\r\n" if refs else "")
        self.put(raw_mail(f"Re: {LEAD}", sender=sender, msgid=f"<re-{self.n}@acme-pumps.example>", date=date,
                          extra=extra), folder)

    def cycle(self, at: datetime | None = None) -> None:
        if at is not None:
            self.clock.now = at
        self.pipeline.run_cycle()

    def rows(self) -> dict[str, dict[str, str]]:
        return {r["message_id"]: r for r in self.audit.read()}

    def status(self, msgid: str) -> tuple[str, str, float | None]:
        store = FollowupStore(self.ledger)
        [t] = [t for t in store.all() if self.ledger.get(t.provider_id).message_id == msgid]
        return t.status, t.answered_by, t.response_hours


@pytest.fixture
def bot(tmp_path: Path) -> MaildirBot:
    return MaildirBot(tmp_path)


def test_answered_in_the_sent_folder_and_unanswered(bot: MaildirBot) -> None:
    answered, silent = bot.lead("anna", when(8)), bot.lead("otto", when(8, 30))
    bot.cycle()
    bot.answer(answered, "Alice Carter <alice@acme-pumps.example>", when(10, 30))  # 11:30 Berlin
    bot.cycle(datetime(2026, 11, 23, 10, 31, tzinfo=UTC))
    assert bot.status(answered) == ("answered", "alice@acme-pumps.example", 2.5)  # from 09:00 Berlin
    assert bot.status(silent) == ("open", "", None)
    rows = bot.rows()
    assert len(rows) == 2  # updated in place, not appended
    assert (rows[answered]["answered_at"], rows[answered]["answered_by"], rows[answered]["response_hours"],
            rows[answered]["response_hours_wall"]) == ("2026-11-23T10:30:00+00:00", "alice@acme-pumps.example",
                                                        "2.50", "2.50")
    assert rows[silent]["answered_at"] == ""


def test_a_colleague_outside_our_domains_answers_from_the_inbox(bot: MaildirBot) -> None:
    lead = bot.lead("paul", when(9))
    bot.cycle()
    bot.answer(lead, "Rep <rep@agency.example>", when(9, 45), folder="")  # CC to the shared inbox
    bot.cycle(datetime(2026, 11, 23, 10, tzinfo=UTC))
    assert bot.status(lead) == ("answered", "rep@agency.example", 0.75)


def test_answered_before_the_bot_saw_the_lead(bot: MaildirBot) -> None:
    lead = bot.lead("rita", when(7, day=20))  # Friday 08:00 Berlin
    bot.answer(lead, "Bob Nguyen <bob@acme-pumps.example>", when(15, day=20))  # Friday 16:00
    bot.cycle()  # Monday: the bot sees both for the first time
    assert bot.status(lead) == ("answered", "bob@acme-pumps.example", 7.0)
    assert bot.rows()[lead]["answered_by"] == "bob@acme-pumps.example"


def test_a_stranger_in_the_thread_is_no_answer(bot: MaildirBot) -> None:
    lead = bot.lead("sara", when(8))
    bot.cycle()
    bot.answer(lead, "Someone <someone@elsewhere.example>", when(9, 30), folder="")
    bot.cycle(datetime(2026, 11, 23, 10, tzinfo=UTC))
    assert bot.status(lead)[0] == "open"


def test_an_old_csv_gets_the_new_columns_and_keeps_a_column_people_added(tmp_path: Path) -> None:
    path = tmp_path / "audit.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*AUDIT_FIELDS_V1, "notes"])
        w.writerow(["2026-11-20T10:00:00+00:00", *[""] * (len(AUDIT_FIELDS_V1) - 1), "called back"])
    sink = CsvAuditSink(path)
    sink.write([{"message_id": "<new@x.example>", "subject": "hello", "answered_by": "a@b.example"}], retry=False)
    assert sink.update([{"message_id": "<new@x.example>", "answered_at": "2026-11-23T10:00:00+00:00",
                         "subject": "=evil()"}]) == set()
    assert sink.update([{"message_id": "<nowhere@x.example>", "answered_at": "x"}]) == {"<nowhere@x.example>"}
    with open(path, newline="", encoding="utf-8") as fh:
        header, *lines = list(csv.reader(fh))
    assert header == [*AUDIT_FIELDS_V1, "notes", *AUDIT_FIELDS[len(AUDIT_FIELDS_V1):]]
    old, new = (dict(zip(header, line, strict=False)) for line in lines)
    assert old["notes"] == "called back" and old["processed_at"] == "2026-11-20T10:00:00+00:00"
    assert (new["answered_by"], new["answered_at"], new["subject"]) == (
        "a@b.example", "2026-11-23T10:00:00+00:00", "'=evil()")  # mail text stays text
    assert path.stat().st_mode & 0o777 == 0o600
