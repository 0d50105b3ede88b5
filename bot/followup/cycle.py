"""The follow-up step of every poll cycle, after the pipeline delivered its outbox.

In order: review mail people moved to lead gets the lead's actions; newly decided leads and review mail start
being tracked; their threads are read for answers; reminders and escalations fall due; then the notifications
and audit row updates this produced are delivered (outages keep them queued, as for everything in the outbox).
A failing step is logged and tried again next cycle; it never stops the cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from bot.followup.audit import deliver_updates, queue_update
from bot.followup.escalation import EVENT_SINK, Escalation, event_payload
from bot.followup.promote import promotions
from bot.followup.store import FollowupStore
from bot.followup.tracking import Tracker
from bot.ports import AuthError
from bot.state import MessageRow, StateError

if TYPE_CHECKING:
    from bot.pipeline import CycleReport, Pipeline

log = logging.getLogger(__name__)


class FollowUp:
    def __init__(self, pipeline: Pipeline) -> None:
        s = pipeline.s
        self.pipeline = pipeline
        self.store = FollowupStore(s.ledger)
        self.store.start()
        self.tracker = Tracker(pipeline.cfg, s.ledger, self.store, s.mail)
        self.escalation = Escalation(pipeline.cfg, s.ledger, self.store, s.notifiers, s.audit_sinks)

    def run(self, report: CycleReport) -> dict[str, int]:
        """One follow-up step; returns what it did (promoted, tracked, answered, reminder, escalation...)."""
        s, now = self.pipeline.s, self.pipeline.s.clock()
        done: dict[str, int] = {}
        promoted = self._step("promotions", lambda: promotions(self.pipeline, self.store, now))
        if promoted:
            done["promoted"] = promoted
            self.pipeline.deliver(report)  # their pings and CRM records go out in this cycle
        done["tracked"] = self._step("tracking", lambda: self.tracker.enroll(now))
        done["answered"] = self._step("answers", lambda: self._answers(now))
        for kind, n in (self._step("reminders", lambda: self.escalation.run(now)) or {}).items():
            done[kind] = n
        self._step("notifications", lambda: self._deliver_events(report))
        updated = self._step("row updates", lambda: deliver_updates(s.ledger, s.audit_sinks,
                                                                      self.pipeline.cfg.poll.max_attempts))
        for name, n in (updated or {}).items():
            report.delivered[name] = report.delivered.get(name, 0) + n
        done = {k: v for k, v in done.items() if v}
        if done:
            log.info("follow-up: %s", ", ".join(f"{k} {v}" for k, v in done.items()))
        return done

    def _step(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (AuthError, StateError):
            raise
        except Exception as exc:
            log.warning("follow-up %s failed, retrying next cycle: %s: %s", what, type(exc).__name__, exc)
            return None

    def _answers(self, now: Any) -> int:
        answered = self.tracker.check(now)
        led = self.pipeline.s.ledger
        with led.transaction():
            for pid in [item.provider_id for item in answered] + self.tracker.expired:
                queue_update(led, self.pipeline.s.audit_sinks, pid)
        return len(answered)

    def _deliver_events(self, report: CycleReport) -> None:
        """Each event's notifications, oldest first; a notifier that is down keeps the rest of its queue."""
        s, led = self.pipeline.s, self.pipeline.s.ledger
        by_name = {n.name: n for n in s.notifiers}
        sinks = [r[0] for r in led.db.execute(
            "SELECT sink FROM outbox WHERE status='pending' AND sink LIKE ? GROUP BY sink ORDER BY MIN(id)",
            (f"{EVENT_SINK}:%",)).fetchall()]
        down: set[str] = set()
        for sink in sinks:
            _, name, rest = sink.split(":", 2)
            event = self.store.event(int(rest.split(":")[0]))
            notifier = by_name.get(name)
            if name in down:
                continue
            if notifier is None or event is None:  # the notifier was switched off since
                led.outbox_done([i.id for i in led.pending_outbox(sink, 100)], "skipped: no such notifier now")
                continue
            send = partial(_send_event, notifier, self.pipeline.cfg, led, event, rest.endswith(":previous"))
            self.pipeline._deliver_each(sink, send, report)
            if led.pending_outbox(sink, 1):
                down.add(name)
            if sink in report.delivered:  # one figure per notifier in the cycle summary, not one per event
                key = f"{EVENT_SINK}:{name}"
                report.delivered[key] = report.delivered.get(key, 0) + report.delivered.pop(sink)


def _send_event(notifier: Any, cfg: Any, ledger: Any, event: Any, previous: bool, row: MessageRow,
                retry: bool) -> str:
    return str(notifier.notify(event_payload(cfg, ledger, row, event, previous), retry))
