"""The functional core: from a classified message to a Decision. No I/O here.

Safety rules that hold whatever the config says:
- below the confidence threshold, or with a review reason, a message is only labelled for review: it stays in
  the inbox, nothing is drafted, assigned or trashed;
- only spam and newsletter mail is ever scheduled for the (recoverable) trash;
- a thread one of our people already answered is not reassigned and gets no draft.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date

from bot.classify.shapes import personal_request
from bot.config import Config
from bot.models import DISPOSABLE, Classification, Decision, Email, PrefilterResult
from bot.ports import ThreadMessage
from bot.replies import reply_address
from bot.routing import Turn, assign, colleague_replied, stay_with


def prefilter_classification(pre: PrefilterResult) -> Classification:
    """The classification a deciding pre-filter rule stands for."""
    return Classification(category=pre.category or "other", confidence=1.0, language=None,
                          classifier=f"prefilter:{pre.rule}", reasons=(pre.reason,))


def review_decision(cfg: Config, category: str, reasons: tuple[str, ...]) -> Decision:
    labels = (cfg.labels.processed, cfg.labels.review)
    return Decision(category=category, review=True, action="review", labels=labels,
                    archive=cfg.actions["review"].archive, draft=False, trash_after_hours=None, notify=False,
                    crm=False, reasons=reasons)


Owner = Callable[[], tuple[str, str] | None]  # who already owns the conversation: (address, "thread" | "contact")


def decide(cfg: Config, email: Email, pre: PrefilterResult, c: Classification,
           rotation_of: Mapping[str, Mapping[str, int]], today: date,
           thread: Callable[[], list[ThreadMessage]], owner: Owner | None = None) -> tuple[Decision, Turn | None]:
    """What to do with one message. `thread` and `owner` are called only when an assignment is at stake."""
    reasons: list[str] = [f"prefilter {pre.rule}: {pre.reason}"] if pre.rule else []
    if pre.outcome == "skip":
        act = cfg.actions["skip"]
        return Decision(category=pre.category or "other", review=False, action="skip",
                        labels=(cfg.labels.processed,), archive=act.archive, draft=False, trash_after_hours=None,
                        notify=False, crm=False, reasons=tuple(reasons)), None

    reasons += [f"{c.classifier}: {c.category} {c.confidence:.2f}"] + list(c.reasons[:3])
    if c.review_reason:
        return review_decision(cfg, c.category, (*reasons, f"review: {c.review_reason}")), None
    if c.confidence < cfg.classify.threshold:
        return review_decision(cfg, c.category, (*reasons, f"review: confidence {c.confidence:.2f} below "
                                                 f"threshold {cfg.classify.threshold:.2f}")), None

    if c.category in DISPOSABLE and (asked := personal_request(email)):
        # A person asking to be unsubscribed or to have their data deleted is owed an answer, never the trash.
        return review_decision(cfg, c.category, (*reasons, f"review: {asked}")), None
    act = cfg.actions[c.category]
    labels = (cfg.labels.processed, cfg.labels.categories[c.category])
    trash = act.trash_after_hours if c.category in DISPOSABLE else None
    if not act.assign:
        action = "trash_later" if trash is not None else "label"
        return Decision(category=c.category, review=False, action=action, labels=labels, archive=act.archive,
                        draft=False, trash_after_hours=trash, notify=False, crm=act.crm,
                        reasons=tuple(reasons)), None

    to, no_reply = reply_address(cfg, email) if act.draft else ("", "")
    if act.draft and not to:
        return review_decision(cfg, c.category, (*reasons, f"review: {no_reply}")), None
    people = list(cfg.routing.people()) + list(cfg.routing.colleagues)
    replied = colleague_replied(thread(), cfg.company.domains, people)
    if replied:
        # A colleague owns this conversation (they answered, e.g. with a quote): no draft; a salesperson of ours
        # is told that their customer wrote again, and it counts as their lead.
        sticky = stay_with(cfg.routing, replied, c, rotation_of, today, f"{replied} answered in this thread")
        if sticky is None:
            return Decision(category=c.category, review=False, action="colleague_replied", labels=labels,
                            archive=False, draft=False, trash_after_hours=None, notify=False, crm=act.crm,
                            reasons=(*reasons, f"colleague_replied: {replied} already answered in this thread")), None
        assignment, sticky_turn = sticky
        return Decision(category=c.category, review=False, action="assign", labels=labels, archive=False,
                        draft=False, trash_after_hours=None, notify=act.notify, crm=act.crm,
                        assignee=assignment.assignee, cc=(), pool=assignment.pool,
                        reasons=(*reasons, f"routing: {assignment.reason}")), sticky_turn

    previous = owner() if owner is not None else None
    sticky = stay_with(cfg.routing, previous[0], c, rotation_of, today,
                       f"stays with {previous[0]}: " + ("this thread is theirs" if previous[1] == "thread"
                                                        else "they had this contact's last lead")) \
        if previous else None
    assignment, turn = sticky or assign(cfg.routing, c, rotation_of, today)
    reasons.append(f"routing: {assignment.reason}")
    if assignment.assignee is None:
        d = review_decision(cfg, c.category, (*reasons, "review: nobody available to assign"))
        return d, None
    draft = act.draft
    return Decision(category=c.category, review=False, action="draft+assign" if draft else "assign",
                    labels=labels, archive=act.archive, draft=draft, trash_after_hours=None, notify=act.notify,
                    crm=act.crm, assignee=assignment.assignee, cc=assignment.cc, pool=assignment.pool,
                    reasons=tuple(reasons), reply_to=to), turn


def describe_actions(d: Decision, notifiers: Sequence[str] | None = None,
                     crms: Sequence[str] | None = None) -> list[str]:
    """Human-readable list of what the decision does, for logs, dry runs and the audit row. With the names of the
    notifiers and CRMs in use, a notification or upsert that no sink would make is left out."""
    out: list[str] = []
    if d.draft:
        out.append("draft reply")
    if d.assignee:
        out.append(f"assign {d.assignee.email}")
    out.append("label " + " + ".join(d.labels))
    if d.archive:
        out.append("archive")
    if d.trash_after_hours is not None:
        out.append(f"trash after {d.trash_after_hours:g}h")
    if d.notify and (notifiers is None or notifiers):
        out.append("notify" + (f" {', '.join(notifiers)}" if notifiers else ""))
    if d.crm and (crms is None or crms):
        out.append("crm upsert" + (f" {', '.join(crms)}" if crms else ""))
    return out
