"""Audit rows through the outbox when the audit sink refuses some of them: one bad row must not hold up the audit,
and an outage must not lose a single row."""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.pipeline import SET_ASIDE_MAX, Pipeline, Services
from bot.ports import SinkUnavailable
from bot.state import Ledger
from bot.stats import collect, render
from tests.fake_mail import FakeMailProvider
from tests.fakes import Clock, KeywordClassifier, make_config, raw_mail

SINK = "audit:picky"


class Refused(Exception):
    """What the sheet answers for a request it will never accept as sent (HTTP 400 over a bad cell)."""


class PickyAuditSink:
    """An in-memory AuditSink that refuses every call holding a row whose subject contains a poison word.

    Like a Sheets append, a refused call writes nothing, unless `partial` is set: then the rows before the
    poisoned one land before the error (a call that failed half way). `down` is an outage; `broken` makes it refuse
    every call with a non-outage error (a workbook at its size limit answers 400 to any append).
    """

    name = "picky"

    def __init__(self, poison: str = "POISON") -> None:
        self.poison = poison
        self.rows: list[dict[str, Any]] = []
        self.calls: list[tuple[int, bool]] = []  # (rows in the call, retry flag)
        self.down: BaseException | None = None
        self.broken = False
        self.partial = False

    def write(self, rows: Sequence[dict[str, Any]], retry: bool) -> None:
        self.calls.append((len(rows), retry))
        if self.down is not None:
            raise self.down
        if self.broken:
            raise Refused("HTTP 400: the workbook is full")
        present = {r["message_id"] for r in self.rows} if retry else set()
        for row in rows:
            if self.poison in row["subject"]:
                raise Refused(f"HTTP 400: invalid value in row of {row['provider_id']}")
            if self.partial and row["message_id"] not in present:
                self.rows.append(dict(row))
        if not self.partial:
            self.rows.extend(dict(r) for r in rows if r["message_id"] not in present)

    def subjects(self) -> list[str]:
        return [r["subject"] for r in self.rows]


class Bot:
    def __init__(self, tmp_path: Path, max_attempts: int = 3) -> None:
        self.cfg = make_config(tmp_path, {"poll": {"max_attempts": max_attempts}})
        self.mail = FakeMailProvider(processed_label=self.cfg.labels.processed)
        self.audit = PickyAuditSink()
        self.ledger = Ledger(self.cfg.state_dir / "ledger.sqlite3")
        self.sent = 0

    def cycle(self) -> Any:
        services = Services(cfg=self.cfg, mail=self.mail, classifier=KeywordClassifier(), ledger=self.ledger,
                            audit_sinks=[self.audit], clock=Clock())
        return Pipeline(services).run_cycle()

    def send(self, *subjects: str) -> list[str]:
        """Deliver mail (support requests: no draft, no ping), subjects made unique by a running number."""
        out = []
        for s in subjects:
            self.sent += 1
            out.append(self.mail.add(raw_mail(f"{s} {self.sent:03d} [support:en:0.9]")))
        return out

    def outbox(self, pid: str) -> sqlite3.Row:
        return self.ledger.db.execute("SELECT * FROM outbox WHERE provider_id=? AND sink=?", (pid, SINK)).fetchone()


def numbers(subjects: list[str]) -> list[int]:
    return [int(s.split()[1]) for s in subjects]


