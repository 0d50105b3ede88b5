"""The follow-up in the audit record: columns filled in on the row of a message after it was written.

An answer, a reminder, an escalation or a reassignment queues an update of the message's row in the outbox
(sink `update:<audit sink>`), as a new row is queued: an outage of the sheet keeps it until the sheet is back.
The update is rendered from the ledger when it is delivered, so it carries the latest state, and it is made
only after the row itself was written. It sets the later columns (and, after a reassignment or a promotion from
review, the routing columns); a person's edits to any other cell are left alone.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from bot.ports import AuthError, SinkUnavailable
from bot.state import Ledger, MessageRow, StateError

log = logging.getLogger(__name__)

ANSWER_FIELDS = ("answered_at", "answered_by", "response_hours", "response_hours_wall", "followup")
ROUTING_FIELDS = ("category", "review", "actions", "assignee", "pool", "draft_id", "notification", "crm_id",
                  "reasons")
ROUTING_EVENTS = ("reassigned", "promoted")  # events after which the routing columns change too
UPDATE_BATCH = 200


@runtime_checkable
class RowUpdates(Protocol):
    """An audit sink whose rows can be changed in place (the CSV file, the Google Sheet)."""

    name: str

    def update(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Set the given fields on the row of each row's provider_id; returns the provider ids with no row."""
        ...


def _hours(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _when(at: str) -> str:
    return at[:16].replace("T", " ") + " UTC" if at else ""


def describe_event(kind: str, at: str, assignee: str, previous: str, hours: float, detail: str) -> str:
    """One event of the follow-up as a short sentence."""
    waited = f" after {hours:.1f} business hours" if hours else ""
    text = {
        "reminder": f"reminder to {assignee}{waited}",
        "escalation": f"escalated{waited}" + (f", still with {assignee}" if assignee else ""),
        "reassigned": f"reassigned from {previous} to {assignee}{waited}",
        "promoted": f"moved from review to lead by a person, assigned to {assignee or 'nobody'}",
    }.get(kind, kind)
    return f"{_when(at)} {text}" + (f" ({detail})" if detail else "")


def answer_fields(ledger: Ledger, provider_id: str) -> dict[str, str]:
    """The later audit columns of one message ('' until known); works on a ledger that never tracked anything."""
    empty = dict.fromkeys(ANSWER_FIELDS, "")
    try:
        tracked = ledger.db.execute("SELECT * FROM followup WHERE provider_id=?", (provider_id,)).fetchone()
        events = ledger.db.execute("SELECT * FROM followup_events WHERE provider_id=? ORDER BY id",
                                   (provider_id,)).fetchall()
    except sqlite3.OperationalError:  # the tables are made when the follow-up first runs
        return empty
    if tracked is None:
        return empty
    notes = [describe_event(e["kind"], e["at"], e["assignee"], e["previous"], e["hours"], e["detail"]) for e in events]
    if tracked["status"] == "expired":
        notes.append("no answer found while tracked")
    return {"answered_at": tracked["answered_at"], "answered_by": tracked["answered_by"],
            "response_hours": _hours(tracked["response_hours"]),
            "response_hours_wall": _hours(tracked["response_wall_hours"]), "followup": "; ".join(notes)}


def update_row(ledger: Ledger, row: MessageRow) -> dict[str, Any]:
    """The fields an update sets on the message's audit row."""
    from bot.records import audit_row

    full = audit_row(ledger, row)
    kinds = {r[0] for r in ledger.db.execute("SELECT kind FROM followup_events WHERE provider_id=?",
                                              (row.provider_id,)).fetchall()}
    names = ANSWER_FIELDS + (ROUTING_FIELDS if kinds & set(ROUTING_EVENTS) else ())
    return {"message_id": full["message_id"], "provider_id": row.provider_id} | {f: full[f] for f in names}


def queue_update(ledger: Ledger, sinks: Sequence[Any], provider_id: str) -> None:
    """Queue an update of the message's row in every audit sink that can take one (inside a transaction).

    While the row itself still waits in the outbox, nothing is queued: the message is marked instead, and its
    update is queued once the row was written (the row may have landed with older values before an outage)."""
    waiting = False
    for sink in sinks:
        if not isinstance(sink, RowUpdates):
            continue
        pending = {r[0] for r in ledger.db.execute(
            "SELECT sink FROM outbox WHERE provider_id=? AND status='pending' AND sink IN (?, ?)",
            (provider_id, f"audit:{sink.name}", f"update:{sink.name}")).fetchall()}
        if f"audit:{sink.name}" in pending:
            waiting = True
        elif f"update:{sink.name}" not in pending:  # one queued update renders the latest state
            ledger.enqueue(provider_id, f"update:{sink.name}")
    ledger.db.execute("UPDATE followup SET row_update=? WHERE provider_id=?", (int(waiting), provider_id))


def queue_waiting_updates(ledger: Ledger, sinks: Sequence[Any]) -> None:
    """Queue the updates of messages marked by queue_update() whose rows have been written since."""
    marked = [r[0] for r in ledger.db.execute("SELECT provider_id FROM followup WHERE row_update=1").fetchall()]
    with ledger.transaction():
        for pid in marked:
            queue_update(ledger, sinks, pid)


def deliver_updates(ledger: Ledger, sinks: Sequence[Any], max_attempts: int) -> dict[str, int]:
    """Make the queued row updates, per sink in one call; returns the rows updated per outbox name."""
    done: dict[str, int] = {}
    queue_waiting_updates(ledger, sinks)
    for sink in sinks:
        if not isinstance(sink, RowUpdates):
            continue
        name = f"update:{sink.name}"
        items = ledger.pending_outbox(name, UPDATE_BATCH)
        rows = [(i, update_row(ledger, r)) for i in items if (r := ledger.get(i.provider_id)) is not None]
        if not rows:
            continue
        ledger.outbox_attempt([i.id for i, _ in rows])
        try:
            missing = sink.update([r for _, r in rows])
        except (AuthError, StateError):
            raise
        except Exception as exc:
            _failed(ledger, name, [i for i, _ in rows], exc, max_attempts)
            continue
        with ledger.transaction():
            for item, row in rows:
                ledger.outbox_done([item.id], "no row to update" if row["provider_id"] in missing else "updated")
        done[name] = len(rows) - len(missing)
    return done


def _failed(ledger: Ledger, name: str, items: Sequence[Any], exc: Exception, max_attempts: int) -> None:
    """An outage keeps the updates queued; a refusal is counted and, after max_attempts, recorded as given up."""
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SinkUnavailable | OSError):
        ledger.outbox_failed([i.id for i in items], error)
        log.warning("%s unavailable, %d row updates stay queued: %s", name, len(items), error)
        return
    for item in items:
        if ledger.outbox_refused(item.id, error) >= max_attempts:
            ledger.outbox_done([item.id], f"failed: {error}"[:500])
    log.warning("%s refused %d row updates: %s", name, len(items), error)
