"""Response tracking: the first answer from our side to every lead and every message in review.

An answer is a message in the same thread from one of our people (our domains, `routing.colleagues`, the pool
members, the shared mailbox), dated after the tracked mail arrived, that is not a draft. It counts even when it
was written before the bot saw the mail. Once answered, or `followup.track_days` after the bot first saw it, a
message is no longer looked at.

What a check costs depends on the mailbox:
- Gmail (a provider with thread_changes() and threads()): one history.list per cycle (2 units a page of 500
  changes) tells which threads got a new message since the last cycle; only open messages in those threads are
  read again, with threads.get (10 units each, batched 50 to a request). A newly tracked message is read once. No
  open message: no call at all. An expired history id reads every open thread once.
- Maildir (and any other provider): thread() for every open message each cycle, from the local index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from bot.config import Config
from bot.followup.hours import business_hours_between, wall_hours_between
from bot.followup.store import FollowupStore, Tracked
from bot.ports import AuthError, MailProvider, ThreadMessage
from bot.state import Ledger, StateError, iso

log = logging.getLogger(__name__)

CURSOR_KEY = "followup.history_id"
ENROLLED_KEY = "followup.enrolled_to"
TRACKED_ACTIONS = frozenset({"draft+assign", "assign", "colleague_replied"})  # a lead someone is to answer


@runtime_checkable
class ThreadChanges(Protocol):
    """A mailbox that can tell which threads changed, and read many threads in one request (Gmail)."""

    def thread_changes(self, cursor: str | None) -> tuple[set[str] | None, str]:
        """Threads that got a message (drafts aside) since `cursor`, and the cursor for next time; None for the
        set when `cursor` is missing or too old to tell (then every open thread must be read)."""
        ...

    def threads(self, thread_ids: Sequence[str]) -> dict[str, list[ThreadMessage] | Exception]:
        """Each thread's messages (thread()), or the error for that thread."""
        ...


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class OurPeople:
    """Whether an address is one of ours: our domains (and their subdomains), colleagues, pool members, the inbox."""

    def __init__(self, cfg: Config) -> None:
        self.domains = tuple(d.lower() for d in cfg.company.domains)
        self.people = {cfg.company.mailbox, *cfg.routing.colleagues, *cfg.routing.people()}

    def __call__(self, address: str) -> bool:
        address = address.lower()
        domain = address.rpartition("@")[2]
        return address in self.people or any(domain == d or domain.endswith("." + d) for d in self.domains)


def first_answer(thread: Sequence[ThreadMessage], item: Tracked, ours: Callable[[str], bool]) -> ThreadMessage | None:
    """The earliest message of ours in the thread dated after the tracked mail arrived; drafts never count."""
    arrived = parse_time(item.arrived_at)
    if arrived is None:
        return None
    replies = [(m.date, m) for m in thread if not m.is_draft and m.provider_id != item.provider_id
               and m.date is not None and m.date > arrived and ours(m.from_addr)]
    return min(replies, key=lambda pair: pair[0])[1] if replies else None


class Tracker:
    def __init__(self, cfg: Config, ledger: Ledger, store: FollowupStore, mail: MailProvider) -> None:
        self.cfg, self.ledger, self.store, self.mail = cfg, ledger, store, mail
        self.ours = OurPeople(cfg)
        self.expired: list[str] = []  # what the last check() stopped tracking

    def enroll(self, now: datetime) -> int:
        """Start tracking the leads and review mail decided since the last call; returns how many."""
        start = self.ledger.get_cursor(ENROLLED_KEY) or ""
        rows = self.ledger.db.execute(
            "SELECT provider_id, decided_at FROM messages m WHERE decided_at >= ? AND decided_at != '' "
            "AND (review=1 OR category='lead') AND NOT EXISTS (SELECT 1 FROM followup f "
            "WHERE f.provider_id = m.provider_id) ORDER BY decided_at", (start,)).fetchall()
        added = 0
        with self.ledger.transaction():
            for found in rows:
                row = self.ledger.get(found["provider_id"])
                decision = (row.record.get("decision") or {}) if row else {}
                if row is None or not (row.review or decision.get("action") in TRACKED_ACTIONS):
                    continue
                arrived = min(parse_time(row.received_at) or now, now)
                self.store.add(row.provider_id, row.thread_id, "review" if row.review else "lead", iso(arrived),
                               iso(now), row.assignee, str(decision.get("pool") or ""))
                added += 1
            if rows:
                self.ledger.set_cursor(ENROLLED_KEY, max(r["decided_at"] for r in rows))
        return added

    def check(self, now: datetime) -> list[Tracked]:
        """Look for answers to the open messages that may have one; returns those found answered."""
        items = self.store.open()
        mail = self.mail
        if not items:
            if isinstance(mail, ThreadChanges) and self.ledger.get_cursor(CURSOR_KEY):
                self.ledger.set_cursor(CURSOR_KEY, "")  # nothing to watch: no calls until there is again
            return []
        changed: set[str] | None = None
        cursor: str | None = None
        if isinstance(mail, ThreadChanges):
            changed, cursor = mail.thread_changes(self.ledger.get_cursor(CURSOR_KEY) or None)
        due = [i for i in items if not i.checked_at or changed is None or i.thread_id in changed]
        threads = self._threads(sorted({i.thread_id for i in due}))
        answered: list[Tracked] = []
        with self.ledger.transaction():
            for item in due:
                thread = threads.get(item.thread_id)
                if thread is None or isinstance(thread, Exception):
                    self.store.update(item.provider_id, checked_at="")  # read it again next cycle, whatever changed
                    continue
                answer = first_answer(thread, item, self.ours)
                if answer is None:
                    self.store.update(item.provider_id, checked_at=iso(now))
                    continue
                self._answered(item, answer, now)
                answered.append(item)
            self.expired = self._expire(now)
            if cursor is not None:
                self.ledger.set_cursor(CURSOR_KEY, cursor)
        return answered

    def _threads(self, thread_ids: list[str]) -> dict[str, list[ThreadMessage] | Exception]:
        if not thread_ids:
            return {}
        if isinstance(self.mail, ThreadChanges):
            return self.mail.threads(thread_ids)
        found: dict[str, list[ThreadMessage] | Exception] = {}
        for tid in thread_ids:
            try:
                found[tid] = self.mail.thread(tid)
            except (AuthError, StateError):
                raise
            except Exception as exc:  # this thread waits for the next cycle; the others go on
                log.warning("reading thread %s for answers failed: %s", tid, exc)
                found[tid] = exc
        return found

    def _answered(self, item: Tracked, answer: ThreadMessage, now: datetime) -> None:
        arrived = parse_time(item.arrived_at) or now
        when = answer.date or now
        self.store.update(
            item.provider_id, status="answered", checked_at=iso(now), answered_at=iso(when),
            answered_by=answer.from_addr,
            response_hours=round(business_hours_between(arrived, when, self.cfg.followup.business_hours), 2),
            response_wall_hours=round(wall_hours_between(arrived, when), 2))
        log.info("answered: %s by %s", item.provider_id, answer.from_addr)

    def _expire(self, now: datetime) -> list[str]:
        """Stop looking for an answer to what was tracked longer than track_days; returns their provider ids."""
        limit = iso(now - timedelta(days=self.cfg.followup.track_days))
        gone = [r[0] for r in self.ledger.db.execute(
            "SELECT provider_id FROM followup WHERE status='open' AND tracked_at < ?", (limit,)).fetchall()]
        self.ledger.db.execute("UPDATE followup SET status='expired' WHERE status='open' AND tracked_at < ?", (limit,))
        return gone