def test_a_bad_row_in_a_batch_is_set_aside_and_given_up_while_the_others_are_written_once_in_order(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bot = Bot(tmp_path, max_attempts=3)
    ids = bot.send("Pump", "Valve", "POISON", "Seal", "Motor")
    bad = ids[2]

    report = bot.cycle()

    assert numbers(bot.audit.subjects()) == [1, 2, 4, 5]  # in order, each once
    assert report.delivered == {SINK: 4}
    assert bot.outbox(bad)["status"] == "pending" and bot.outbox(bad)["refusals"] == 1
    assert collect(bot.ledger)["outbox_backlog"] == {SINK: 1}

    caplog.set_level(logging.WARNING, logger="bot.pipeline")
    for subject in ("Gear", "Shaft"):  # each cycle other rows go through: the refusal is the row's own
        bot.send(subject)
        bot.cycle()

    assert numbers(bot.audit.subjects()) == [1, 2, 4, 5, 6, 7]
    row = bot.outbox(bad)
    assert row["status"] == "done" and row["refusals"] == 3
    assert row["result"].startswith("failed: Refused: HTTP 400: invalid value")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and bad in errors[0] and "gave up" in errors[0]
    stats = collect(bot.ledger)
    assert stats["outbox_backlog"] == {} and stats["outbox_given_up"] == {SINK: 1}
    assert f"outbox given up: {SINK} 1" in render(stats)

    bot.send("Bolt")
    bot.cycle()  # given up means given up: the bad row is not tried again
    assert numbers(bot.audit.subjects()) == [1, 2, 4, 5, 6, 7, 8]
    assert all(bot.audit.poison not in s for s in bot.audit.subjects())


def test_a_lone_refused_row_is_not_given_up_until_other_rows_show_the_sink_works(tmp_path: Path) -> None:
    bot = Bot(tmp_path, max_attempts=2)
    (bad,) = bot.send("POISON")
    for _ in range(4):
        bot.cycle()
    assert bot.outbox(bad)["status"] == "pending" and bot.outbox(bad)["refusals"] == 0
    assert "HTTP 400" in bot.outbox(bad)["last_error"]

    for subject in ("Pump", "Valve"):
        bot.send(subject)
        bot.cycle()

    assert bot.outbox(bad)["status"] == "done" and bot.outbox(bad)["result"].startswith("failed: ")
    assert numbers(bot.audit.subjects()) == [2, 3]


@pytest.mark.parametrize("outage", [SinkUnavailable("Google Sheets: HTTP 503"),
                                    OSError(errno.ENOSPC, "No space left on device")], ids=["service", "disk"])
def test_an_outage_loses_no_row_however_long_it_lasts(tmp_path: Path, outage: BaseException) -> None:
    bot = Bot(tmp_path, max_attempts=2)
    bot.audit.down = outage
    for i in range(5):  # well past max_attempts
        bot.send(f"Pump{i}", f"Valve{i}")
        report = bot.cycle()
        assert SINK not in report.delivered and report.errors == {SINK: 1}
    assert bot.audit.rows == [] and len(bot.audit.calls) == 5  # one call a cycle, no splitting

    bot.audit.down = None
    bot.cycle()
    bot.cycle()

    assert numbers(bot.audit.subjects()) == list(range(1, 11))
    assert bot.audit.calls[5] == (10, True)  # the replay tells the sink to skip rows that may have landed
    assert collect(bot.ledger)["outbox_given_up"] == {} and collect(bot.ledger)["outbox_backlog"] == {}


def test_a_sink_refusing_every_row_loses_none_and_splits_a_bounded_number_of_times(tmp_path: Path) -> None:
    bot = Bot(tmp_path, max_attempts=2)
    bot.audit.broken = True
    for i in range(4):
        bot.send(*(f"Pump{i}-{j}" for j in range(10)))
        before = len(bot.audit.calls)
        bot.cycle()
        # the first descent to one row, then at most SET_ASIDE_MAX rows refused on their own
        assert len(bot.audit.calls) - before <= 2 * (8 + SET_ASIDE_MAX)
    assert bot.audit.rows == [] and collect(bot.ledger)["outbox_given_up"] == {}

    bot.audit.broken = False
    bot.cycle()

    assert numbers(bot.audit.subjects()) == list(range(1, 41))


def test_a_sink_refusing_every_row_is_tried_row_by_row_at_most_set_aside_max_times_a_cycle(tmp_path: Path) -> None:
    bot = Bot(tmp_path, max_attempts=2)
    bot.audit.broken = True
    bot.send(*(f"Pump-{j}" for j in range(2 * SET_ASIDE_MAX + 5)))
    bot.cycle()
    assert sum(1 for rows, _ in bot.audit.calls if rows == 1) == SET_ASIDE_MAX
    assert bot.audit.rows == [] and collect(bot.ledger)["outbox_backlog"] == {SINK: 2 * SET_ASIDE_MAX + 5}


def test_a_write_that_landed_but_lost_its_answer_is_replayed_as_a_retry_and_written_once(tmp_path: Path) -> None:
    class LostAnswer(PickyAuditSink):
        """Writes the rows, then the answer is lost once (a read timeout after the append went through)."""

        lose = 1

        def write(self, rows: Sequence[dict[str, Any]], retry: bool) -> None:
            super().write(rows, retry)
            if self.lose:
                self.lose -= 1
                raise SinkUnavailable("Google Sheets: read timed out")

    bot = Bot(tmp_path)
    bot.audit = LostAnswer()
    bot.send("Pump", "Valve")
    bot.cycle()
    assert collect(bot.ledger)["outbox_backlog"] == {SINK: 2}
    bot.cycle()
    assert bot.audit.calls == [(2, False), (2, True)]
    assert numbers(bot.audit.subjects()) == [1, 2]
    assert collect(bot.ledger)["outbox_backlog"] == {}


def test_rows_a_refused_call_wrote_in_part_are_not_written_again(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    bot.audit.partial = True
    bot.send("Pump", "Valve", "Seal", "POISON", "Motor", "Gear")

    bot.cycle()

    assert numbers(bot.audit.subjects()) == [1, 2, 3, 5, 6]
    first, *split = bot.audit.calls
    assert first == (6, False) and split and all(retry for _, retry in split)


def test_rows_after_a_bad_row_go_out_in_later_batches_of_the_same_cycle(tmp_path: Path) -> None:
    from bot import pipeline

    bot = Bot(tmp_path)
    bot.send("POISON", *(f"Pump{i}" for i in range(pipeline.OUTBOX_BATCH + 5)))

    bot.cycle()

    assert numbers(bot.audit.subjects()) == list(range(2, pipeline.OUTBOX_BATCH + 7))


def test_a_ledger_from_before_refusals_were_counted_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    path.parent.mkdir(mode=0o700)
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, provider_id TEXT NOT NULL, "
                "sink TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, "
                "last_error TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, "
                "done_at TEXT NOT NULL DEFAULT '')")
    old.execute("INSERT INTO outbox(provider_id, sink, created_at) VALUES('m1', 'audit:csv', '2026-11-23')")
    old.commit()
    old.close()

    ledger = Ledger(path)
    Ledger(path).close()  # a second process opening it after the change finds nothing to do

    (item,) = ledger.db.execute("SELECT id FROM outbox").fetchall()
    assert ledger.outbox_refused(item["id"], "HTTP 400") == 1
    assert ledger.outbox_refused(item["id"], "HTTP 400") == 2


def test_the_reason_a_row_was_given_up_is_kept_to_500_characters(tmp_path: Path) -> None:
    class Verbose(PickyAuditSink):
        def write(self, rows: Sequence[dict[str, Any]], retry: bool) -> None:
            if any(self.poison in r["subject"] for r in rows):
                raise Refused("HTTP 400: " + "x" * 600)
            super().write(rows, retry)

    bot = Bot(tmp_path, max_attempts=1)
    bot.audit = Verbose()
    _, bad = bot.send("Pump", "POISON")
    bot.cycle()
    row = bot.outbox(bad)
    assert row["status"] == "done" and len(row["result"]) == 500
    assert row["result"] == ("failed: Refused: HTTP 400: " + "x" * 600)[:500]


def test_after_set_aside_max_refused_rows_the_rest_waits_for_the_next_cycle_in_order(tmp_path: Path) -> None:
    from bot import pipeline

    bot = Bot(tmp_path, max_attempts=2)
    bot.send("Pump", *(["POISON"] * SET_ASIDE_MAX), *(f"Valve{i}" for i in range(pipeline.OUTBOX_BATCH)))
    report = bot.cycle()
    # a later batch must not overtake the rows of this one that were not tried
    assert numbers(bot.audit.subjects()) == [1] and report.delivered == {SINK: 1}
    assert collect(bot.ledger)["outbox_backlog"] == {SINK: SET_ASIDE_MAX + pipeline.OUTBOX_BATCH}
