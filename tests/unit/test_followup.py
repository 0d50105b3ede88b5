"""Response tracking, reminders and escalation through the pipeline with in-memory fakes and the settable clock.

The shipped config counts business hours Mon-Fri 09:00-17:00 Europe/Berlin (UTC+1 in November/December).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from bot.config import BusinessHours, ConfigError
from bot.followup.hours import business_hours_between
from bot.followup.store import FollowupStore
from bot.pipeline import Pipeline
from tests.fakes import make_config, raw_mail
from tests.unit.test_pipeline import Bot

LEAD = "Quote for 3 pumps [lead:en:0.95]"
FRIDAY_3PM_BERLIN = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
BERLIN = BusinessHours("Europe/Berlin", (0, 1, 2, 3, 4), time(9), time(17))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------- business hours


def test_business_hours_skip_nights_and_the_weekend() -> None:
    # Friday 15:00 Berlin -> Monday 11:00 Berlin: 2 hours on Friday, 2 on Monday.
    assert business_hours_between(FRIDAY_3PM_BERLIN, utc(2026, 11, 30, 10), BERLIN) == pytest.approx(4.0)
    # Saturday to Sunday: nothing.
    assert business_hours_between(utc(2026, 11, 28, 8), utc(2026, 11, 29, 20), BERLIN) == 0.0
    # Before opening to after closing on a Tuesday: the whole day, 8 hours.
    assert business_hours_between(utc(2026, 12, 1, 5), utc(2026, 12, 1, 20), BERLIN) == pytest.approx(8.0)


def test_holidays_and_summer_time() -> None:
    xmas = BusinessHours(BERLIN.timezone, BERLIN.days, BERLIN.start, BERLIN.end, (date(2026, 12, 24),))
    # Wed 23 Dec 16:00 Berlin -> Fri 25 Dec 10:00 Berlin: 1 hour on the 23rd, the 24th is a holiday, 1 on the 25th.
    assert business_hours_between(utc(2026, 12, 23, 15), utc(2026, 12, 25, 9), xmas) == pytest.approx(2.0)
    # In July Berlin is UTC+2: 07:00-15:00 UTC is the working day.
    assert business_hours_between(utc(2026, 7, 1, 6), utc(2026, 7, 1, 8), BERLIN) == pytest.approx(1.0)


def test_config_errors_name_their_yaml_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, {"followup": {"business_hours": {"timezone": "Mars/Olympus", "days": ["mon", "funday"],
                                                               "start": "18:00", "end": "09:00"},
                                            "escalate_to": "nobody", "remind_after_hours": 30},
                               "report": {"weekly": {"day": "someday", "time": "25:00"}}})
    text = str(err.value)
    for expected in ("followup.business_hours.timezone: unknown time zone 'Mars/Olympus'",
                     "followup.business_hours.days[1]: expected a day of the week",
                     "followup.business_hours.end: is not after start",
                     "followup.escalate_to: expected one of channel, reassign",
                     "followup.escalate_after_hours: must be more than remind_after_hours",
                     "report.weekly.day: expected a day of the week", "report.weekly.time: expected a time of day"):
        assert expected in text


# ---------------------------------------------------------------- the bot with the follow-up


class FollowBot(Bot):
    def __init__(self, tmp_path: Path, patch: dict[str, Any] | None = None, start: datetime = FRIDAY_3PM_BERLIN):
        super().__init__(tmp_path, patch)
        self.clock.now = start
        self.pipeline = Pipeline(self.services())  # one process: the same pipeline cycle after cycle

    def cycle(self, dry_run: bool = False) -> Any:
        return self.pipeline.run_cycle()

    def at(self, when: datetime) -> Any:
        self.clock.now = when
        return self.cycle()

    def lead(self, subject: str = LEAD, **kw: Any) -> str:
        kw.setdefault("date", self.clock.now.strftime("%a, %d %b %Y %H:%M:%S +0000"))
        return self.mail.add(raw_mail(subject, **kw))

    def reply(self, pid: str, sender: str, when: datetime, folder: str = "SENT") -> str:
        lead = self.mail.messages[pid]
        raw = raw_mail("Re: " + LEAD, sender=sender, msgid=f"<reply-{when:%H%M}@acme-pumps.example>",
                       date=when.strftime("%a, %d %b %Y %H:%M:%S +0000"),
                       extra=f"In-Reply-To: {lead.message_id}\r\nReferences: {lead.message_id}\r\n")
        return self.mail.add(raw, labels=(folder,))

    def tracked(self, pid: str) -> Any:
        return FollowupStore(self.ledger).get(pid)

    def kinds(self) -> list[str]:
        return [p.get("kind", "lead") for p in self.notifier.sent]

    def row(self, pid: str) -> dict[str, Any]:
        return next(r for r in self.audit.rows if r["provider_id"] == pid)


def test_an_answer_is_found_and_filled_into_the_audit_row(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead()
    bot.cycle()
    assert bot.tracked(pid).status == "open" and bot.row(pid)["answered_at"] == ""
    bot.reply(pid, "Alice Carter <alice@acme-pumps.example>", utc(2026, 11, 30, 9, 30))  # Mon 10:30 Berlin
    bot.at(utc(2026, 11, 30, 9, 31))
    t = bot.tracked(pid)
    assert (t.status, t.answered_by) == ("answered", "alice@acme-pumps.example")
    assert t.response_hours == pytest.approx(3.5) and t.response_wall_hours == pytest.approx(67.5)
    row = bot.row(pid)  # updated in place: still one row
    assert len(bot.audit.rows) == 1
    assert (row["answered_at"], row["answered_by"], row["response_hours"], row["response_hours_wall"]) == (
        "2026-11-30T09:30:00+00:00", "alice@acme-pumps.example", "3.50", "67.50")
    bot.at(utc(2026, 12, 10, 9))  # answered: no reminder, no escalation ever
    assert bot.kinds() == ["lead"]


def test_a_draft_or_a_message_before_the_lead_is_no_answer(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead()
    bot.cycle()  # the bot's own draft is in the thread now
    bot.reply(pid, "Bob <bob@acme-pumps.example>", utc(2026, 11, 27, 13, 0))  # dated before the lead arrived
    bot.reply(pid, "Jane <jane@prospect.example>", utc(2026, 11, 27, 15, 0), folder="INBOX")  # the customer again
    bot.at(utc(2026, 11, 27, 15, 30))
    assert bot.tracked(pid).status == "open"


def test_a_colleague_outside_our_domains_answers(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path, {"routing": {"colleagues": ["rep@agency.example"]}})
    pid = bot.lead()
    bot.cycle()
    bot.reply(pid, "Agency Rep <rep@agency.example>", utc(2026, 11, 27, 15, 0), folder="INBOX")
    bot.at(utc(2026, 11, 27, 15, 5))
    assert (bot.tracked(pid).status, bot.tracked(pid).answered_by) == ("answered", "rep@agency.example")
    assert bot.tracked(pid).response_hours == pytest.approx(1.0)


def test_answered_before_the_bot_saw_the_lead(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead(date="Fri, 27 Nov 2026 08:00:00 +0000")  # 09:00 Berlin
    bot.reply(pid, "Bob Nguyen <bob@acme-pumps.example>", utc(2026, 11, 27, 10, 0))
    bot.cycle()  # at 14:00: the thread already holds Bob's answer
    assert bot.row(pid)["actions"].startswith("label")  # colleague replied: no draft, no assignee
    t = bot.tracked(pid)
    assert (t.status, t.answered_by, t.response_hours) == ("answered", "bob@acme-pumps.example", 2.0)
    assert bot.row(pid)["answered_by"] == "bob@acme-pumps.example"  # the row went out after the answer was found


def test_reminder_once_after_four_business_hours_across_the_weekend(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead()
    bot.cycle()
    bot.at(utc(2026, 11, 28, 12))  # Saturday: still 2 business hours
    bot.at(utc(2026, 11, 30, 9, 59))  # Monday 10:59 Berlin: 3.98
    assert bot.kinds() == ["lead"]
    bot.at(utc(2026, 11, 30, 10, 0))  # Monday 11:00 Berlin: 4 business hours
    bot.at(utc(2026, 11, 30, 12, 0))
    assert bot.kinds() == ["lead", "reminder"]
    reminder = bot.notifier.sent[1]
    assert reminder["assignee_email"] == "alice@acme-pumps.example" and reminder["hours"] == pytest.approx(4.0)
    assert reminder["thread_link"] == bot.row(pid)["link"]
    assert "reminder to alice@acme-pumps.example" in bot.row(pid)["followup"]


def test_escalation_to_the_channel_after_24_business_hours(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path, {"followup": {"escalation_channel": "C0MANAGERS"}})
    pid = bot.lead()
    bot.cycle()
    bot.at(utc(2026, 12, 2, 13, 59))  # Wednesday 14:59 Berlin: 23.98 business hours
    assert bot.kinds() == ["lead", "reminder"]
    bot.at(utc(2026, 12, 2, 14, 0))
    bot.at(utc(2026, 12, 9, 14, 0))  # once only
    assert bot.kinds() == ["lead", "reminder", "escalation"]
    escalation = bot.notifier.sent[2]
    assert escalation["channel"] == "C0MANAGERS" and escalation["hours"] == pytest.approx(24.0)
    assert bot.ledger.get(pid).assignee == "alice@acme-pumps.example"  # the lead stays with Alice
    assert "escalated after 24.0 business hours" in bot.row(pid)["followup"]


def test_reassignment_to_the_next_person_keeps_the_rotation_fair(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path, {"followup": {"escalate_to": "reassign"}})
    pid = bot.lead()
    bot.cycle()
    bot.at(utc(2026, 11, 30, 10, 0))
    bot.at(utc(2026, 12, 2, 14, 0))
    assert bot.kinds() == ["lead", "reminder", "reassigned", "taken_over"]
    to_bob, to_alice = bot.notifier.sent[2], bot.notifier.sent[3]
    assert to_bob["assignee_email"] == "bob@acme-pumps.example"
    assert to_alice["assignee_email"] == "alice@acme-pumps.example" and "to bob@" in to_alice["note"]
    assert bot.ledger.get(pid).assignee == "bob@acme-pumps.example"
    assert bot.row(pid)["assignee"] == "bob@acme-pumps.example"
    assert "reassigned from alice@acme-pumps.example to bob@acme-pumps.example" in bot.row(pid)["followup"]
    assert len(bot.drafts()) == 1  # the draft is kept
    assert bot.ledger.assignment_counts("inside_sales") == {"alice@acme-pumps.example": 1,
                                                            "bob@acme-pumps.example": 1, "carla@acme-pumps.example": 0}
    nxt = bot.lead("Another quote [lead:en:0.95]", sender="Max <max@other.example>")
    bot.cycle()  # Bob just got a lead: the next new one goes to Carla
    assert bot.ledger.get(nxt).assignee == "carla@acme-pumps.example"
    bot.at(utc(2026, 12, 2, 18, 0))
    bot.at(utc(2026, 12, 3, 12, 0))  # Bob's own reminder, 4 business hours after he got it; no second escalation
    about_it = [p for p in bot.notifier.sent if p.get("lead_message_id", p["message_id"]) == bot.row(pid)["message_id"]]
    assert [p.get("kind", "lead") for p in about_it] == ["lead", "reminder", "reassigned", "taken_over", "reminder"]
    assert about_it[-1]["assignee_email"] == "bob@acme-pumps.example"
    assert bot.kinds().count("reassigned") == 1


def test_an_away_assignee_is_skipped_straight_to_escalation(tmp_path: Path) -> None:
    away = {"name": "Alice Carter", "email": "alice@acme-pumps.example", "away": [{"from": "2026-11-30",
                                                                                    "to": "2026-12-04"}]}
    pools = {"inside_sales": {"members": [away, {"name": "Bob Nguyen", "email": "bob@acme-pumps.example"}]}}
    bot = FollowBot(tmp_path, {"followup": {"escalate_to": "reassign"}, "routing": {"pools": pools}})
    pid = bot.lead()
    bot.cycle()  # Friday: Alice is here and gets it
    bot.at(utc(2026, 11, 30, 10, 0))  # Monday, 4 business hours: Alice is away
    assert bot.kinds() == ["lead", "reassigned", "taken_over"]
    assert bot.ledger.get(pid).assignee == "bob@acme-pumps.example"
    assert "alice@acme-pumps.example is away" in bot.row(pid)["followup"]


def test_unanswered_mail_stops_being_tracked_after_track_days(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead()
    bot.cycle()
    bot.at(utc(2026, 12, 12, 14, 1))  # 15 days later
    assert bot.tracked(pid).status == "expired"
    bot.reply(pid, "Alice <alice@acme-pumps.example>", utc(2026, 12, 12, 15))
    bot.at(utc(2026, 12, 12, 16))
    assert bot.tracked(pid).status == "expired"  # no longer looked at
    assert "no answer found while tracked" in bot.row(pid)["followup"]


def test_review_mail_is_tracked_but_nobody_is_reminded(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead("Hm, not sure [support:en:0.3]")
    bot.cycle()
    assert bot.tracked(pid).kind == "review"
    bot.at(utc(2026, 12, 3, 12))
    assert bot.kinds() == [] and bot.tracked(pid).status == "open"


def test_the_row_update_waits_out_an_audit_outage(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead()
    bot.cycle()
    bot.audit.down = True
    bot.reply(pid, "Alice <alice@acme-pumps.example>", utc(2026, 11, 27, 15))
    bot.at(utc(2026, 11, 27, 15, 1))
    assert bot.row(pid)["answered_by"] == "" and bot.ledger.outbox_backlog() == {"update:fake": 1}
    bot.audit.down = False
    bot.at(utc(2026, 11, 27, 15, 2))
    assert bot.row(pid)["answered_by"] == "alice@acme-pumps.example" and bot.ledger.outbox_backlog() == {}


def test_tracking_starts_with_the_mail_decided_after_it_is_switched_on(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path, {"followup": {"enabled": False}})
    old = bot.lead()
    bot.cycle()
    bot.cfg = make_config(tmp_path)  # the follow-up is switched on, on a ledger with history
    bot.pipeline = Pipeline(bot.services())
    new = bot.lead("Second [lead:en:0.95]", sender="Max <max@other.example>")
    bot.at(utc(2026, 12, 3, 12))
    assert bot.tracked(old).status == "untracked" and bot.tracked(new).status == "open"
    assert bot.kinds() == ["lead", "lead"]  # the old lead is not reminded about


def test_review_mail_moved_to_the_lead_label_gets_the_leads_actions(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    pid = bot.lead("Pumps, maybe? [lead:en:0.4]")
    bot.cycle()
    assert bot.row(pid)["review"] == "yes" and bot.drafts() == [] and bot.notifier.sent == []
    bot.mail.messages[pid].labels.add("Triage/Lead")  # a person moves it from review to lead
    for minute in range(1, 16):  # corrections are looked for every 15th cycle
        bot.at(utc(2026, 11, 27, 14, minute))
    [draft] = bot.drafts()
    assert draft.thread_id == bot.mail.messages[pid].thread_id
    assert bot.ledger.get(pid).assignee == "alice@acme-pumps.example" and not bot.ledger.get(pid).review
    assert [p.get("kind", "lead") for p in bot.notifier.sent] == ["lead"]
    assert bot.crm.contacts["jane@prospect.example"]["notes"] == [bot.row(pid)["message_id"]]
    assert len(bot.audit.rows) == 1  # the row is updated, not written twice
    row = bot.row(pid)
    assert (row["category"], row["review"], row["assignee"]) == ("lead", "", "alice@acme-pumps.example")
    assert "moved from review to lead" in row["followup"]
    assert bot.ledger.assignment_counts("inside_sales")["alice@acme-pumps.example"] == 1
    assert bot.tracked(pid).kind == "lead" and bot.tracked(pid).assignee == "alice@acme-pumps.example"
    bot.at(utc(2026, 11, 27, 15, 0))
    bot.at(utc(2026, 11, 27, 15, 30))
    assert len(bot.drafts()) == 1 and len(bot.notifier.sent) == 1  # once only


def test_an_answer_found_while_the_row_waits_updates_the_row_after_it_is_written(tmp_path: Path) -> None:
    bot = FollowBot(tmp_path)
    bot.audit.down = True
    pid = bot.lead(date="Fri, 27 Nov 2026 12:00:00 +0000")
    bot.reply(pid, "Alice <alice@acme-pumps.example>", utc(2026, 11, 27, 13, 0))  # before the bot saw it
    bot.cycle()
    assert bot.tracked(pid).status == "answered"
    assert bot.ledger.outbox_backlog() == {"audit:fake": 1}  # no update queued behind a row that is not written
    bot.audit.down = False
    bot.at(utc(2026, 11, 27, 14, 5))
    assert bot.row(pid)["answered_by"] == "alice@acme-pumps.example" and bot.ledger.outbox_backlog() == {}
    assert bot.audit.calls[-1] == (1, True)  # and the update followed the row, in case it landed before the outage
