"""Gmail failing, not the message: the real client library against the fake, through the whole pipeline.

A message whose draft or download keeps failing with 5xx (after the adapter's own retries) keeps its attempts and
is finished when Gmail is back; a message Gmail refuses for itself (4xx) still ends in review after max_attempts.
"""

from __future__ import annotations

from pathlib import Path

from tests.contract.fake_gmail import FakeGmail, gerror
from tests.contract.test_gmail_pipeline import LEAD_SUBJECT, GmailBot, assert_lead_done


def test_drafts_failing_for_longer_than_max_attempts_use_no_attempt_and_the_lead_is_drafted_later(
        tmp_path: Path) -> None:
    with FakeGmail() as gm:
        bot = GmailBot(gm, tmp_path, {"poll": {"max_attempts": 2}})
        mid = bot.deliver(LEAD_SUBJECT)
        gm.server.fail(r"/drafts$", gerror(503, "backendError"), times=10**6)
        for _ in range(4):
            bot.cycle()
        row = bot.ledger.get(mid)
        assert row is not None and row.status == "decided" and row.attempts == 0 and "503" in row.last_error
        assert bot.cfg.labels.review not in bot.labels(mid) and bot.drafts_in(mid) == []
        gm.server.faults.clear()
        bot.cycle()
        assert_lead_done(bot, mid)
        assert bot.cfg.labels.review not in bot.labels(mid)


def test_a_message_gmail_refuses_for_itself_still_ends_in_review(tmp_path: Path) -> None:
    with FakeGmail() as gm:
        bot = GmailBot(gm, tmp_path, {"poll": {"max_attempts": 2}})
        mid = bot.deliver(LEAD_SUBJECT)
        gm.server.fail(r"/drafts$", gerror(400, "invalidArgument", "Invalid draft"), times=10**6)
        for _ in range(2):
            bot.cycle()
        row = bot.ledger.get(mid)
        assert row is not None and row.review and bot.cfg.labels.review in bot.labels(mid)
