"""What the bot knows about answers and follow-ups, kept in the ledger database beside the decisions.

`followup` has one row per tracked message (every lead and every message sent to review): when it arrived,
who has it, whether and when one of our people answered, and the reminder and escalation made for it.
`followup_events` keeps what happened to it in order (reminder, escalation, reassignment, promotion), for the
audit, the notifications and the report. Both tables are written only by this package.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from typing import Any

from bot.state import Ledger, iso, now_utc

SCHEMA = """
CREATE TABLE IF NOT EXISTS followup (
    provider_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,                    -- lead | review
    arrived_at TEXT NOT NULL,              -- the mail's date (never later than tracked_at)
    tracked_at TEXT NOT NULL,              -- when tracking began: the bot's first sight of it
    assignee TEXT NOT NULL DEFAULT '',
    pool TEXT NOT NULL DEFAULT '',
    assigned_at TEXT NOT NULL DEFAULT '',  -- when the current assignee got it: reminders count from here
    status TEXT NOT NULL DEFAULT 'open',   -- open | answered | expired (none within track_days) | untracked
    checked_at TEXT NOT NULL DEFAULT '',   -- last look at its thread; '' = never looked
    answered_at TEXT NOT NULL DEFAULT '',
    answered_by TEXT NOT NULL DEFAULT '',
    response_hours REAL,                   -- business hours from arrival to the answer
    response_wall_hours REAL,              -- the same in wall-clock hours
    reminded_at TEXT NOT NULL DEFAULT '',
    escalated_at TEXT NOT NULL DEFAULT '',
    row_update INTEGER NOT NULL DEFAULT 0  -- 1: its audit row changed while still queued; update it once written
);
CREATE INDEX IF NOT EXISTS followup_status ON followup(status);
CREATE TABLE IF NOT EXISTS followup_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id TEXT NOT NULL,
    kind TEXT NOT NULL,                    -- reminder | escalation | reassigned | promoted
    at TEXT NOT NULL,
    assignee TEXT NOT NULL DEFAULT '',     -- the person it concerns (the new one for a reassignment)
    previous TEXT NOT NULL DEFAULT '',     -- the assignee before a reassignment
    hours REAL NOT NULL DEFAULT 0,         -- business hours without an answer at that moment
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS followup_events_message ON followup_events(provider_id);
"""
STARTED_KEY = "followup.started"  # when tracking was first switched on (see FollowupStore.start)


@dataclass(frozen=True)
class Tracked:
    provider_id: str
    thread_id: str
    kind: str
    arrived_at: str
    tracked_at: str
    assignee: str
    pool: str
    assigned_at: str
    status: str
    checked_at: str
    answered_at: str
    answered_by: str
    response_hours: float | None
    response_wall_hours: float | None
    reminded_at: str
    escalated_at: str
    row_update: int = 0


@dataclass(frozen=True)
class Event:
    id: int
    provider_id: str
    kind: str
    at: str
    assignee: str
    previous: str
    hours: float
    detail: str


_TRACKED = [f.name for f in fields(Tracked)]


def _tracked(row: sqlite3.Row) -> Tracked:
    return Tracked(**{name: row[name] for name in _TRACKED})


class FollowupStore:
    """The two tables, over the ledger's connection (and inside its transactions)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        ledger.db.executescript(SCHEMA)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return list(self.ledger.db.execute(sql, args).fetchall())

    def start(self) -> None:
        """Tracking begins now. Mail a ledger already holds when tracking is first switched on is marked
        untracked: otherwise every lead ever decided would be reminded about at once."""
        if self.ledger.get_cursor(STARTED_KEY) is None:
            with self.ledger.transaction():
                self.ledger.db.execute(
                    "INSERT OR IGNORE INTO followup(provider_id, kind, arrived_at, tracked_at, status) "
                    "SELECT provider_id, '', '', '', 'untracked' FROM messages WHERE decided_at != ''")
                self.ledger.set_cursor(STARTED_KEY, iso(now_utc()))

    # ------------------------------------------------------------ tracked messages

    def get(self, provider_id: str) -> Tracked | None:
        rows = self._rows("SELECT * FROM followup WHERE provider_id=?", (provider_id,))
        return _tracked(rows[0]) if rows else None

    def all(self) -> list[Tracked]:
        return [_tracked(r) for r in self._rows("SELECT * FROM followup ORDER BY arrived_at, provider_id")]

    def open(self) -> list[Tracked]:
        rows = self._rows("SELECT * FROM followup WHERE status='open' ORDER BY arrived_at, provider_id")
        return [_tracked(r) for r in rows]

    def add(self, provider_id: str, thread_id: str, kind: str, arrived_at: str, tracked_at: str, assignee: str,
            pool: str) -> None:
        self.ledger.db.execute(
            "INSERT OR IGNORE INTO followup(provider_id, thread_id, kind, arrived_at, tracked_at, assignee, pool, "
            "assigned_at) VALUES(?,?,?,?,?,?,?,?)",
            (provider_id, thread_id, kind, arrived_at, tracked_at, assignee, pool, tracked_at if assignee else ""))

    def update(self, provider_id: str, **values: Any) -> None:
        unknown = set(values) - set(_TRACKED)
        if unknown:
            raise ValueError(f"unknown followup fields {sorted(unknown)}")
        assignments = ", ".join(f"{k}=?" for k in values)
        self.ledger.db.execute(f"UPDATE followup SET {assignments} WHERE provider_id=?",  # noqa: S608 (names checked)
                               (*values.values(), provider_id))

    # ------------------------------------------------------------ events

    def add_event(self, provider_id: str, kind: str, at: str, assignee: str = "", previous: str = "",
                  hours: float = 0.0, detail: str = "") -> int:
        cur = self.ledger.db.execute(
            "INSERT INTO followup_events(provider_id, kind, at, assignee, previous, hours, detail) "
            "VALUES(?,?,?,?,?,?,?)", (provider_id, kind, at, assignee, previous, hours, detail))
        return int(cur.lastrowid or 0)

    def events(self, provider_id: str | None = None) -> list[Event]:
        if provider_id is None:
            rows = self._rows("SELECT * FROM followup_events ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM followup_events WHERE provider_id=? ORDER BY id", (provider_id,))
        return [Event(**dict(r)) for r in rows]

    def event(self, event_id: int) -> Event | None:
        rows = self._rows("SELECT * FROM followup_events WHERE id=?", (event_id,))
        return Event(**dict(rows[0])) if rows else None
