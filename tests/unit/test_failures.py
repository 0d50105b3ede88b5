"""Whose failure is it? Only a failure of the message itself uses one of its attempts; when our side or a service
fails (a read-only disk, the ledger, an outage), the message keeps its attempts and waits for the next cycle."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from bot.adapters.gmail import GmailError, GmailUnavailable
from bot.classify.cascade import LlmUnavailable
from bot.models import Classification
from bot.pipeline import OUTAGE_STREAK, fault_of
from bot.ports import MailError, MailUnavailable, RetryLater, SinkUnavailable, Unavailable
from tests.fakes import raw_mail
from tests.unit.test_pipeline import LEAD, Bot

READ_ONLY = MailUnavailable("cannot store the draft: Read-only file system")


@pytest.mark.parametrize(("exc", "fault"), [
    (MailError("message 'x' is not in the maildir"), "message"),
    (GmailError("Gmail messages.get failed: HTTP 400 invalidArgument", 400), "message"),
    (ValueError("a bug this mail triggers"), "message"),
    (LlmUnavailable("timeout", Classification("lead", 0.5, None, "offline")), "message"),  # its own policy
    (GmailUnavailable("Gmail drafts.create failed: HTTP 503", 503), "ours"),
    (READ_ONLY, "ours"),
    (SinkUnavailable("Slack: HTTP 500"), "ours"),
    (OSError(errno.ENOSPC, "No space left on device"), "ours"),
    (sqlite3.OperationalError("database is locked"), "ours"),
    (Unavailable("a service"), "ours"),
    (RetryLater("Gmail asked us to wait 15 minutes"), "stop"),
])
def test_every_failure_is_the_messages_or_ours(exc: Exception, fault: str) -> None:
    assert fault_of(exc) == fault


def test_a_lead_whose_draft_cannot_be_stored_keeps_its_attempts_and_gets_its_draft_later(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 3}})
    pid = bot.mail.add(raw_mail(LEAD))
    bot.mail.fail_next("create_draft", READ_ONLY, times=6)
    for _ in range(6):  # twice as many cycles as max_attempts: the disk stays read-only all the while
        report = bot.cycle()
        assert report.failed == 1
    row = bot.ledger.get(pid)
    assert row is not None and row.status == "decided" and row.attempts == 0 and "Read-only" in row.last_error
    assert bot.labels(pid) == {"INBOX", "UNREAD"} and bot.notifier.sent == [] and bot.audit.rows == []
    bot.cycle()  # the fault cleared
    [draft] = bot.drafts()
    assert "Triage/Lead" in bot.labels(pid) and "Triage/Review" not in bot.labels(pid)
    [row_out] = bot.audit.rows
    assert row_out["review"] == "" and row_out["draft_id"] and row_out["assignee"] == "alice@acme-pumps.example"
    assert len(bot.notifier.sent) == 1
    assert sum(bot.ledger.assignment_counts("inside_sales").values()) == 1  # one turn, taken once


def test_a_message_that_cannot_be_read_for_our_reasons_waits_without_using_attempts(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 2}})
    pid = bot.mail.add(raw_mail(LEAD))
    bot.mail.fail_fetch(pid, MailUnavailable("cannot read message: Input/output error"))
    for _ in range(4):
        bot.cycle()
    row = bot.ledger.get(pid)
    assert row is not None and row.status == "failed" and row.attempts == 0
    bot.mail.clear_fetch_error(pid)
    bot.cycle()
    assert "Triage/Lead" in bot.labels(pid) and len(bot.drafts()) == 1


def test_the_messages_own_failure_still_ends_in_review(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 2}})
    pid = bot.mail.add(raw_mail(LEAD))
    bot.mail.fail_fetch(pid, MailError("message is malformed on the server"))
    for _ in range(2):
        bot.cycle()
    assert {"Triage/Review", "INBOX"} <= bot.labels(pid)


def test_an_outage_stops_the_cycle_after_a_few_messages_and_no_attempt_is_used(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pids = [bot.mail.add(raw_mail(f"{LEAD} #{i}")) for i in range(OUTAGE_STREAK + 3)]
    for pid in pids:
        bot.mail.fail_fetch(pid, MailUnavailable("the mailbox is down"))
    report = bot.cycle()
    assert report.failed == OUTAGE_STREAK and report.outage and report.stopped_early
    assert bot.mail.checkpoints == 0  # not every listed message was recorded: the next listing covers them again
    assert all((r := bot.ledger.get(p)) is None or r.attempts == 0 for p in pids)
    for pid in pids:
        bot.mail.clear_fetch_error(pid)
    bot.cycle()
    assert all("Triage/Processed" in bot.labels(p) for p in pids) and len(bot.drafts()) == len(pids)


def test_a_service_that_asks_us_to_wait_stops_the_cycle_at_once(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    first, second = bot.mail.add(raw_mail(LEAD)), bot.mail.add(raw_mail(f"{LEAD} again"))
    bot.mail.fail_fetch(first, RetryLater("rate limit: wait 15 minutes"))
    report = bot.cycle()
    assert report.failed == 1 and report.processed == 0 and report.outage
    assert bot.ledger.get(second) is None and bot.ledger.get(first).attempts == 0  # type: ignore[union-attr]
    bot.mail.clear_fetch_error(first)
    bot.cycle()
    assert len(bot.drafts()) == 2


def test_a_mailbox_that_cannot_be_listed_ends_the_cycle_quietly_and_the_outbox_still_goes_out(
        tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    bot.mail.add(raw_mail(LEAD))
    bot.cycle()
    bot.notifier.sent.clear()
    bot.ledger.enqueue(next(iter(bot.mail.messages)), "notify:fake")  # something still to deliver
    bot.mail.fail_next("list_new", MailUnavailable("the mailbox is down"))
    report = bot.cycle()
    assert report.outage and report.listed == 0 and len(bot.notifier.sent) == 1
