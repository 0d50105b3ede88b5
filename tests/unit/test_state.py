"""The ledger (bot.state): what it records about messages, the outbox and the rotation, and what it answers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.models import Classification, Usage
from bot.state import Ledger, MessageRow, StateError, classification_from_dict, classification_to_dict, iso, now_utc

OLD = "2021-03-01T10:00:00+00:00"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "state" / "ledger.sqlite3")


def decide(ledger: Ledger, pid: str, *, thread: str = "", at: str = "", assignee: str = "", review: bool = False,
           classification: Classification | None = None, record: dict[str, Any] | None = None) -> None:
    """Save a decision; `at` moves its decided_at (saved as "now") to the time the test wants."""
    c = classification or Classification("lead", 0.9, "en", "offline")
    if record is None:
        record = {"classification": classification_to_dict(c)}
    ledger.save_decision(pid, thread or f"t-{pid}", f"<{pid}@x.example>", "", c, c.category, review, assignee, record)
    if at:
        ledger.db.execute("UPDATE messages SET decided_at=? WHERE provider_id=?", (at, pid))


def message(ledger: Ledger, pid: str) -> MessageRow:
    row = ledger.get(pid)
    assert row is not None, pid
    return row


def updated_at(ledger: Ledger, pid: str) -> str:
    return str(ledger.db.execute("SELECT updated_at FROM messages WHERE provider_id=?", (pid,)).fetchone()[0])


# ------------------------------------------------------------ a new ledger


@pytest.mark.parametrize("record", [
    lambda led: led.record_failure("m1", "t1", "timeout"),
    lambda led: led.add_effect("m1", "draft", {}),
    lambda led: led.set_cursor("maildir", "42"),
])
def test_a_new_ledger_is_empty_until_a_message_an_effect_or_a_cursor_is_recorded(
        ledger: Ledger, record: Callable[[Ledger], object]) -> None:
    assert ledger.is_empty()
    record(ledger)
    assert not ledger.is_empty()


def test_a_read_only_ledger_reads_what_was_recorded_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    writer = Ledger(path)
    decide(writer, "m1", assignee="alice@acme.example")
    writer.close()
    reader = Ledger(path, readonly=True)
    assert message(reader, "m1").assignee == "alice@acme.example"
    with pytest.raises(StateError, match="cannot be written"):
        reader.record_failure("m2", "t2", "timeout")
    reader.close()
    assert not Ledger(path).known("m2")


def test_a_read_only_ledger_of_a_missing_file_fails_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with pytest.raises(StateError, match="cannot open the ledger"):
        Ledger(path, readonly=True)
    assert not path.exists()


def test_a_ledger_whose_outbox_already_has_the_refusals_column_opens_and_counts_on(tmp_path: Path) -> None:
    # the column is there though not spelt as the ledger looks for it, so SQLite answers "duplicate column" to
    # adding it, as it does when another process opening the same older ledger added it a moment before
    path = tmp_path / "ledger.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, provider_id TEXT NOT NULL, "
                "sink TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, "
                "last_error TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, "
                "done_at TEXT NOT NULL DEFAULT '', Refusals INTEGER NOT NULL DEFAULT 0)")
    old.execute("INSERT INTO outbox(provider_id, sink, created_at, Refusals) VALUES('m1', 'crm:hubspot', ?, 2)", (OLD,))
    old.commit()
    old.close()
    assert Ledger(path).outbox_refused(1, "400 invalid email") == 3


# ------------------------------------------------------------ failures and attempts


def test_failures_of_an_undecided_message_count_only_when_the_message_itself_failed(ledger: Ledger) -> None:
    assert ledger.record_failure("m1", "t1", "unparseable MIME") == 1
    assert ledger.record_failure("m1", "t1", "LLM down", counted=False) == 1
    assert ledger.record_failure("m1", "t1", "unparseable again") == 2
    row = message(ledger, "m1")
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "unparseable again")
    assert ledger.failed_messages(max_attempts=3) == [("m1", "t1", 2)]
    assert ledger.failed_messages(max_attempts=2) == []


def test_failed_messages_are_retried_least_recently_failed_first(ledger: Ledger) -> None:
    ledger.record_failure("a", "ta", "timeout")
    ledger.record_failure("b", "tb", "timeout")
    ledger.db.execute("UPDATE messages SET updated_at=? WHERE provider_id='a'", ("2021-03-01T10:00:00+00:00",))
    ledger.db.execute("UPDATE messages SET updated_at=? WHERE provider_id='b'", ("2021-03-02T10:00:00+00:00",))
    assert [m[0] for m in ledger.failed_messages(5)] == ["a", "b"]
    ledger.record_failure("a", "ta", "timeout again")
    assert [m[0] for m in ledger.failed_messages(5)] == ["b", "a"]


def test_bump_attempts_counts_failed_effects_of_a_decided_message(ledger: Ledger) -> None:
    decide(ledger, "m1")
    assert ledger.bump_attempts("m1", "draft failed") == 1
    assert ledger.bump_attempts("m1", "mail service down", counted=False) == 1
    assert ledger.bump_attempts("m1", "draft failed again") == 2
    assert message(ledger, "m1").last_error == "draft failed again"


def test_bump_attempts_of_a_message_the_ledger_does_not_know_counts_nothing(ledger: Ledger) -> None:
    assert ledger.bump_attempts("ghost", "draft failed") == 0
    assert not ledger.known("ghost")


@pytest.mark.parametrize("fail", [
    lambda led, error: led.record_failure("m1", "t1", error),
    lambda led, error: led.bump_attempts("m1", error),
    lambda led, error: led.set_status("m1", "decided", error),
])
def test_a_message_error_is_kept_up_to_2000_characters(ledger: Ledger, fail: Callable[[Ledger, str], object]) -> None:
    decide(ledger, "m1")
    fail(ledger, "x" * 1999 + "yz")
    assert message(ledger, "m1").last_error == "x" * 1999 + "y"


@pytest.mark.parametrize("change", [
    lambda led: led.record_failure("m1", "t1", "timeout"),
    lambda led: led.bump_attempts("m1", "draft failed"),
    lambda led: led.mark_review("m1"),
    lambda led: led.update_record("m1", draft_id="r-1"),
    lambda led: led.set_status("m1", "done"),
])
def test_every_change_to_a_message_is_stamped_with_its_time(ledger: Ledger, change: Callable[[Ledger], object]) -> None:
    decide(ledger, "m1")
    ledger.db.execute("UPDATE messages SET updated_at=? WHERE provider_id='m1'", (OLD,))
    before = iso(now_utc())
    change(ledger)
    assert before <= updated_at(ledger, "m1") <= iso(now_utc())


# ------------------------------------------------------------ records


def test_update_record_adds_fields_and_stores_values_json_cannot_hold_as_text(ledger: Ledger) -> None:
    decide(ledger, "m1", record={"decision": {"pool": "inside_sales"}})
    sent = datetime(2021, 3, 1, 10, 0, tzinfo=UTC)
    ledger.update_record("m1", draft_id="r-1", drafted_at=sent)
    assert message(ledger, "m1").record == {"decision": {"pool": "inside_sales"}, "draft_id": "r-1",
                                       "drafted_at": str(sent)}


def test_update_record_of_an_unknown_message_creates_nothing(ledger: Ledger) -> None:
    ledger.update_record("ghost", draft_id="r-1")
    assert not ledger.known("ghost")


def test_a_correction_is_stamped_with_its_time_and_recorded_once_per_new_category(ledger: Ledger) -> None:
    before = iso(now_utc())
    assert ledger.add_correction("m1", "<m1@x.example>", "lead", "vendor", "label")
    assert not ledger.add_correction("m1", "<m1@x.example>", "lead", "vendor", "sheet")
    [correction] = ledger.corrections()
    assert (correction["provider_id"], correction["new_category"], correction["source"]) == ("m1", "vendor", "label")
    assert before <= correction["at"] <= iso(now_utc())


def test_classification_survives_the_round_trip_through_the_record() -> None:
    c = Classification("lead", 0.82, "de", "llm:gpt-4o-mini", person_email="anna@kunde.example",
                       reasons=("asks for a quote", "names a budget"), fields={"budget": "10k"},
                       usage=Usage(calls=1, prompt_tokens=600, completion_tokens=100, cost_usd=0.00015))
    assert classification_from_dict(classification_to_dict(c)) == c


# ------------------------------------------------------------ thread memory


def classified(category: str, classifier: str = "llm:gpt-4o-mini") -> Classification:
    return Classification(category, 0.9, "en", classifier, reasons=(f"looks like {category}",),
                          usage=Usage(calls=1, prompt_tokens=10, cost_usd=0.001))


def test_a_thread_classified_within_the_window_reuses_its_newest_classification(ledger: Ledger) -> None:
    decide(ledger, "m1", thread="t1", classification=classified("support"), at=iso(now_utc() - timedelta(hours=3)))
    decide(ledger, "m2", thread="t1", classification=classified("lead"), at=iso(now_utc() - timedelta(hours=1)))
    decide(ledger, "m3", thread="t1", classification=classified("other", "prefilter:auto_reply"))
    assert ledger.recent_thread_classification("t1", 24) == classified("lead")
    assert ledger.recent_thread_classification("t2", 24) is None


def test_a_thread_classified_within_the_last_half_hour_is_reused_for_a_half_hour_window(ledger: Ledger) -> None:
    decide(ledger, "m1", thread="t1", classification=classified("lead"))
    assert ledger.recent_thread_classification("t1", 0.5) == classified("lead")


def test_a_classification_older_than_the_window_is_not_reused(ledger: Ledger) -> None:
    decide(ledger, "m1", thread="t1", classification=classified("lead"), at=iso(now_utc() - timedelta(hours=30)))
    assert ledger.recent_thread_classification("t1", 24) is None


def test_a_window_of_zero_hours_reuses_nothing(ledger: Ledger) -> None:
    # decided "in the future" (a clock step back): still inside any window that starts at or before now
    decide(ledger, "m1", thread="t1", classification=classified("lead"), at=iso(now_utc() + timedelta(hours=1)))
    assert ledger.recent_thread_classification("t1", 0) is None


def test_mail_without_a_thread_reuses_no_classification(ledger: Ledger) -> None:
    ledger.save_decision("m1", "", "<m1@x.example>", "", classified("lead"), "lead", False, "",
                         {"classification": classification_to_dict(classified("lead"))})
    assert ledger.recent_thread_classification("", 24) is None


def test_a_thread_decision_recorded_without_its_classification_is_not_reused(ledger: Ledger) -> None:
    decide(ledger, "m1", thread="t1", classification=classified("lead"), record={"decision": {"pool": "sales"}})
    assert ledger.recent_thread_classification("t1", 24) is None


# ------------------------------------------------------------ outbox


def test_refusals_of_an_outbox_item_are_counted_and_the_last_reason_kept(ledger: Ledger) -> None:
    decide(ledger, "m1")
    ledger.enqueue("m1", "crm:hubspot")
    [item] = ledger.db.execute("SELECT id FROM outbox").fetchall()
    assert ledger.outbox_refused(item[0], "400 invalid email") == 1
    assert ledger.outbox_refused(item[0], "400 invalid phone") == 2
    assert ledger.outbox_result("m1", "crm:") == "queued (400 invalid phone)"


def test_a_refusal_of_an_outbox_item_the_ledger_does_not_know_counts_nothing(ledger: Ledger) -> None:
    assert ledger.outbox_refused(999, "400 invalid email") == 0


@pytest.mark.parametrize("fail", [
    lambda led, item, error: led.outbox_failed([item], error),
    lambda led, item, error: led.outbox_refused(item, error),
])
def test_an_outbox_error_is_kept_up_to_1000_characters(ledger: Ledger,
                                                      fail: Callable[[Ledger, int, str], object]) -> None:
    decide(ledger, "m1")
    ledger.enqueue("m1", "notify:slack")
    item = ledger.db.execute("SELECT id FROM outbox").fetchone()[0]
    fail(ledger, item, "x" * 999 + "yz")
    assert ledger.outbox_result("m1", "notify:") == f"queued ({'x' * 999}y)"


def test_the_outbox_result_of_a_sink_is_its_answer_once_done_and_queued_until_then(ledger: Ledger) -> None:
    decide(ledger, "m1")
    assert ledger.outbox_result("m1", "crm:") == ""
    ledger.enqueue("m1", "crm:hubspot")
    ledger.enqueue("m1", "notify:slack")
    assert ledger.outbox_result("m1", "crm:") == "queued"
    ledger.outbox_done([1], "contact 77")
    assert ledger.outbox_result("m1", "crm:") == "contact 77"
    assert ledger.outbox_result("m1", "notify:") == "queued"


def test_outbox_queues_tell_the_oldest_item_and_the_oldest_failing_one_per_sink(ledger: Ledger) -> None:
    decide(ledger, "m1")
    for sink in ("audit:sheets", "audit:sheets", "notify:slack", "crm:hubspot"):
        ledger.enqueue("m1", sink)
    stamps = ["2021-03-01T10:00:00+00:00", "2021-03-01T11:00:00+00:00", "2021-03-01T12:00:00+00:00",
              "2021-03-01T13:00:00+00:00"]
    for item, at in enumerate(stamps, start=1):
        ledger.db.execute("UPDATE outbox SET created_at=? WHERE id=?", (at, item))
    ledger.outbox_failed([2], "sheets: 503")
    ledger.outbox_done([4], "contact 77")
    assert ledger.outbox_queues() == {"audit:sheets": (2, stamps[0], stamps[1]), "notify:slack": (1, stamps[2], "")}
    assert ledger.outbox_backlog() == {"audit:sheets": 2, "notify:slack": 1}


# ------------------------------------------------------------ round-robin


def test_the_previous_owner_is_the_newest_assignee_of_the_thread_or_else_of_the_contact(ledger: Ledger) -> None:
    def lead_from(email: str) -> dict[str, Any]:
        return {"classification": classification_to_dict(Classification("lead", 0.9, "en", "offline",
                                                                         person_email=email))}

    decide(ledger, "m1", thread="t1", assignee="alice@acme.example", at="2021-03-01T09:00:00+00:00",
           record=lead_from("anna@kunde.example"))
    decide(ledger, "m2", thread="t1", assignee="bob@acme.example", at="2021-03-02T09:00:00+00:00",
           record=lead_from("anna@kunde.example"))
    decide(ledger, "m3", thread="t2", assignee="carol@acme.example", at="2021-03-03T09:00:00+00:00",
           record=lead_from("Ben@Kunde.example"))
    decide(ledger, "m4", thread="t3", at="2021-03-04T09:00:00+00:00", record=lead_from("ben@kunde.example"))
    assert ledger.previous_owner("t1", "ben@kunde.example", OLD) == ("bob@acme.example", "thread")
    assert ledger.previous_owner("t9", "BEN@kunde.example", OLD) == ("carol@acme.example", "contact")
    assert ledger.previous_owner("", "anna@kunde.example", OLD) == ("bob@acme.example", "contact")
    assert ledger.previous_owner("t9", "ben@kunde.example", "2021-03-04T00:00:00+00:00") is None
    assert ledger.previous_owner("t3", "", OLD) is None


# ------------------------------------------------------------ status figures


def test_backlog_counts_messages_still_to_retry_and_decisions_with_effects_open(ledger: Ledger) -> None:
    assert ledger.backlog(max_attempts=3) == (0, 0)
    for pid in ("f1", "f2", "f3"):
        ledger.record_failure(pid, f"t-{pid}", "timeout")
    for _ in range(2):
        ledger.record_failure("f3", "t-f3", "timeout")  # f3 has used up its 3 attempts
    decide(ledger, "d1")
    decide(ledger, "d2")
    decide(ledger, "done")
    ledger.set_status("done", "done")
    assert ledger.backlog(max_attempts=3) == (2, 2)


def test_assignments_since_count_the_leads_per_assignee_decided_from_then_on(ledger: Ledger) -> None:
    decide(ledger, "m1", assignee="alice@acme.example", at="2021-03-01T09:00:00+00:00")
    decide(ledger, "m2", assignee="alice@acme.example", at="2021-03-08T09:00:00+00:00")
    decide(ledger, "m3", assignee="alice@acme.example", at="2021-03-09T09:00:00+00:00")
    decide(ledger, "m4", assignee="bob@acme.example", at="2021-03-08T00:00:00+00:00")
    decide(ledger, "m5", at="2021-03-09T09:00:00+00:00")  # not assigned (review, spam, ...)
    assert ledger.assignments_since("2021-03-08T00:00:00+00:00") == {"alice@acme.example": 2, "bob@acme.example": 1}
    assert ledger.assignments_since("2021-03-10T00:00:00+00:00") == {}


def test_iter_messages_without_a_start_yields_every_decided_message_in_decision_order(ledger: Ledger) -> None:
    decide(ledger, "late", at="2021-03-02T10:00:00+00:00")
    decide(ledger, "early", at="2021-03-01T10:00:00+00:00")
    ledger.record_failure("undecided", "t-u", "timeout")
    assert [m.provider_id for m in ledger.iter_messages()] == ["early", "late"]
    assert [m.provider_id for m in ledger.iter_messages("2021-03-02T00:00:00+00:00")] == ["late"]


def test_outbox_given_up_without_a_start_counts_every_item_that_ended_failed(ledger: Ledger) -> None:
    decide(ledger, "m1")
    for sink in ("crm:hubspot", "crm:hubspot", "notify:slack", "audit:sheets"):
        ledger.enqueue("m1", sink)
    ledger.outbox_done([1, 2], "failed: 400 invalid email")
    ledger.outbox_done([3], "failed: channel_not_found")
    ledger.outbox_done([4], "row 12")
    assert ledger.outbox_given_up() == {"crm:hubspot": 2, "notify:slack": 1}
    assert ledger.outbox_given_up(iso(now_utc() + timedelta(hours=1))) == {}
