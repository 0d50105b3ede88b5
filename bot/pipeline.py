"""One poll cycle: list, fetch, decide, commit, act, deliver. The imperative shell around bot.decide.

Per message: parse -> pre-filter -> classify -> (thread check) -> decide and commit in one ledger transaction
(decision, effects, round-robin turn, outbox items) -> apply mail effects (draft, labels + archive), each marked
done as it completes (a provider with modify_many() gets the label changes of the whole cycle at its end,
grouped). After the messages: scheduled trash, then the outbox (CRM, notifications, audit rows).
One message failing never stops the others; it is retried next cycle. Every failure is classified (fault_of): a
failure of the message itself counts towards poll.max_attempts, after which it goes to review; a failure of our own
side or of a service (disk, ledger, an outage) uses no attempt, and the message simply waits for the next cycle.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, runtime_checkable

from bot.classify.cascade import LlmUnavailable, wants_llm
from bot.classify.language import detect_language
from bot.classify.prompt import request_tokens
from bot.config import Config
from bot.corrections import CorrectionCheck
from bot.decide import decide, describe_actions, prefilter_classification, review_decision
from bot.faults import crash_point
from bot.followup.cycle import FollowUp
from bot.mime import parse_email
from bot.models import Classification, Decision, Email, MessageRef, PrefilterResult, Usage
from bot.ports import (
    AuditSink,
    AuthError,
    Classifier,
    Crm,
    MailboxPaused,
    MailProvider,
    MessageGone,
    Notifier,
    RetryLater,
    ThreadMessage,
    Unavailable,
)
from bot.prefilter import prefilter
from bot.progress import tracked
from bot.records import audit_row, crm_payload, message_record, notify_payload
from bot.replies import build_reply, is_ours
from bot.routing import Turn
from bot.state import Effect, Ledger, MessageRow, OutboxItem, StateError, iso, now_utc

log = logging.getLogger("bot.pipeline")

OUTBOX_BATCH = 200
SET_ASIDE_MAX = 10  # rows of one batch an audit sink may refuse on their own before the rest waits a cycle
PROGRESS_FROM = 100  # a cycle with this many messages to do (a first sync of a backlog) shows its progress
LABEL_BATCH = 1000  # deferred label changes applied at once at most (Gmail's batchModify takes 1,000 ids)
OUTAGE_STREAK = 3  # messages in a row failing on our side or a service: the rest of the cycle waits


def fault_of(exc: BaseException) -> str:
    """Whose failure this is: "message" (it counts towards the message's attempts), "ours" (our own side or a
    service: no attempt is used, the message waits for the next cycle) or "stop" (as "ours", and the rest of the
    cycle waits too). AuthError and StateError never get here: they stop the bot.

    An OSError is the disk, permissions or the network, never the content of a mail (providers report a message
    they cannot read as a MailError); an sqlite3 error is the ledger.
    """
    if isinstance(exc, RetryLater):
        return "stop"
    if isinstance(exc, Unavailable | OSError | sqlite3.Error):
        return "ours"
    return "message"


@runtime_checkable
class BulkLabels(Protocol):
    """A mail provider that makes one label change on many messages in one call (Gmail: messages.batchModify)."""

    def modify_many(self, provider_ids: Sequence[str], add: Sequence[str], archive: bool) -> Mapping[str, Exception]:
        """modify(id, add, [], archive) for every id; returns the error of each message left unchanged."""
        ...


@runtime_checkable
class DraftIds(Protocol):
    """A mail provider whose drafts have ids of their own, apart from their messages' ids (Gmail)."""

    def draft_id(self, message_id: str) -> str:
        """The id create_draft() returned for the draft whose message thread() lists as `message_id`."""
        ...


@dataclass
class Services:
    """Everything a cycle talks to; built by bot.bootstrap, or by tests with fakes."""

    cfg: Config
    mail: MailProvider
    classifier: Classifier
    ledger: Ledger
    audit_sinks: Sequence[AuditSink] = ()
    notifiers: Sequence[Notifier] = ()
    crms: Sequence[Crm] = ()
    clock: Callable[[], datetime] = now_utc
    link: Callable[[str, str], str] = lambda provider_id, thread_id: ""


@dataclass
class Evaluation:
    """The outcome of deciding one message without acting on it."""

    email: Email
    prefilter: PrefilterResult
    classification: Classification
    decision: Decision


