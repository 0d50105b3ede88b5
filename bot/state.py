"""The ledger: one SQLite database under state/ that makes the bot crash-safe.

It records every message's decision, each side effect's completion, the round-robin position of every pool,
the outbox of sink deliveries (audit rows, pings, CRM upserts), sync cursors and corrections. The decision,
its effects and the round-robin advance are committed in ONE transaction, so after a crash the bot resumes
from here: a decision is never taken twice, a person is never assigned twice, a done effect is not redone.

WAL mode with synchronous=NORMAL: a commit survives a crash of the process (the case that matters for a
daemon that gets killed or restarted); only an OS crash or power loss can lose the last few commits, and
the mail provider's processed label is the cross-check that catches those messages again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.models import Classification, Usage

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    provider_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,              -- failed | decided | done
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    received_at TEXT NOT NULL DEFAULT '',
    decided_at TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    review INTEGER NOT NULL DEFAULT 0,
    classifier TEXT NOT NULL DEFAULT '',
    assignee TEXT NOT NULL DEFAULT '',
    llm_calls INTEGER NOT NULL DEFAULT 0,
    llm_tokens INTEGER NOT NULL DEFAULT 0,
    llm_cost_usd REAL NOT NULL DEFAULT 0,
    record TEXT NOT NULL DEFAULT '{}'   -- JSON: email summary, prefilter, classification, decision
);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id, decided_at);
CREATE INDEX IF NOT EXISTS messages_status ON messages(status);
CREATE INDEX IF NOT EXISTS messages_decided ON messages(decided_at);
CREATE TABLE IF NOT EXISTS effects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id TEXT NOT NULL,
    kind TEXT NOT NULL,                -- draft | modify | trash
    payload TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | done | dropped
    not_before TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',
    done_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS effects_pending ON effects(status, kind, not_before);
CREATE INDEX IF NOT EXISTS effects_message ON effects(provider_id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id TEXT NOT NULL,
    sink TEXT NOT NULL,                -- audit:csv | audit:sheets | notify:slack | crm:hubspot ...
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | done
    attempts INTEGER NOT NULL DEFAULT 0,       -- calls made (a crash after one means it may have landed)
    last_error TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',       -- done: what the sink answered, or "failed: <error>" when given up
    created_at TEXT NOT NULL,
    done_at TEXT NOT NULL DEFAULT '',
    refusals INTEGER NOT NULL DEFAULT 0       -- times the sink refused this item on its own (not an outage)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(sink, status, id);
CREATE TABLE IF NOT EXISTS rotation (
    pool TEXT NOT NULL,
    member TEXT NOT NULL,
    last_turn INTEGER NOT NULL,        -- the pool's turn counter when this member was last assigned
    assigned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, member)
);
CREATE TABLE IF NOT EXISTS cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    old_category TEXT NOT NULL,
    new_category TEXT NOT NULL,
    source TEXT NOT NULL,              -- label | sheet | cli
    at TEXT NOT NULL,
    UNIQUE (provider_id, new_category)
);
"""


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds") if dt else ""


class StateError(Exception):
    """The state directory or database cannot be used; the bot must not act on mail it could not record."""


@dataclass(frozen=True)
class MessageRow:
    provider_id: str
    thread_id: str
    message_id: str
    status: str
    attempts: int
    last_error: str
    received_at: str
    decided_at: str
    category: str
    review: bool
    assignee: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Effect:
    id: int
    provider_id: str
    kind: str
    payload: dict[str, Any]
    status: str
    result: str


@dataclass(frozen=True)
class OutboxItem:
    id: int
    provider_id: str
    sink: str
    attempts: int


