"""Reminders and escalation of unanswered leads.

`followup.remind_after_hours` business hours after a lead was assigned and still unanswered, its assignee gets
one reminder. After `followup.escalate_after_hours` the lead is escalated once, as `followup.escalate_to` says:
a message to the escalation channel, or reassignment to the next person of its pool (the round-robin turn is
taken as for a new lead, so the new assignee is not handed the next new lead as well; the draft is kept; the new
assignee is pinged and the old one told). After a reassignment the new assignee gets one reminder of their own.
An assignee who is away when the reminder is due (or no longer in any pool) is skipped: the lead is escalated at
once. Nobody else in the pool available: the reassignment becomes a message to the channel.

Every step is an event in the ledger (followup_events): notifications go out through the outbox, one item per
notifier and event (`followup:<notifier>:<event id>`), and the audit row of the lead is updated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.config import Config, Member, Pool
from bot.followup.audit import describe_event, queue_update
from bot.followup.hours import business_hours_between
from bot.followup.store import Event, FollowupStore, Tracked
from bot.followup.tracking import parse_time
from bot.records import notify_payload
from bot.routing import next_member
from bot.state import Ledger, MessageRow, iso

log = logging.getLogger(__name__)

EVENT_SINK = "followup"


@dataclass(frozen=True)
class Due:
    item: Tracked
    action: str  # remind | escalate | skip (a reminder that cannot be given and was escalated already)
    hours: float  # business hours unanswered since the current assignee got it
    reason: str


def member_of(cfg: Config, email: str) -> Member | None:
    return next((m for p in cfg.routing.pools.values() for m in p.members if m.person.email == email), None)


def due(cfg: Config, items: Sequence[Tracked], now: datetime) -> list[Due]:
    """What each open, assigned lead needs now (pure)."""
    fu, today = cfg.followup, now.astimezone(cfg.followup.business_hours.zone).date()
    out: list[Due] = []
    for item in items:
        since = parse_time(item.assigned_at)
        if item.kind != "lead" or item.status != "open" or not item.assignee or since is None:
            continue
        hours = business_hours_between(since, now, fu.business_hours)
        if not item.escalated_at and hours >= fu.escalate_after_hours:
            out.append(Due(item, "escalate", hours, f"no answer after {fu.escalate_after_hours:g} business hours"))
        elif not item.reminded_at and hours >= fu.remind_after_hours:
            member = member_of(cfg, item.assignee)
            if member is not None and not member.is_away(today):
                out.append(Due(item, "remind", hours, ""))
            else:
                why = f"{item.assignee} is away" if member else f"{item.assignee} is no longer in any pool"
                out.append(Due(item, "skip" if item.escalated_at else "escalate", hours, why))
    return out


class Escalation:
    """Carries out what due() found, inside one ledger transaction per lead."""

    def __init__(self, cfg: Config, ledger: Ledger, store: FollowupStore, notifiers: Sequence[Any],
                 audit_sinks: Sequence[Any]) -> None:
        self.cfg, self.ledger, self.store = cfg, ledger, store
        self.notifiers, self.audit_sinks = notifiers, audit_sinks

    def run(self, now: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in due(self.cfg, self.store.open(), now):
            with self.ledger.transaction():
                if d.action == "remind":
                    kind = self._remind(d, now)
                elif d.action == "escalate":
                    kind = self._escalate(d, now)
                else:
                    self.store.update(d.item.provider_id, reminded_at=iso(now))
                    continue
                queue_update(self.ledger, self.audit_sinks, d.item.provider_id)
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def _remind(self, d: Due, now: datetime) -> str:
        self.store.update(d.item.provider_id, reminded_at=iso(now))
        self._event(d.item.provider_id, "reminder", now, d.item.assignee, "", d.hours, d.reason)
        return "reminder"

    def _escalate(self, d: Due, now: datetime) -> str:
        reason = d.reason
        if self.cfg.followup.escalate_to == "reassign":
            pool, member = self._next_person(d.item, now)
            if pool is not None and member is not None:
                return self._reassign(d, pool, member, now)
            reason += "; nobody else in the pool is available"
        self.store.update(d.item.provider_id, escalated_at=iso(now), reminded_at=d.item.reminded_at or iso(now))
        self._event(d.item.provider_id, "escalation", now, d.item.assignee, "", d.hours, reason)
        return "escalation"

    def _next_person(self, item: Tracked, now: datetime) -> tuple[Pool | None, Member | None]:
        pool = self.cfg.routing.pools.get(item.pool) or self.cfg.routing.pools[self.cfg.routing.default_pool]
        others = Pool(pool.name, tuple(m for m in pool.members if m.person.email != item.assignee), pool.cc)
        turn = next_member(others, self.ledger.rotation(pool.name), now.astimezone(
            self.cfg.followup.business_hours.zone).date())
        if turn is None:
            return pool, None
        from bot.pipeline import take_turn

        take_turn(self.ledger, turn, self.ledger.rotation(pool.name))  # the new assignee's turn, as for a new lead
        return pool, next(m for m in others.members if m.person.email == turn.member)

    def _reassign(self, d: Due, pool: Pool, member: Member, now: datetime) -> str:
        pid, old, new = d.item.provider_id, d.item.assignee, member.person
        row = self.ledger.get(pid)
        if row is not None:
            decision = {**(row.record.get("decision") or {}), "assignee": asdict(new), "pool": pool.name}
            actions = [f"assign {new.email}" if a == f"assign {old}" else a for a in row.record.get("actions", ())]
            self.ledger.update_record(pid, decision=decision, actions=actions)
            self.ledger.db.execute("UPDATE messages SET assignee=? WHERE provider_id=?", (new.email, pid))
        self.store.update(pid, assignee=new.email, pool=pool.name, assigned_at=iso(now), escalated_at=iso(now),
                          reminded_at="")
        self._event(pid, "reassigned", now, new.email, old, d.hours, d.reason)
        log.info("lead %s reassigned from %s to %s: %s", pid, old, new.email, d.reason)
        return "reassigned"

    def _event(self, pid: str, kind: str, now: datetime, assignee: str, previous: str, hours: float,
               detail: str) -> None:
        event_id = self.store.add_event(pid, kind, iso(now), assignee, previous, round(hours, 2), detail)
        for notifier in self.notifiers:
            self.ledger.enqueue(pid, f"{EVENT_SINK}:{notifier.name}:{event_id}")
            if previous:  # the person who had it is told as well
                self.ledger.enqueue(pid, f"{EVENT_SINK}:{notifier.name}:{event_id}:previous")


def event_payload(cfg: Config, ledger: Ledger, row: MessageRow, event: Event, previous: bool) -> dict[str, Any]:
    """What a notifier gets for one event: the lead's ping payload with the event's kind, person and note.

    `provider_id` and `message_id` are the event's own keys (a replay finds an earlier post of this event, not the
    lead's first ping); `lead_message_id` is the lead's."""
    payload = notify_payload(ledger, row)
    kind = {"reassigned": "taken_over" if previous else "reassigned"}.get(event.kind, event.kind)
    target = event.previous if previous else event.assignee
    member = member_of(cfg, target)
    key = f"#{event.kind}-{event.id}{'-previous' if previous else ''}"
    payload.update(kind=kind, lead_message_id=row.message_id, hours=event.hours,
                   provider_id=row.provider_id + key, message_id=row.message_id + key,
                   assignee_email=target, assignee_name=member.person.name if member else target,
                   slack_id=member.person.slack_id if member else None,
                   note=describe_event(event.kind, event.at, event.assignee, event.previous, event.hours,
                                       event.detail))
    if event.kind == "escalation":
        payload["channel"] = cfg.followup.escalation_channel  # "" -> the notifier's fallback channel
    return payload