@dataclass
class CycleReport:
    listed: int = 0
    processed: int = 0
    failed: int = 0
    resumed: int = 0
    trashed: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False
    waiting: int = 0  # failures of our side or a service in a row (fault "ours"); OUTAGE_STREAK of them is an outage
    outage: bool = False  # the mailbox or our side is failing (or asked us to wait): its work waits for the next cycle
    skipped: int = 0  # deleted or moved out of the inbox before the bot got to them
    paused_until: datetime | None = None  # the mailbox asked for no calls before then
    dry_run_lines: list[str] = field(default_factory=list)
    drafts: int = 0
    review: int = 0
    assigned: dict[str, int] = field(default_factory=dict)  # assignee address -> leads given this cycle
    actions: dict[tuple[str, str], int] = field(default_factory=dict)  # (category, action) -> messages
    errors: dict[str, int] = field(default_factory=dict)  # service (mail, llm, a sink) -> failures
    llm: Usage = field(default_factory=Usage)

    def tally(self, ev: Evaluation) -> None:
        """Count one decided message."""
        d, u = ev.decision, ev.classification.usage
        self.categories[d.category] = self.categories.get(d.category, 0) + 1
        self.actions[(d.category, d.action)] = self.actions.get((d.category, d.action), 0) + 1
        self.drafts += int(d.draft)
        self.review += int(d.review)
        if d.assignee is not None:
            self.assigned[d.assignee.email] = self.assigned.get(d.assignee.email, 0) + 1
        self.llm = Usage(self.llm.calls + u.calls, self.llm.prompt_tokens + u.prompt_tokens,
                         self.llm.completion_tokens + u.completion_tokens, self.llm.cost_usd + u.cost_usd)

    def error(self, service: str) -> None:
        self.errors[service] = self.errors.get(service, 0) + 1


def _first(fact: str, doubt: str | None) -> str:
    """A review reason that puts a fact about the mail before the classifier's doubt about it."""
    return fact if not doubt or doubt.startswith(fact) else f"{fact}; {doubt}"


