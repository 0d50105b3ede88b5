"""A mail's identity is its provider id everywhere; the Message-ID is only a threading hint (senders reuse it)."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path
from typing import Any

from bot.adapters.csv_audit import CsvAuditSink
from bot.pipeline import Pipeline
from tests.fakes import raw_mail
from tests.unit.test_pipeline import Bot

DUP = "<reused@mailer.example>"
FIRST = raw_mail("Quote for 3 pumps [lead:en:0.95]", sender="Ann First <ann@first.example>", msgid=DUP)
SECOND = raw_mail("Quote for 9 valves [lead:en:0.95]", sender="Bob Second <bob@second.example>", msgid=DUP)


def to_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=policy.default)["To"])


def test_two_leads_with_one_message_id_each_get_their_own_draft_row_ping_and_note(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    first = bot.mail.add(FIRST)
    bot.cycle()
    second = bot.mail.add(SECOND)  # after the first draft exists: the same thread, by Message-ID
    assert bot.mail.messages[first].thread_id == bot.mail.messages[second].thread_id
    bot.cycle()
    assert sorted(to_of(d.raw) for d in bot.drafts()) == ["ann@first.example", "bob@second.example"]
    rows = {r["provider_id"]: r for r in bot.audit.rows}
    assert set(rows) == {first, second} and rows[first]["draft_id"] != rows[second]["draft_id"]
    assert sorted(p["from_addr"] for p in bot.notifier.sent) == ["ann@first.example", "bob@second.example"]
    assert sorted(bot.crm.contacts) == ["ann@first.example", "bob@second.example"]


class FailsOnce(CsvAuditSink):
    """The local CSV, whose next append fails and writes nothing (a full disk: the sink cuts a short write)."""

    fail = False

    def write(self, rows: Any, retry: bool) -> None:
        if self.fail:
            self.fail = False
            raise OSError(28, "No space left on device")
        super().write(rows, retry)


def test_a_retried_csv_append_keeps_the_row_of_a_second_mail_with_the_same_message_id(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    csv = FailsOnce(tmp_path / "audit.csv")
    services = bot.services()
    services.audit_sinks = [csv]
    bot.mail.add(FIRST)
    Pipeline(services).run_cycle()
    csv.fail = True
    bot.mail.add(SECOND)
    Pipeline(services).run_cycle()  # the append failed: the row stays queued
    assert bot.ledger.outbox_backlog() == {"audit:csv": 1}
    Pipeline(services).run_cycle()  # the retry looks for the row first: another mail's Message-ID is not it
    rows = csv.read()
    assert [r["from"] for r in rows] == ["ann@first.example", "bob@second.example"]
    assert bot.ledger.outbox_backlog() == {}
