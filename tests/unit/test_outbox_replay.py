"""Drafts keyed by their source mail, and the outbox of pings and CRM upserts: replays flagged as retries, order
kept behind a failed item, one failing item among good ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.ports import SinkUnavailable
from tests.fakes import raw_mail
from tests.unit.test_pipeline import LEAD, Bot


def test_a_second_lead_in_a_thread_that_holds_a_bot_draft_gets_its_own_draft(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    first = bot.mail.add(raw_mail(LEAD))
    bot.cycle()
    thread = bot.mail.messages[first].thread_id
    second = bot.mail.add(raw_mail("Also 2 valves [lead:en:0.95]", sender="Tom Buyer <tom@prospect.example>"),
                          thread_id=thread)
    bot.cycle()
    bot.cycle()
    drafts = bot.drafts()
    assert sorted(d.source_id or "" for d in drafts) == [first, second]
    assert all(d.thread_id == thread for d in drafts)
    assert [r["draft_id"] != "" for r in bot.audit.rows] == [True, True]


@pytest.mark.parametrize("sink", ["crm", "notifier"])
def test_a_call_that_did_its_work_but_failed_is_replayed_as_a_retry_and_not_done_twice(tmp_path: Path,
                                                                                       sink: str) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail(LEAD))
    getattr(bot, sink).fail(pid, SinkUnavailable("read timed out"), after=True)
    bot.cycle()
    assert bot.ledger.outbox_result(pid, "crm:" if sink == "crm" else "notify:").startswith("queued")
    bot.cycle()
    bot.cycle()
    assert [p["provider_id"] for p in bot.notifier.sent] == [pid]
    [contact] = bot.crm.contacts.values()
    assert contact["mails"] == [pid]
    # only the replay pays for looking up what landed; the other sink's one call is a first attempt
    other = bot.notifier if sink == "crm" else bot.crm
    assert (getattr(bot, sink).retries, other.retries) == ([(pid, False), (pid, True)], [(pid, False)])


@pytest.mark.parametrize("sink", ["crm", "notifier"])
def test_the_outbox_keeps_its_order_behind_an_item_that_failed(tmp_path: Path, sink: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    bot = Bot(tmp_path)
    pids = [bot.mail.add(raw_mail(f"{LEAD} #{i}", sender=f"P{i} <p{i}@prospect{i}.example>")) for i in range(3)]
    getattr(bot, sink).fail(pids[1], SinkUnavailable("503 from the service"))
    report = bot.cycle()
    name = "crm:fake" if sink == "crm" else "notify:fake"
    assert report.errors == {name: 1}  # the status and metrics name the sink that failed
    assert f"{name} unavailable, its queue waits for the next cycle: 503 from the service" in \
        [r.getMessage() for r in caplog.records]

    def delivered() -> list[str]:
        if sink == "notifier":
            return [p["provider_id"] for p in bot.notifier.sent]
        return [c["mails"][0] for c in bot.crm.contacts.values()]

    assert delivered() == pids[:1]  # the third waits behind the second
    assert report.delivered[name] == 1
    report = bot.cycle()
    assert delivered() == pids
    assert report.delivered[name] == 2 and name not in report.errors


def test_one_ping_that_always_fails_ends_recorded_as_failed_while_the_others_go_out(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 3}})
    pids = [bot.mail.add(raw_mail(f"{LEAD} #{i}", sender=f"P{i} <p{i}@prospect{i}.example>")) for i in range(3)]
    bot.notifier.fail(pids[1], ValueError("no such channel"), times=99)
    for _ in range(2):
        bot.cycle()
        assert [p["provider_id"] for p in bot.notifier.sent] == pids[:1]
        assert bot.ledger.outbox_result(pids[1], "notify:") == "queued (ValueError: no such channel)"
    bot.cycle()
    assert [p["provider_id"] for p in bot.notifier.sent] == [pids[0], pids[2]]
    assert bot.ledger.outbox_result(pids[1], "notify:") == "failed: ValueError: no such channel"
    assert f"notify:fake: gave up on {pids[1]} after 3 attempts: ValueError: no such channel" in \
        [r.getMessage() for r in caplog.records]
    assert sorted(c["mails"][0] for c in bot.crm.contacts.values()) == sorted(pids)  # the CRM is not held up


def test_an_outage_longer_than_max_attempts_never_gives_up_a_ping(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 2}})
    pid = bot.mail.add(raw_mail(LEAD))
    bot.notifier.fail(pid, SinkUnavailable("chat is down"), times=5)
    for _ in range(5):
        bot.cycle()
        assert bot.ledger.outbox_result(pid, "notify:") == "queued (SinkUnavailable: chat is down)"
    bot.cycle()
    assert [p["provider_id"] for p in bot.notifier.sent] == [pid]


def test_the_reason_a_ping_was_given_up_is_kept_to_500_characters(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 1}})
    pid = bot.mail.add(raw_mail(LEAD))
    bot.notifier.fail(pid, ValueError("x" * 600))
    bot.cycle()
    result = bot.ledger.outbox_result(pid, "notify:")
    assert result.startswith("failed: ValueError: xxx") and len(result) == 500