class Pipeline:
    def __init__(self, services: Services, dry_run: bool = False, stop: threading.Event | None = None) -> None:
        self.s = services
        self.cfg = services.cfg
        self.dry_run = dry_run
        self.stop = stop or threading.Event()
        self._corrections = CorrectionCheck()  # every CHECK_EVERY cycles: labels people changed, sheet column
        self._followup: FollowUp | None = None  # answers, reminders, escalation (made at the first cycle)
        self._secrets = self.cfg.secrets()

    # ------------------------------------------------------------ deciding

    def classify(self, email: Email, last_attempt: bool = True) -> tuple[PrefilterResult, Classification]:
        """Pre-filter, then classify unless a rule already decided. Touches no state.

        While the LLM is unavailable the message is deferred (LlmUnavailable propagates and the message is
        retried next cycle) unless this is its last attempt: then the offline result decides, marked for review.
        """
        cfg = self.cfg
        pre = prefilter(email, cfg.prefilter, frozenset(cfg.routing.colleagues), cfg.company.mailbox)
        if pre.outcome in ("skip", "category"):
            # No classifier runs, but the audit record and any reply still want the language.
            language, _ = detect_language(f"{email.subject}\n{email.body[:cfg.classify.text_chars]}",
                                          cfg.classify.languages)
            c = replace(prefilter_classification(pre), language=language)
        else:
            try:
                c = self.s.classifier.classify(email, pre if pre.outcome == "hint" else None)
            except LlmUnavailable as exc:
                if not last_attempt:
                    raise
                c = exc.fallback
        # What is wrong with the mail itself comes first in the review reason; the classifier's doubt after it.
        if email.defects and not email.body.strip() and not email.subject.strip():
            c = replace(c, review_reason=_first(f"unreadable message: {'; '.join(email.defects)}", c.review_reason))
        if email.raw_size > cfg.mail.max_message_bytes:
            read = "only its headers were read" if email.headers_only else "only that much of it was read"
            c = replace(c, review_reason=_first(
                f"message larger than mail.max_message_bytes ({cfg.mail.max_message_bytes:,} bytes): {read}",
                c.review_reason))
        if c.person_email and is_ours(cfg, c.person_email):  # the lead is the outside sender, never us
            c = replace(c, person_email=None)
        if c.classifier.startswith("cache:") and c.person_email not in (None, email.from_addr, email.reply_to):
            # Reused from another mail of the thread (one that shared a Message-ID, or another person's): its
            # category holds, but the contact is this mail's sender, not the one that mail named.
            c = replace(c, person_email=None, person_name=None, company=None, company_domain=None)
        return pre, c

    def evaluate(self, email: Email, pre: PrefilterResult, c: Classification,
                 thread: Callable[[], list[ThreadMessage]] | None = None) -> Evaluation:
        """Decide and take the round-robin turn, inside the caller's ledger transaction."""
        cfg = self.cfg
        rotation = {name: self.s.ledger.rotation(name) for name in cfg.routing.pools}
        since = iso(self.s.clock() - timedelta(days=cfg.routing.sticky_days))

        def owner() -> tuple[str, str] | None:
            if not cfg.routing.sticky_days:
                return None
            return self.s.ledger.previous_owner(email.thread_id, c.person_email or "", since)

        decision, turn = decide(cfg, email, pre, c, rotation, self.s.clock().date(), thread or (lambda: []), owner)
        if turn is not None:
            take_turn(self.s.ledger, turn, rotation[turn.pool])
        return Evaluation(email, pre, c, decision)

    def _commit(self, ref: MessageRef, ev: Evaluation, rows: str = "audit") -> None:
        """Record the decision with its effects and outbox items (inside the caller's transaction).

        rows="update": the message has an audit row already, which is updated instead of a new one appended."""
        led, d, email = self.s.ledger, ev.decision, ev.email
        rec = message_record(email, ev.prefilter, ev.classification, d, self.s.link(ref.provider_id, ref.thread_id))
        rec["actions"] = self.actions(d)
        led.save_decision(ref.provider_id, ref.thread_id, email.message_id, iso(email.date), ev.classification,
                          d.category, d.review, d.assignee.email if d.assignee else "", rec)
        self._add_effects(ref.provider_id, d, email, ev.classification)
        for sink in self.s.audit_sinks:
            led.enqueue(ref.provider_id, f"{rows}:{sink.name}")
        if d.notify:
            for notifier in self.s.notifiers:
                led.enqueue(ref.provider_id, f"notify:{notifier.name}")
        if d.crm:
            for crm in self.s.crms:
                led.enqueue(ref.provider_id, f"crm:{crm.name}")

    def _add_effects(self, provider_id: str, d: Decision, email: Email, c: Classification) -> None:
        led = self.s.ledger
        if d.draft and d.assignee:
            raw = build_reply(self.cfg, email, d, c.person_name, c.language)
            led.add_effect(provider_id, "draft", {"raw": raw.decode("utf-8", "replace"),
                                                  "source_id": email.provider_id})
        led.add_effect(provider_id, "modify", {"add": list(d.labels), "archive": d.archive})
        if d.trash_after_hours is not None:
            led.add_effect(provider_id, "trash", {}, self.s.clock() + timedelta(hours=d.trash_after_hours))

    def actions(self, d: Decision) -> list[str]:
        """What the decision does with the sinks this bot really has (no "crm upsert" without a CRM)."""
        return describe_actions(d, [n.name for n in self.s.notifiers], [c.name for c in self.s.crms])

    # ------------------------------------------------------------ one message

    def process(self, ref: MessageRef, raw: bytes | Exception, report: CycleReport,
                labels_later: list[tuple[MessageRef, Effect]] | None = None) -> None:
        """Decide and act on one message; a failure is recorded against it (or against our side: fault_of)."""
        led = self.s.ledger
        try:
            if isinstance(raw, Exception):
                raise raw
            email = parse_email(raw, ref.provider_id, ref.thread_id, self.cfg.classify.text_chars,
                                self.cfg.mail.max_message_bytes)
            snapshot: list[ThreadMessage] | None = None

            def thread() -> list[ThreadMessage]:
                nonlocal snapshot
                snapshot = self.s.mail.thread(ref.thread_id)
                return snapshot

            row = led.get(ref.provider_id)
            attempts = row.attempts if row is not None and row.status == "failed" else 0
            pre, c = self.classify(email, last_attempt=self.dry_run or attempts + 1 >= self.cfg.poll.max_attempts)
            crash_point("after_classify")
            with led.transaction(rollback=self.dry_run):
                ev = self.evaluate(email, pre, c, thread)
                if self.dry_run:
                    self._report_dry_run(email, ev, report)
                else:
                    self._commit(ref, ev)
            report.tally(ev)
            if not self.dry_run:
                crash_point("after_commit")
                self.apply(ref.provider_id, ref.thread_id, snapshot, labels_later)
            report.processed += 1
            report.waiting = 0
        except (AuthError, StateError, MailboxPaused):
            raise
        except MessageGone as exc:
            self._record_gone(ref, exc, report)
        except Exception as exc:  # one bad message never stops the cycle
            report.failed += 1
            report.error("llm" if isinstance(exc, LlmUnavailable) else "mail")
            self._record_failure(ref, exc, report)

    def _error_text(self, exc: Exception) -> str:
        """An error as the ledger and the audit rows keep it. Some services echo the credential they were sent
        in their error message; the log masks it, and so must everything written to disk or to a sink."""
        text = f"{type(exc).__name__}: {exc}"
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return text

    def _record_failure(self, ref: MessageRef, exc: Exception, report: CycleReport) -> None:
        """Record a failed attempt. Only a failure of the message itself uses one of its attempts (and after
        max_attempts sends it to review); when our side or a service failed, it keeps them all and waits."""
        error = self._error_text(exc)[:500]
        fault = fault_of(exc)
        if isinstance(exc, LlmUnavailable):
            log.info("message %s deferred to the next cycle: %s", ref.provider_id, error)
        elif fault != "message":
            report.waiting += 1
            report.outage |= fault == "stop" or report.waiting >= OUTAGE_STREAK
            log.warning("message %s waits for the next cycle, no attempt used (%s): %s", ref.provider_id,
                        "not its fault" if fault == "ours" else "asked to wait", error)
        else:
            log.warning("message %s failed: %s", ref.provider_id, error, exc_info=not isinstance(exc, OSError))
        if self.dry_run:
            return
        led = self.s.ledger
        row = led.get(ref.provider_id)
        counted = fault == "message"
        if row is not None and row.status == "decided":
            attempts = led.bump_attempts(ref.provider_id, error, counted)
        else:
            attempts = led.record_failure(ref.provider_id, ref.thread_id, error, counted)
        if counted and attempts >= self.cfg.poll.max_attempts:
            self._give_up(ref, error, attempts)

    def _record_gone(self, ref: MessageRef, exc: MessageGone, report: CycleReport) -> None:
        """Deleted, or moved out of the inbox by a person, before the bot was done with it: recorded once, with an
        audit row giving the reason; no label, draft, ping or turn, and no attempt used. Pending label changes are
        dropped. Should it come back to the inbox, it is processed then (see _is_new)."""
        report.skipped += 1
        led, reason = self.s.ledger, str(exc)
        log.info("message %s left alone: %s", ref.provider_id, reason)
        if self.dry_run:
            return
        row = led.get(ref.provider_id)
        if row is not None and row.record.get("gone"):
            return  # recorded already (listed again before the sync cursor moved on)
        with led.transaction():
            for eff in led.effects(ref.provider_id, "pending"):
                if eff.kind != "trash":
                    led.finish_effect(eff.id, reason, status="dropped")
            if row is None or row.status == "failed":
                d = Decision(category="", review=False, action="skip", labels=(), archive=False, draft=False,
                             trash_after_hours=None, notify=False, crm=False,
                             reasons=(f"not processed: {reason} before the bot read it",))
                rec = message_record(None, None, None, d, self.s.link(ref.provider_id, ref.thread_id))
                led.save_decision(ref.provider_id, ref.thread_id, "", "", None, "", False, "",
                                  rec | {"gone": reason, "actions": ["none"]})
                for sink in self.s.audit_sinks:
                    led.enqueue(ref.provider_id, f"audit:{sink.name}")
            else:  # decided: the decision stands; the audit row (queued with it) says what could not be done
                led.update_record(ref.provider_id, gone=reason, error=f"{reason}; its labels were not applied")
            led.set_status(ref.provider_id, "done")

    def _is_new(self, ref: MessageRef) -> bool:
        """Not in the ledger yet, or recorded as gone but listed in the inbox again (a person moved it back)."""
        row = self.s.ledger.get(ref.provider_id)
        return row is None or (bool(row.record.get("gone")) and row.category == "")

    def _give_up(self, ref: MessageRef, error: str, attempts: int) -> None:
        """Too many failures: label for review and keep it in the inbox. It is never dropped."""
        led = self.s.ledger
        log.error("message %s failed %d times, labelling it for review: %s", ref.provider_id, attempts, error)
        row = led.get(ref.provider_id)
        with led.transaction():
            for eff in led.effects(ref.provider_id, "pending"):
                led.finish_effect(eff.id, "dropped after repeated failures", status="dropped")
            d = review_decision(self.cfg, row.category if row and row.category else "other",
                                (f"review: failed {attempts} times: {error}",))
            if row is None or row.status == "failed":
                rec = message_record(None, None, None, d, self.s.link(ref.provider_id, ref.thread_id), error)
                led.save_decision(ref.provider_id, ref.thread_id, "", "", None, d.category, True, "", rec)
                for sink in self.s.audit_sinks:
                    led.enqueue(ref.provider_id, f"audit:{sink.name}")
            else:
                led.update_record(ref.provider_id, error=error, decision=row.record.get("decision"),
                                  actions=self.actions(d))
                led.mark_review(ref.provider_id)  # the audit row must say "review", as the mailbox label does
            led.add_effect(ref.provider_id, "modify", {"add": list(d.labels), "archive": False})
            led.set_status(ref.provider_id, "decided", error)
        try:
            self.apply(ref.provider_id, ref.thread_id, None)
        except Exception as exc:  # stays 'decided' with a pending effect; retried next cycle
            log.warning("could not label %s for review yet: %s", ref.provider_id, exc)

    # ------------------------------------------------------------ effects

    def apply(self, provider_id: str, thread_id: str, snapshot: list[ThreadMessage] | None,
              labels_later: list[tuple[MessageRef, Effect]] | None = None) -> None:
        """Run the pending mail effects of one message in order; each is marked done as it completes.

        With `labels_later`, the label change (always the last of them) is queued there instead, for
        apply_labels() to make together with the other messages' changes.
        """
        led, mail = self.s.ledger, self.s.mail
        for eff in led.effects(provider_id, "pending"):
            if eff.kind == "draft":
                source = eff.payload["source_id"]
                # A draft from an earlier attempt may exist (crash, or a failure after the server created it).
                existing = [m for m in (snapshot if snapshot is not None else mail.thread(thread_id))
                            if m.is_draft and m.source_id == source]
                if not existing:
                    draft_id = mail.create_draft(eff.payload["raw"].encode("utf-8"), thread_id)
                else:  # thread() lists the draft's message; the record keeps the draft id, as for a fresh draft
                    found = existing[0].provider_id
                    draft_id = mail.draft_id(found) if isinstance(mail, DraftIds) else found
                crash_point("after_draft")
                led.finish_effect(eff.id, draft_id)
            elif eff.kind == "modify" and labels_later is not None:
                labels_later.append((MessageRef(provider_id, thread_id), eff))
                return
            elif eff.kind == "modify":
                mail.modify(provider_id, eff.payload["add"], [], eff.payload["archive"])
                crash_point("after_modify")
                led.finish_effect(eff.id)
        if not any(e.kind != "trash" for e in led.effects(provider_id, "pending")):
            self._done(provider_id)

    def _done(self, provider_id: str) -> None:
        """The message's mail effects are all done; a provider that keeps mail in files gives the audit link its
        final place (a Maildir file moves when it is labelled and archived), relative to the config file."""
        led = self.s.ledger
        led.set_status(provider_id, "done")
        locate = getattr(self.s.mail, "locate", None)
        where = locate(provider_id) if locate is not None else None
        if where is not None:
            base = self.cfg.source.parent.resolve()
            led.update_record(provider_id, link=str(where.relative_to(base)) if where.is_relative_to(base)
                              else str(where))

    def apply_labels(self, queued: list[tuple[MessageRef, Effect]], report: CycleReport) -> None:
        """The queued label changes, one modify_many() per distinct change; a message whose change failed is
        retried like any failed message (its decision and draft are kept)."""
        led, mail = self.s.ledger, self.s.mail
        assert isinstance(mail, BulkLabels)
        groups: dict[tuple[tuple[str, ...], bool], list[tuple[MessageRef, Effect]]] = {}
        for ref, eff in queued:
            groups.setdefault((tuple(eff.payload["add"]), bool(eff.payload["archive"])), []).append((ref, eff))
        queued.clear()
        for (add, archive), items in groups.items():
            try:
                errors = mail.modify_many([ref.provider_id for ref, _ in items], add, archive)
            except (AuthError, StateError, MailboxPaused):
                raise
            except Exception as exc:
                errors = {ref.provider_id: exc for ref, _ in items}
            crash_point("after_modify")
            with led.transaction():
                for ref, eff in items:
                    if ref.provider_id not in errors:
                        led.finish_effect(eff.id)
                        if not any(e.kind != "trash" for e in led.effects(ref.provider_id, "pending")):
                            self._done(ref.provider_id)
            for ref, _ in items:
                error = errors.get(ref.provider_id)
                if isinstance(error, MessageGone):
                    report.processed -= 1
                    self._record_gone(ref, error, report)
                elif error is not None:
                    report.processed, report.failed = report.processed - 1, report.failed + 1
                    self._record_failure(ref, error, report)

    def trash_due(self, report: CycleReport) -> None:
        led = self.s.ledger
        due = led.due_effects("trash", self.s.clock())
        for start in range(0, len(due), 500):
            chunk = due[start:start + 500]
            try:
                self.s.mail.trash([e.provider_id for e in chunk])
            except (AuthError, StateError, MailboxPaused):
                raise
            except Exception as exc:
                report.error("mail")
                log.warning("trashing %d messages failed, retrying next cycle: %s", len(chunk), exc)
                return
            crash_point("after_trash")
            with led.transaction():
                for e in chunk:
                    led.finish_effect(e.id, "trashed")
            report.trashed += len(chunk)

    # ------------------------------------------------------------ outbox

    def deliver(self, report: CycleReport) -> None:
        """Replay the outbox in order, per sink; a sink that fails keeps its items for the next cycle."""
        led = self.s.ledger
        for crm in self.s.crms:
            self._deliver_each(f"crm:{crm.name}", partial(_upsert, crm), report)
        for notifier in self.s.notifiers:
            self._deliver_each(f"notify:{notifier.name}", partial(_notify, notifier, led), report)
        for sink in self.s.audit_sinks:
            self._deliver_rows(sink, report)

    def _deliver_rows(self, sink: AuditSink, report: CycleReport) -> None:
        """Audit rows in batches, oldest first. An outage stops the sink for this cycle with everything queued.
        A batch refused for another reason (a 400 over one bad cell) is split until the rows at fault are alone:
        the others are written, in order, and one bad row never holds up the audit (see _set_aside)."""
        led, name, after = self.s.ledger, f"audit:{sink.name}", 0
        while not self.stop.is_set():
            items = led.pending_outbox(name, OUTBOX_BATCH, after)
            if not items:
                return
            after = items[-1].id  # a row set aside stays pending: the next batch starts behind it
            batch = [(i, audit_row(led, r)) for i in items if (r := led.get(i.provider_id)) is not None]
            led.outbox_attempt([i.id for i in items])  # before the call: a crash after it replays with retry=True
            refused: list[tuple[OutboxItem, str]] = []
            written = report.delivered.get(name, 0)
            going = self._write_rows(sink, name, batch, any(i.attempts > 0 for i in items), refused, report)
            if refused and report.delivered.get(name, 0) == written:
                # Not one row went through: nothing shows the fault is in these rows rather than in the sink.
                led.outbox_failed([i.id for i, _ in refused], refused[0][1])
                log.warning("%s refused %d rows, they stay queued: %s", name, len(refused), refused[0][1])
                return
            self._set_aside(name, refused)
            if not going:
                return

    def _write_rows(self, sink: AuditSink, name: str, batch: list[tuple[OutboxItem, dict[str, Any]]], retry: bool,
                    refused: list[tuple[OutboxItem, str]], report: CycleReport) -> bool:
        """Write the rows in order; False after an outage (what is not written yet stays queued). Any other
        refusal splits the rows in halves, written one after the other, down to single rows: a row refused on
        its own goes to `refused` and the rows after it are still written (up to SET_ASIDE_MAX such rows)."""
        led = self.s.ledger
        if len(refused) >= SET_ASIDE_MAX:  # refusing row after row: more likely the sink's fault than the rows'
            return False
        try:
            sink.write([row for _, row in batch], retry)
        except Exception as exc:
            error, outage = self._error_text(exc), fault_of(exc) != "message"
        else:
            crash_point("after_audit_write")
            led.outbox_done([i.id for i, _ in batch], "written")
            report.delivered[name] = report.delivered.get(name, 0) + len(batch)
            return True
        if outage:  # the service, the network or the disk: never the fault of a row
            report.error(name)
            led.outbox_failed([i.id for i, _ in batch], error)
            log.warning("%s unavailable, %d rows stay queued: %s", name, len(batch), error)
            return False
        if len(batch) == 1:
            refused.append((batch[0][0], error))
            return True
        half = len(batch) // 2  # the refused call may have written some rows: retry=True has the sink skip them
        return (self._write_rows(sink, name, batch[:half], True, refused, report)
                and self._write_rows(sink, name, batch[half:], True, refused, report))

    def _set_aside(self, name: str, refused: list[tuple[OutboxItem, str]]) -> None:
        """Rows the sink refused on their own while it wrote others: retried next cycle, and after max_attempts
        such refusals recorded as failed with the reason (the ledger and `stats` show them), never dropped silently."""
        led, most = self.s.ledger, self.cfg.poll.max_attempts
        for item, error in refused:
            count = led.outbox_refused(item.id, error)
            if count < most:
                log.warning("%s refused the row of %s (%d of %d tries), the rows after it went on: %s", name,
                            item.provider_id, count, most, error)
                continue
            led.outbox_done([item.id], f"failed: {error}"[:500])
            log.error("%s: gave up on the row of %s after %d refusals: %s", name, item.provider_id, count, error)

    def _deliver_each(self, name: str, send: Callable[[MessageRow, bool], str], report: CycleReport) -> None:
        led = self.s.ledger
        for item in led.pending_outbox(name, OUTBOX_BATCH):
            if self.stop.is_set():
                return
            row = led.get(item.provider_id)
            if row is None:
                continue
            led.outbox_attempt([item.id])
            try:
                result = send(row, item.attempts > 0)
            except Exception as exc:
                error = self._error_text(exc)
                report.error(name)
                if fault_of(exc) != "message" or item.attempts + 1 < self.cfg.poll.max_attempts:
                    led.outbox_failed([item.id], error)
                    log.warning("%s unavailable, its queue waits for the next cycle: %s", name, exc)
                    return  # keep the order: nothing after a failed item goes out before it
                # Not an outage: this one item fails every time (a lead without an address...). Waiting on it
                # would hold up every later lead for good; it ends recorded as failed, with the reason.
                led.outbox_done([item.id], f"failed: {error}"[:500])
                log.error("%s: gave up on %s after %d attempts: %s", name, item.provider_id, item.attempts + 1, error)
                continue
            led.outbox_done([item.id], str(result))
            report.delivered[name] = report.delivered.get(name, 0) + 1

    # ------------------------------------------------------------ the cycle

    def run_cycle(self) -> CycleReport:
        report = CycleReport()
        try:
            return self._cycle(report)
        except Unavailable as exc:  # the mailbox itself: what was not done waits, no attempt is used
            if isinstance(exc, MailboxPaused):  # no mail calls until then
                report.paused_until = exc.until
            else:
                log.warning("the mailbox is unavailable, its work waits for the next cycle: %s", self._error_text(exc))
            report.outage = True
            if not self.dry_run:
                self.deliver(report)  # the sinks are not the mailbox
            return report

    def _cycle(self, report: CycleReport) -> CycleReport:
        cfg, led, mail = self.cfg, self.s.ledger, self.s.mail
        if not self.dry_run:
            if cfg.followup.enabled and self._followup is None:  # before any decision: it tracks from here on
                self._followup = FollowUp(self)
            mail.ensure_labels(cfg.labels.all())
            self._resume(report)
        if not report.outage:
            self._process_new(report)
        if self.dry_run:
            return report
        if not (report.stopped_early or report.outage):
            mail.checkpoint()  # every listed message is now decided or recorded as failed
        if not report.outage:  # a failing mailbox is asked nothing more this cycle
            self._corrections.tick(led, mail, cfg.labels, self.s.audit_sinks, cfg.classify.text_chars)  # before trash
            self.trash_due(report)
        self.deliver(report)
        if self._followup is not None and not report.outage:
            self._followup.run(report)
        return report

    def _resume(self, report: CycleReport) -> None:
        """Finish the mail effects a crash or an outage interrupted."""
        led = self.s.ledger
        for provider_id in led.unfinished():
            if report.outage:
                return
            row = led.get(provider_id)
            ref = MessageRef(provider_id, row.thread_id if row else "")
            try:
                self.apply(provider_id, ref.thread_id, None)
                report.resumed += 1
                report.waiting = 0
            except (AuthError, StateError, MailboxPaused):
                raise
            except MessageGone as exc:
                self._record_gone(ref, exc, report)
            except Exception as exc:
                report.failed += 1
                self._record_failure(ref, exc, report)

    def _process_new(self, report: CycleReport) -> None:
        """The new mail and the mail that failed before, each decided and acted on."""
        cfg, led, mail = self.cfg, self.s.ledger, self.s.mail
        refs = mail.list_new(cfg.poll.max_messages_per_cycle)
        report.listed = len(refs)
        todo = [r for r in refs if self._is_new(r)]
        listed_ids = {r.provider_id for r in todo}
        todo += [MessageRef(pid, tid) for pid, tid, _ in led.failed_messages(cfg.poll.max_attempts)
                 if pid not in listed_ids]
        # A provider that can label many messages in one call gets the cycle's label changes at the end, grouped
        # (Gmail: a few batchModify calls instead of 5 units per message). Until then they wait in the ledger as
        # pending effects, so a crash meanwhile only means they are made on resume.
        later: list[tuple[MessageRef, Effect]] | None = [] if isinstance(mail, BulkLabels) else None
        with led.transaction(rollback=True) if self.dry_run else nullcontext():
            for ref, raw in tracked(mail.fetch(todo), "processing new mail", len(todo), len(todo) >= PROGRESS_FROM):
                if self.stop.is_set() or report.outage:
                    report.stopped_early = True
                    break
                self.process(ref, raw, report, later)
                if later and len(later) >= LABEL_BATCH:
                    self.apply_labels(later, report)
        if later and not self.dry_run:
            self.apply_labels(later, report)

    def _report_dry_run(self, email: Email, ev: Evaluation, report: CycleReport) -> None:
        d = ev.decision
        line = (f"would {', '.join(self.actions(d))} | {d.category} "
                f"({ev.classification.confidence:.2f}, {ev.classification.classifier}) | "
                f"{email.from_addr} | {email.subject[:60]!r}")
        report.dry_run_lines.append(line)
        log.debug("dry run: %s", line)  # printed on stdout by the command; the log gets it only at DEBUG