def prepare_state_dir(path: Path) -> None:
    """Create state/ with mode 0700 and prove it is writable before anything touches mail."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        probe = path / ".write-probe"
        with open(probe, "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        raise StateError(f"state directory {path} is not usable ({exc.strerror or exc}); "
                         "fix permissions or free disk space, nothing was processed") from None


class Ledger:
    def __init__(self, path: Path | None, readonly: bool = False) -> None:
        """path=None keeps everything in memory (commands that must not change state); readonly=True reads an
        existing ledger and writes nothing (health probes)."""
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        if readonly and path is not None:
            try:
                self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                          isolation_level=None, check_same_thread=False)
                self.db.row_factory = sqlite3.Row
            except sqlite3.Error as exc:
                raise StateError(f"cannot open the ledger {path}: {exc}") from None
            return
        if path is not None:
            prepare_state_dir(path.parent)
        try:
            if path is not None:
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self.db = sqlite3.connect(path or ":memory:", timeout=30, isolation_level=None, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            self._add_columns()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the ledger {path}: {exc}") from None
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if path is not None and side.exists():
                os.chmod(side, 0o600)

    def close(self) -> None:
        self.db.close()

    def verify(self) -> None:
        """SQLite's quick_check of the whole file: damage stops the bot before it acts on anything."""
        try:
            problems = [str(r[0]) for r in self.db.execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.Error as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            first = " ".join(" ".join(problems).replace("*** in database main ***", "").split())
            raise StateError(f"the ledger {self.path} is damaged (SQLite quick_check: {first[:160]}); restore it "
                             "from a backup, or move it aside to start over; nothing was processed")

    def is_empty(self) -> bool:
        """Nothing recorded at all: a new ledger (or one that was deleted and created again)."""
        return all(self._exec(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None  # noqa: S608 (fixed names)
                   for table in ("messages", "effects", "cursors"))

    def _add_columns(self) -> None:
        """Columns newer than a ledger on disk: CREATE TABLE IF NOT EXISTS leaves an existing table as it is."""
        have = {r["name"] for r in self.db.execute("PRAGMA table_info(outbox)")}
        if "refusals" not in have:
            try:
                self.db.execute("ALTER TABLE outbox ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process opening the ledger added it first
                    raise

    # ------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self, rollback: bool = False) -> Iterator[None]:
        """One atomic unit; nested calls join the outer one. rollback=True discards it (dry runs)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._exec("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self.db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._exec("ROLLBACK" if rollback else "COMMIT")

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, args)
        except sqlite3.OperationalError as exc:
            if "disk" in str(exc) or "readonly" in str(exc) or "unable to open" in str(exc):
                raise StateError(f"the ledger cannot be written ({exc}); stopping before anything is lost") from None
            raise
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed", "file is not a database"
            raise StateError(f"the ledger {self.path} is damaged ({exc}); stopping before anything is lost") from None

    # ------------------------------------------------------------ messages

    def get(self, provider_id: str) -> MessageRow | None:
        row = self._exec("SELECT * FROM messages WHERE provider_id=?", (provider_id,)).fetchone()
        if row is None:
            return None
        return MessageRow(row["provider_id"], row["thread_id"], row["message_id"], row["status"], row["attempts"],
                          row["last_error"], row["received_at"], row["decided_at"], row["category"],
                          bool(row["review"]), row["assignee"], json.loads(row["record"]))

    def known(self, provider_id: str) -> bool:
        return self._exec("SELECT 1 FROM messages WHERE provider_id=?", (provider_id,)).fetchone() is not None

    def record_failure(self, provider_id: str, thread_id: str, error: str, counted: bool = True) -> int:
        """Record a failure of a message that has no decision yet; returns its attempt count. counted=False (our
        side or a service failed, not the message) keeps the count and only records the error."""
        with self.transaction():
            self._exec(
                "INSERT INTO messages(provider_id, thread_id, status, attempts, last_error, updated_at) "
                "VALUES(?,?,?,?,?,?) ON CONFLICT(provider_id) DO UPDATE SET attempts=attempts+excluded.attempts, "
                "last_error=excluded.last_error, updated_at=excluded.updated_at",
                (provider_id, thread_id, "failed", int(counted), error[:2000], iso(now_utc())))
            row = self._exec("SELECT attempts FROM messages WHERE provider_id=?", (provider_id,)).fetchone()
        return int(row["attempts"])

    def failed_messages(self, max_attempts: int) -> list[tuple[str, str, int]]:
        rows = self._exec("SELECT provider_id, thread_id, attempts FROM messages WHERE status='failed' "
                          "AND attempts < ? ORDER BY updated_at", (max_attempts,)).fetchall()
        return [(r["provider_id"], r["thread_id"], r["attempts"]) for r in rows]

    def save_decision(self, provider_id: str, thread_id: str, message_id: str, received_at: str,
                      classification: Classification | None, category: str, review: bool, assignee: str,
                      record: dict[str, Any]) -> None:
        usage = classification.usage if classification else Usage()
        self._exec(
            "INSERT INTO messages(provider_id, thread_id, message_id, status, received_at, decided_at, updated_at, "
            "category, review, classifier, assignee, llm_calls, llm_tokens, llm_cost_usd, record) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(provider_id) DO UPDATE SET "
            "thread_id=excluded.thread_id, message_id=excluded.message_id, status=excluded.status, "
            "received_at=excluded.received_at, decided_at=excluded.decided_at, updated_at=excluded.updated_at, "
            "category=excluded.category, review=excluded.review, classifier=excluded.classifier, "
            "assignee=excluded.assignee, llm_calls=excluded.llm_calls, llm_tokens=excluded.llm_tokens, "
            "llm_cost_usd=excluded.llm_cost_usd, record=excluded.record",
            (provider_id, thread_id, message_id, "decided", received_at, iso(now_utc()), iso(now_utc()), category,
             int(review), classification.classifier if classification else "", assignee, usage.calls,
             usage.prompt_tokens + usage.completion_tokens, usage.cost_usd, json.dumps(record, default=str)))

    def update_record(self, provider_id: str, **fields: Any) -> None:
        row = self.get(provider_id)
        if row is None:
            return
        record = {**row.record, **fields}
        self._exec("UPDATE messages SET record=?, updated_at=? WHERE provider_id=?",
                   (json.dumps(record, default=str), iso(now_utc()), provider_id))

    def mark_review(self, provider_id: str) -> None:
        """Flag a decided message for review (it gave up after repeated failures) without rewriting its decision."""
        self._exec("UPDATE messages SET review=1, updated_at=? WHERE provider_id=?", (iso(now_utc()), provider_id))

    def set_status(self, provider_id: str, status: str, error: str = "") -> None:
        self._exec("UPDATE messages SET status=?, last_error=?, updated_at=? WHERE provider_id=?",
                   (status, error[:2000], iso(now_utc()), provider_id))

    def bump_attempts(self, provider_id: str, error: str, counted: bool = True) -> int:
        """As record_failure, for a message with a decision whose effects failed."""
        with self.transaction():
            self._exec("UPDATE messages SET attempts=attempts+?, last_error=?, updated_at=? WHERE provider_id=?",
                       (int(counted), error[:2000], iso(now_utc()), provider_id))
            row = self._exec("SELECT attempts FROM messages WHERE provider_id=?", (provider_id,)).fetchone()
        return int(row["attempts"]) if row else 0

    def unfinished(self) -> list[str]:
        """Decided messages whose mail effects are not all done (a crash or an outage interrupted them)."""
        rows = self._exec("SELECT provider_id FROM messages WHERE status='decided' ORDER BY decided_at").fetchall()
        return [r["provider_id"] for r in rows]

    def iter_messages(self, since: str = "") -> Iterator[MessageRow]:
        for row in self._exec("SELECT provider_id FROM messages WHERE decided_at >= ? AND decided_at != '' "
                              "ORDER BY decided_at", (since,)).fetchall():
            found = self.get(row["provider_id"])
            if found:
                yield found

    # ------------------------------------------------------------ effects

    def add_effect(self, provider_id: str, kind: str, payload: dict[str, Any],
                   not_before: datetime | None = None) -> None:
        self._exec("INSERT INTO effects(provider_id, kind, payload, not_before) VALUES(?,?,?,?)",
                   (provider_id, kind, json.dumps(payload), iso(not_before)))

    def effects(self, provider_id: str, status: str | None = None) -> list[Effect]:
        rows = self._exec("SELECT * FROM effects WHERE provider_id=? AND (? IS NULL OR status=?) ORDER BY id",
                          (provider_id, status, status)).fetchall()
        return [Effect(r["id"], r["provider_id"], r["kind"], json.loads(r["payload"]), r["status"], r["result"])
                for r in rows]

    def finish_effect(self, effect_id: int, result: str = "", status: str = "done") -> None:
        self._exec("UPDATE effects SET status=?, result=?, done_at=? WHERE id=?",
                   (status, result, iso(now_utc()), effect_id))

    def due_effects(self, kind: str, now: datetime) -> list[Effect]:
        rows = self._exec("SELECT * FROM effects WHERE kind=? AND status='pending' AND not_before != '' "
                          "AND not_before <= ? ORDER BY id", (kind, iso(now))).fetchall()
        return [Effect(r["id"], r["provider_id"], r["kind"], json.loads(r["payload"]), r["status"], r["result"])
                for r in rows]

    def effect_result(self, provider_id: str, kind: str) -> str:
        row = self._exec("SELECT result FROM effects WHERE provider_id=? AND kind=? AND status='done' "
                         "ORDER BY id DESC LIMIT 1", (provider_id, kind)).fetchone()
        return str(row["result"]) if row else ""

    # ------------------------------------------------------------ outbox

    def enqueue(self, provider_id: str, sink: str) -> None:
        self._exec("INSERT INTO outbox(provider_id, sink, created_at) VALUES(?,?,?)",
                   (provider_id, sink, iso(now_utc())))

    def pending_outbox(self, sink: str, limit: int, after: int = 0) -> list[OutboxItem]:
        """The oldest pending items of a sink whose id is above `after` (to page past items left pending)."""
        # Items of a message wait until its mail effects are done, so rows and pings carry the draft id.
        rows = self._exec(
            "SELECT o.id, o.provider_id, o.sink, o.attempts FROM outbox o JOIN messages m USING(provider_id) "
            "WHERE o.sink=? AND o.status='pending' AND m.status='done' AND o.id > ? ORDER BY o.id LIMIT ?",
            (sink, after, limit)).fetchall()
        return [OutboxItem(r["id"], r["provider_id"], r["sink"], r["attempts"]) for r in rows]

    def outbox_attempt(self, ids: Sequence[int]) -> None:
        """Mark items as attempted BEFORE the call: a crash after it then replays with retry=True."""
        with self.transaction():
            for i in ids:
                self._exec("UPDATE outbox SET attempts=attempts+1 WHERE id=?", (i,))

    def outbox_done(self, ids: Sequence[int], result: str = "") -> None:
        with self.transaction():
            for i in ids:
                self._exec("UPDATE outbox SET status='done', result=?, done_at=?, last_error='' WHERE id=?",
                           (result, iso(now_utc()), i))

    def outbox_failed(self, ids: Sequence[int], error: str) -> None:
        with self.transaction():
            for i in ids:
                self._exec("UPDATE outbox SET last_error=? WHERE id=?", (error[:1000], i))

    def outbox_refused(self, item_id: int, error: str) -> int:
        """Count a refusal of this one item (not an outage); returns how many there have been."""
        with self.transaction():
            self._exec("UPDATE outbox SET refusals=refusals+1, last_error=? WHERE id=?", (error[:1000], item_id))
            row = self._exec("SELECT refusals FROM outbox WHERE id=?", (item_id,)).fetchone()
        return int(row["refusals"]) if row else 0

    def outbox_given_up(self, since: str = "") -> dict[str, int]:
        """Items per sink that ended as failed (given up at or after `since`); each one's reason is its result."""
        rows = self._exec("SELECT sink, COUNT(*) AS n FROM outbox WHERE status='done' AND result LIKE 'failed:%' "
                          "AND done_at >= ? GROUP BY sink", (since,)).fetchall()
        return {r["sink"]: int(r["n"]) for r in rows}

    def outbox_result(self, provider_id: str, sink_prefix: str) -> str:
        row = self._exec("SELECT status, result, last_error FROM outbox WHERE provider_id=? AND sink LIKE ? "
                         "ORDER BY id DESC LIMIT 1", (provider_id, sink_prefix + "%")).fetchone()
        if row is None:
            return ""
        if row["status"] == "done":
            return str(row["result"])
        return "queued" + (f" ({row['last_error']})" if row["last_error"] else "")

    def outbox_queues(self) -> dict[str, tuple[int, str, str]]:
        """Per sink with pending items: (count, oldest created_at, oldest created_at among items that failed)."""
        rows = self._exec("SELECT sink, COUNT(*) AS n, MIN(created_at) AS oldest, "
                          "MIN(CASE WHEN last_error != '' THEN created_at END) AS failing "
                          "FROM outbox WHERE status='pending' GROUP BY sink").fetchall()
        return {r["sink"]: (int(r["n"]), str(r["oldest"]), str(r["failing"] or "")) for r in rows}

    def review_count(self, since: str) -> int:
        """Messages sent to review that were decided at or after `since`."""
        row = self._exec("SELECT COUNT(*) AS n FROM messages WHERE review=1 AND decided_at >= ?", (since,)).fetchone()
        return int(row["n"])

    def outbox_backlog(self) -> dict[str, int]:
        rows = self._exec("SELECT sink, COUNT(*) AS n FROM outbox WHERE status='pending' GROUP BY sink").fetchall()
        return {r["sink"]: int(r["n"]) for r in rows}

    # ------------------------------------------------------------ round-robin

    def rotation(self, pool: str) -> dict[str, int]:
        rows = self._exec("SELECT member, last_turn FROM rotation WHERE pool=?", (pool,)).fetchall()
        return {r["member"]: int(r["last_turn"]) for r in rows}

    def previous_owner(self, thread_id: str, contact: str, since: str) -> tuple[str, str] | None:
        """(assignee, "thread" | "contact") of the newest assigned message in this thread, or else from this
        contact decided since `since` (ISO time): who already owns the conversation."""
        if thread_id:
            row = self._exec("SELECT assignee FROM messages WHERE thread_id=? AND assignee!='' "
                             "ORDER BY decided_at DESC LIMIT 1", (thread_id,)).fetchone()
            if row:
                return str(row["assignee"]), "thread"
        if contact:
            row = self._exec("SELECT assignee FROM messages WHERE assignee!='' AND decided_at>=? AND "
                             "lower(json_extract(record, '$.classification.person_email'))=? "
                             "ORDER BY decided_at DESC LIMIT 1", (since, contact.lower())).fetchone()
            if row:
                return str(row["assignee"]), "contact"
        return None

    def set_rotation(self, pool: str, member: str, last_turn: int, assigned: bool) -> None:
        self._exec("INSERT INTO rotation(pool, member, last_turn, assigned) VALUES(?,?,?,?) "
                   "ON CONFLICT(pool, member) DO UPDATE SET last_turn=excluded.last_turn, "
                   "assigned=assigned+excluded.assigned", (pool, member, last_turn, int(assigned)))

    def assignments_since(self, since: str) -> dict[str, int]:
        """Leads per assignee address decided at or after `since`."""
        rows = self._exec("SELECT assignee, COUNT(*) AS n FROM messages WHERE assignee != '' AND decided_at >= ? "
                          "GROUP BY assignee", (since,)).fetchall()
        return {r["assignee"]: int(r["n"]) for r in rows}

    def backlog(self, max_attempts: int) -> tuple[int, int]:
        """(messages failing that will be retried, decided messages whose mail effects are not all done)."""
        row = self._exec("SELECT SUM(status='failed' AND attempts < ?) AS failing, SUM(status='decided') AS open "
                         "FROM messages", (max_attempts,)).fetchone()
        return int(row["failing"] or 0), int(row["open"] or 0)

    def assignment_counts(self, pool: str) -> dict[str, int]:
        rows = self._exec("SELECT member, assigned FROM rotation WHERE pool=?", (pool,)).fetchall()
        return {r["member"]: int(r["assigned"]) for r in rows}

    # ------------------------------------------------------------ cursors (CursorStore)

    def get_cursor(self, key: str) -> str | None:
        row = self._exec("SELECT value FROM cursors WHERE key=?", (key,)).fetchone()
        return str(row["value"]) if row else None

    def set_cursor(self, key: str, value: str) -> None:
        self._exec("INSERT INTO cursors(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                   (key, value))

    # ------------------------------------------------------------ ClassificationMemory

    def llm_spent_usd(self, day: str) -> float:
        row = self._exec("SELECT COALESCE(SUM(llm_cost_usd), 0) AS s FROM messages WHERE substr(decided_at,1,10)=?",
                         (day,)).fetchone()
        return float(row["s"])

    def recent_thread_classification(self, thread_id: str, hours: float) -> Classification | None:
        if not thread_id or hours <= 0:
            return None
        since = iso(now_utc() - timedelta(hours=hours))
        row = self._exec("SELECT record FROM messages WHERE thread_id=? AND decided_at >= ? AND classifier != '' "
                         "AND classifier NOT LIKE 'prefilter%' ORDER BY decided_at DESC LIMIT 1",
                         (thread_id, since)).fetchone()
        if row is None:
            return None
        data = json.loads(row["record"]).get("classification")
        return classification_from_dict(data) if data else None

    # ------------------------------------------------------------ corrections

    def add_correction(self, provider_id: str, message_id: str, old: str, new: str, source: str) -> bool:
        cur = self._exec("INSERT OR IGNORE INTO corrections(provider_id, message_id, old_category, new_category, "
                         "source, at) VALUES(?,?,?,?,?,?)", (provider_id, message_id, old, new, source, iso(now_utc())))
        return cur.rowcount > 0

    def corrections(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._exec("SELECT * FROM corrections ORDER BY id").fetchall()]


def classification_to_dict(c: Classification) -> dict[str, Any]:
    return asdict(c)


def classification_from_dict(d: dict[str, Any]) -> Classification:
    d = dict(d)
    d["usage"] = Usage(**d.get("usage", {}))
    d["reasons"] = tuple(d.get("reasons", ()))
    return Classification(**d)
