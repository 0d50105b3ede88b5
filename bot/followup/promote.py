"""A message a person moves from review to the lead label gets the lead's actions.

The sales team expects a lead they rescued from review to be handled like any other: the draft, the assignee (a
round-robin turn, so the rotation counts it), the ping and the CRM record the bot would have made. The category
correction itself is recorded by bot.corrections (label moves, or "lead" in the sheet's correction column);
this step finds those corrections of review mail and decides the message again as a lead, with the message read
from the mailbox once more. Its audit row is updated, not appended again. A thread one of our people already
answered is left to them, as for any lead.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.followup.audit import describe_event
from bot.followup.store import FollowupStore
from bot.mime import parse_email
from bot.models import Classification, MessageRef, PrefilterResult
from bot.ports import AuthError
from bot.state import StateError, classification_from_dict, iso

if TYPE_CHECKING:
    from bot.pipeline import Pipeline

log = logging.getLogger(__name__)

MOVED = "a person moved it from review to lead"


def promotions(pipeline: Pipeline, store: FollowupStore, now: datetime) -> int:
    """Give the lead's actions to every review message people corrected to lead; returns how many."""
    led = pipeline.s.ledger
    found = led.db.execute(
        "SELECT DISTINCT m.provider_id FROM corrections c JOIN messages m ON m.provider_id = c.provider_id "
        "OR (c.message_id != '' AND m.message_id = c.message_id) WHERE c.new_category='lead' AND m.review=1 "
        "AND m.status='done' AND NOT EXISTS (SELECT 1 FROM followup_events e WHERE e.provider_id = m.provider_id "
        "AND e.kind='promoted') ORDER BY c.id").fetchall()
    done = 0
    for (pid,) in found:
        try:
            done += _promote(pipeline, store, pid, now)
        except (AuthError, StateError):
            raise
        except Exception as exc:  # tried again next cycle
            log.warning("giving %s the lead's actions failed, retrying next cycle: %s", pid, exc)
    return done


def _promote(pipeline: Pipeline, store: FollowupStore, pid: str, now: datetime) -> int:
    led, mail = pipeline.s.ledger, pipeline.s.mail
    row = led.get(pid)
    if row is None:
        return 0
    ref = MessageRef(pid, row.thread_id)
    [(_, raw)] = list(mail.fetch([ref]))
    if isinstance(raw, Exception):
        raise raw
    email = parse_email(raw, pid, row.thread_id, pipeline.cfg.classify.text_chars)
    known = row.record.get("classification")
    c = classification_from_dict(known) if known else Classification("lead", 1.0, None, "correction")
    c = replace(c, category="lead", confidence=1.0, review_reason=None, reasons=(MOVED, *c.reasons[:2]))
    with led.transaction():
        ev = pipeline.evaluate(email, PrefilterResult("classify"), c, lambda: mail.thread(row.thread_id))
        d = ev.decision
        if d.review:  # nobody to assign, no address to reply to: it stays in review, and why is recorded
            store.add_event(pid, "promoted", iso(now), detail=d.reasons[-1])
            return 0
        pipeline._commit(ref, ev, rows="update")
        assignee = d.assignee.email if d.assignee else ""
        if store.get(pid) is None:
            store.add(pid, row.thread_id, "lead", iso(min(email.date or now, now)), iso(now), assignee, d.pool or "")
        store.update(pid, kind="lead", status="open", assignee=assignee, pool=d.pool or "",
                     assigned_at=iso(now) if assignee else "", reminded_at="", escalated_at="")
        store.add_event(pid, "promoted", iso(now), assignee, detail=d.action)
    log.info("%s", describe_event("promoted", iso(now), assignee, "", 0, f"{pid}: {d.action}"))
    try:
        pipeline.apply(pid, row.thread_id, None)
    except (AuthError, StateError):
        raise
    except Exception as exc:  # the decision is recorded: the next cycle resumes its effects
        log.warning("the lead's actions for %s wait for the next cycle: %s", pid, exc)
    return 1