def take_turn(ledger: Ledger, turn: Turn, rotation: Mapping[str, int]) -> None:
    """Persist a round-robin turn: newcomers queue at the back, the chosen member moves behind everyone."""
    for i, member in enumerate(turn.joined, start=1):
        if member != turn.member:
            ledger.set_rotation(turn.pool, member, max(rotation.values(), default=0) + i, assigned=False)
    ledger.set_rotation(turn.pool, turn.member, turn.turn, assigned=True)


def _upsert(crm: Crm, row: MessageRow, retry: bool) -> str:
    result = crm.upsert_lead(crm_payload(row), retry)
    crash_point("after_crm")
    return result


def _notify(notifier: Notifier, ledger: Ledger, row: MessageRow, retry: bool) -> str:
    result = notifier.notify(notify_payload(ledger, row), retry)
    crash_point("after_notify")
    return result


def classify_files(cfg: Config, items: Iterable[tuple[str, bytes | Exception]]) -> Iterator[dict[str, Any]]:
    """Decide for each raw message as the bot would, changing no state; one JSON-ready dict each."""
    from bot.bootstrap import build_classifier

    ledger = Ledger(None)  # in memory: the rotation advances from file to file, nothing is written
    services = Services(cfg=cfg, mail=None, classifier=build_classifier(cfg, None), ledger=ledger)  # type: ignore[arg-type]
    pipeline = Pipeline(services)
    for name, raw in items:
        try:
            if isinstance(raw, Exception):
                raise raw
            email = parse_email(raw, name, "", cfg.classify.text_chars, cfg.mail.max_message_bytes)
            pre, c = pipeline.classify(email)
            with ledger.transaction():
                ev = pipeline.evaluate(email, pre, c)
        except Exception as exc:
            yield {"file": name, "error": f"{type(exc).__name__}: {exc}"}
            continue
        d = ev.decision
        if cfg.classify.llm.enabled:
            wanted = c.usage.calls > 0
        else:  # c is the offline result: apply the cascade rule to it
            wanted = pre.outcome not in ("skip", "category") and wants_llm(
                cfg.classify.llm, cfg.classify.threshold, email, c, pre if pre.outcome == "hint" else None)
        yield {
            "file": name, "message_id": email.message_id, "category": d.category,
            "confidence": round(c.confidence, 4), "language": c.language, "action": d.action,
            "review": d.review, "assignee": d.assignee.email if d.assignee else None, "pool": d.pool,
            "cc": list(d.cc), "prefilter": pre.rule, "classifier": c.classifier, "reasons": list(d.reasons),
            "person_name": c.person_name, "person_email": c.person_email, "company": c.company,
            "technical_rfq": c.technical_rfq, "summary": c.summary,
            "llm_calls": c.usage.calls, "llm_tokens": c.usage.prompt_tokens + c.usage.completion_tokens,
            "llm_input_tokens": c.usage.prompt_tokens, "llm_failed_calls": c.usage.failed,
            # What the cascade rule asks for this mail and the estimated size of that request, LLM on or off:
            # how `eval` projects LLM use without a server.
            "llm_wanted": wanted, "llm_input_estimate": request_tokens(
                email, cfg.company.name, cfg.classify.text_chars, cfg.classify.llm, pre) if wanted else 0,
        }
