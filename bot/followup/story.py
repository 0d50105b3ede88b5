"""`audit show` and `audit search --unanswered`: what happened to a message, and what is still waiting for us.

The story of a message comes from the ledger alone: arrival, the decision and its reasons, the draft, the
assignee, the pings and CRM record (with what each sink answered), the corrections people made, the follow-up
(reminders, escalation, reassignment) and the answer. Times are shown in the business time zone.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.followup.audit import describe_event
from bot.state import Ledger, MessageRow


def find(ledger: Ledger, key: str) -> list[MessageRow]:
    """The messages a key names: a Message-ID (with or without <>), a provider id, or a customer's address."""
    key = key.strip()
    rows = ledger.db.execute(
        "SELECT provider_id FROM messages WHERE message_id IN (?, ?) OR provider_id = ? ORDER BY decided_at",
        (key, f"<{key.strip('<>')}>", key)).fetchall()
    if not rows and "@" in key:
        needle = key.strip("<>").lower()
        rows = [r for r in ledger.db.execute("SELECT provider_id, record FROM messages ORDER BY decided_at").fetchall()
                if needle in _addresses(r["record"])]
    return [row for r in rows if (row := ledger.get(r["provider_id"])) is not None]


def _addresses(record: str) -> set[str]:
    import json

    rec = json.loads(record)
    em, c = rec.get("email") or {}, rec.get("classification") or {}
    return {str(a).lower() for a in (em.get("from"), em.get("reply_to"), c.get("person_email")) if a}


def _local(cfg: Config, at: str) -> str:
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return at or "?"
    return when.astimezone(cfg.followup.business_hours.zone).strftime("%Y-%m-%d %H:%M %Z")


def _outbox(ledger: Ledger, pid: str) -> list[sqlite3.Row]:
    return list(ledger.db.execute("SELECT sink, status, result, last_error, created_at, done_at FROM outbox "
                                  "WHERE provider_id=? ORDER BY id", (pid,)).fetchall())


def story(cfg: Config, ledger: Ledger, row: MessageRow) -> list[str]:
    """The lines of one message's story, oldest first."""
    rec, pid = row.record, row.provider_id
    em, c, d = rec.get("email") or {}, rec.get("classification") or {}, rec.get("decision") or {}
    sender = f"{em.get('from_name', '')} <{em.get('from', '')}>".strip()
    lines: list[tuple[str, str]] = [(row.received_at or row.decided_at,
                                     f"arrived from {sender}: {em.get('subject', '')!r}")]
    verdict = f"{row.category}{' (review)' if row.review else ''}"
    conf = f" {c['confidence']:.2f} by {c.get('classifier', '?')}" if "confidence" in c else ""
    lines.append((row.decided_at, f"decided: {verdict}{conf} -> {'; '.join(rec.get('actions', ()))}"))
    lines += [("", f"    reason: {r}") for r in d.get("reasons", ())]
    for eff in ledger.effects(pid):
        if eff.kind == "draft":
            lines.append(("", f"draft: {eff.result or eff.status}"))
    for o in _outbox(ledger, pid):
        state = o["result"] if o["status"] == "done" else f"queued {o['last_error']}".strip()
        lines.append((o["done_at"] or o["created_at"], f"{o['sink']}: {state}"))
    for corr in ledger.corrections():
        if corr["provider_id"] == pid or (row.message_id and corr["message_id"] == row.message_id):
            lines.append((corr["at"], f"corrected by a person ({corr['source']}): {corr['old_category'] or '?'} -> "
                                      f"{corr['new_category']}"))
    lines += _follow_up_lines(ledger, pid)
    return [f"{_local(cfg, at) if at else '':<22} {text}" for at, text in lines]


def _follow_up_lines(ledger: Ledger, pid: str) -> list[tuple[str, str]]:
    try:
        t = ledger.db.execute("SELECT * FROM followup WHERE provider_id=?", (pid,)).fetchone()
        events = ledger.db.execute("SELECT * FROM followup_events WHERE provider_id=? ORDER BY id", (pid,)).fetchall()
    except sqlite3.OperationalError:  # a ledger from before response tracking
        return []
    out = [(e["at"], describe_event(e["kind"], e["at"], e["assignee"], e["previous"], e["hours"], e["detail"])
            .split(" UTC ", 1)[-1]) for e in events]
    if t is not None and t["status"] == "answered":
        out.append((t["answered_at"], f"answered by {t['answered_by']}: {t['response_hours']:.1f} business hours "
                                      f"({t['response_wall_hours']:.1f} h)"))
    elif t is not None and t["status"] in ("open", "expired"):
        out.append(("", "no answer yet" if t["status"] == "open" else "no answer found while it was tracked"))
    return sorted(out, key=lambda pair: pair[0] or "~")


def unanswered(ledger: Ledger, now: datetime, older_than_hours: float = 0.0) -> dict[str, dict[str, Any]]:
    """provider id -> tracked row of every lead or review message without an answer, older than the limit."""
    try:
        rows = ledger.db.execute("SELECT * FROM followup WHERE status IN ('open', 'expired')").fetchall()
    except sqlite3.OperationalError:
        return {}
    out = {}
    for r in rows:
        try:
            age = (now - datetime.fromisoformat(r["arrived_at"])).total_seconds() / 3600
        except ValueError:
            continue
        if age >= older_than_hours:
            out[r["provider_id"]] = dict(r) | {"age_hours": age}
    return out
