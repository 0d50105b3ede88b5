"""Response tracking on Gmail: the real GmailProvider (google-api-python-client) against the local Gmail fake.

Answers are messages our people send in the lead's thread (SENT in the shared mailbox, or a colleague's mail with
the inbox on CC). The tests also hold the quota the tracking spends per cycle to what the README states.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.followup.store import FollowupStore
from tests.contract.fake_gmail import FakeGmail
from tests.contract.test_gmail_pipeline import LEAD_SUBJECT, GmailBot
from tests.fakes import raw_mail


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[GmailBot]:
    with FakeGmail() as fake:
        yield GmailBot(fake, tmp_path)
        assert fake.sent() == []


def answer(bot: GmailBot, mid: str, sender: str, minutes: int = 30, labels: tuple[str, ...] = ("SENT",)) -> str:
    lead = bot.gm.messages[mid]
    msgid = lead.header("Message-ID")
    date = (bot.gm.clock() - timedelta(hours=1) + timedelta(minutes=minutes)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    raw = raw_mail("Re: " + LEAD_SUBJECT, sender=sender, msgid=f"<re-{minutes}@acme-pumps.example>", date=date,
                   extra=f"In-Reply-To: {msgid}\r\nReferences: {msgid}\r\n")
    return bot.gm.add_message(raw, labels=labels)


def tracked(bot: GmailBot, mid: str) -> tuple[str, str]:
    t = FollowupStore(bot.ledger).get(mid)
    assert t is not None
    return t.status, t.answered_by


def tracking_units(fake: FakeGmail) -> int:
    """Units of the calls only the tracking makes: history.list over every label, and threads.get (an idle
    pipeline reads history of the inbox only, and threads only for new leads)."""
    history = [r for r in fake.server.requests(r"/history$") if "labelId" not in r.query]
    return 2 * len(history) + 10 * fake.calls.count("threads.get")


def test_an_answer_sent_from_the_shared_mailbox_is_found_for_two_plus_ten_units(bot: GmailBot) -> None:
    mid = bot.deliver(LEAD_SUBJECT, date=bot.gm.clock().strftime("%a, %d %b %Y %H:%M:%S +0000"))
    other = bot.deliver("Second [lead:en:0.9]", sender="Max <max@other.example>")
    bot.cycle()
    assert tracked(bot, mid) == ("open", "") and tracked(bot, other) == ("open", "")
    bot.gm.reset_counters()
    bot.gm.server.log.clear()
    bot.cycle()  # idle: one history.list, no thread read
    assert tracking_units(bot.gm) == 2
    answer(bot, mid, "Acme Sales <sales@acme-pumps.example>", minutes=90)  # sent by a person from the inbox
    bot.gm.reset_counters()
    bot.gm.server.log.clear()
    bot.cycle()
    assert tracked(bot, mid) == ("answered", "sales@acme-pumps.example")
    assert tracked(bot, other) == ("open", "")
    assert bot.gm.calls.count("threads.get") == 1  # only the thread that changed
    assert tracking_units(bot.gm) == 12
    [row] = bot.rows(mid)
    assert row["answered_by"] == "sales@acme-pumps.example" and float(row["response_hours_wall"]) == 0.5


def test_a_colleague_with_the_inbox_on_cc_and_one_before_the_bot_saw_the_lead(bot: GmailBot) -> None:
    bot.cfg = replace(bot.cfg, routing=replace(bot.cfg.routing, colleagues=("rep@agency.example",)))
    bot.start()
    early = bot.deliver("Early [lead:en:0.9]", sender="Eva <eva@early.example>")
    answer(bot, early, "Bob Nguyen <bob@acme-pumps.example>", minutes=10)
    late = bot.deliver(LEAD_SUBJECT)
    bot.cycle()  # the first look reads every tracked thread: Bob's answer is found
    assert tracked(bot, early) == ("answered", "bob@acme-pumps.example")
    assert bot.ledger.get(early).record["decision"]["action"] == "colleague_replied"
    answer(bot, late, "Rep <rep@agency.example>", minutes=120, labels=("INBOX", "UNREAD"))
    bot.cycle()
    assert tracked(bot, late) == ("answered", "rep@agency.example")


def test_an_expired_history_reads_every_open_thread_once(bot: GmailBot) -> None:
    mids = [bot.deliver(f"Quote {i} [lead:en:0.9]", sender=f"P{i} <p{i}@x.example>") for i in range(3)]
    bot.cycle()
    bot.gm.expire_history()
    bot.gm.reset_counters()
    bot.cycle()
    assert bot.gm.calls.count("threads.get") == 3  # 404 on history: look at each open thread again
    bot.gm.reset_counters()
    bot.cycle()
    assert bot.gm.calls.count("threads.get") == 0
    assert all(tracked(bot, m) == ("open", "") for m in mids)


def test_nothing_open_costs_nothing(bot: GmailBot) -> None:
    bot.deliver("Invoice [accounting:en:0.9]")
    bot.cycle()
    bot.gm.reset_counters()
    bot.gm.server.log.clear()
    bot.cycle()
    assert tracking_units(bot.gm) == 0
