"""Corrections: what people tell the bot about its decisions, recorded in the ledger for `stats` and `learn`.

Two ways to correct a message:
- labels: move it to another category label (Gmail: change the label; Maildir: move or link the file into the
  label's folder). A category label the bot did not give (another category than the ledger's, or any category
  on a message the bot sent to review) is a correction from the ledger's category to the label's;
- the audit sheet: a category name written into the `correction` column of the message's row.

A correction to a category that is not trashed cancels the message's pending trash: a person who rescued a lead
from the spam label within the grace period does not lose it. The correction itself is only recorded; the bot
does not redo the message's actions (the person who moved it is handling it).

Cost of one check: per category label one listing (Gmail: messages.list, 5 units per page of 500 ids; a Maildir
folder scan), one ledger lookup per listed id, and for an id the ledger does not know (an IMAP server that gave
the moved file a new name) one fetch to match it by Message-ID, once per process. The sheet check reads the
sheet once (one Sheets read request). The pipeline runs both every CHECK_EVERY cycles: with the shipped 60 s
poll and 8 labels that is 40 Gmail units every 15 minutes while no label holds more than 500 messages (5 more per
further 500), next to Gmail's per-user limit of 15,000 units a minute.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bot.config import LabelsConfig
from bot.mime import parse_email
from bot.models import CATEGORIES, DISPOSABLE, MessageRef
from bot.ports import AuthError, MailboxPaused, MailProvider
from bot.state import Ledger, MessageRow, StateError

log = logging.getLogger(__name__)

CHECK_EVERY = 15  # poll cycles between two checks (15 minutes with the shipped 60 s interval)


@dataclass(frozen=True)
class Correction:
    provider_id: str  # where the message is now (what `learn` fetches)
    message_id: str
    old: str  # the ledger's category ("" when the bot never decided it)
    new: str
    source: str  # label | sheet | cli
    review: bool = False  # the bot had sent it to review (old == new then means "confirmed")


@runtime_checkable
class CorrectionSource(Protocol):
    """An audit sink people can write corrections into (the Google Sheet)."""

    name: str

    def read_corrections(self) -> list[tuple[str, str]]:
        """(message_id, category) for every row with a correction."""
        ...


def row_by_message_id(ledger: Ledger, message_id: str) -> MessageRow | None:
    if not message_id:
        return None
    found = ledger.db.execute("SELECT provider_id FROM messages WHERE message_id=? AND decided_at != '' "
                              "ORDER BY decided_at DESC LIMIT 1", (message_id,)).fetchone()
    return ledger.get(found[0]) if found else None


def record(ledger: Ledger, found: Iterable[Correction], ledger_ids: dict[str, str]) -> list[Correction]:
    """Store new corrections (idempotent) and cancel the pending trash of rescued mail; returns the new ones."""
    added = []
    with ledger.transaction():
        for c in found:
            if not ledger.add_correction(c.provider_id, c.message_id, c.old, c.new, c.source):
                continue
            added.append(c)
            if c.new not in DISPOSABLE:
                for eff in ledger.effects(ledger_ids.get(c.provider_id, c.provider_id), "pending"):
                    if eff.kind == "trash":
                        ledger.finish_effect(eff.id, f"cancelled: corrected to {c.new}", status="dropped")
    for c in added:
        log.info("correction from %s: %s -> %s (%s)", c.source, c.old or "?", c.new, c.message_id)
    return added


def check_label_corrections(ledger: Ledger, mail: MailProvider, labels: LabelsConfig,
                            unmatched: set[str] | None = None, text_chars: int = 1500) -> list[Correction]:
    """Record every category label the bot did not give; returns the corrections new to the ledger.

    `unmatched` remembers ids the ledger does not know that needed no correction after one fetch (mail the bot
    never saw, a copy in the label it already had), so they are fetched only once.
    """
    unmatched = unmatched if unmatched is not None else set()
    known = {(c["provider_id"], c["new_category"]) for c in ledger.corrections()}
    found: list[Correction] = []
    ledger_ids: dict[str, str] = {}
    for category, label in labels.categories.items():
        unknown = []
        for pid in sorted(mail.ids_with_label(label)):
            if (pid, category) in known:
                continue
            row = ledger.get(pid)
            if row is None or not row.decided_at:
                if pid not in unmatched:
                    unknown.append(pid)
            elif row.category != category or row.review:
                found.append(Correction(pid, row.message_id, row.category, category, "label", row.review))
        for pid, row in _match_by_message_id(ledger, mail, unknown, text_chars):
            if row is not None and (row.category != category or row.review):
                found.append(Correction(pid, row.message_id, row.category, category, "label", row.review))
                ledger_ids[pid] = row.provider_id
            else:
                unmatched.add(pid)
    return record(ledger, found, ledger_ids)


def _match_by_message_id(ledger: Ledger, mail: MailProvider, pids: list[str],
                         text_chars: int) -> Iterator[tuple[str, MessageRow | None]]:
    """The decision each message belongs to, found by its Message-ID (a moved file may have a new name).

    Messages that cannot be read now are left out: the next check tries them again.
    """
    if not pids:
        return
    for ref, raw in mail.fetch([MessageRef(pid, "") for pid in pids]):
        if not isinstance(raw, Exception):
            email = parse_email(raw, ref.provider_id, "", text_chars)
            yield ref.provider_id, row_by_message_id(ledger, email.message_id)


def check_sheet_corrections(ledger: Ledger, sources: Sequence[Any]) -> list[Correction]:
    """Record the categories people wrote into the audit sheet's correction column."""
    found: list[Correction] = []
    for sink in sources:
        if not isinstance(sink, CorrectionSource):
            continue
        for message_id, category in sink.read_corrections():
            row = row_by_message_id(ledger, message_id)
            if category not in CATEGORIES or row is None:
                log.warning("ignoring the %s correction %r for %s: %s", sink.name, category[:40], message_id[:200],
                            "unknown category" if row is not None else "no such decision")
            elif row.category != category or row.review:
                found.append(Correction(row.provider_id, message_id, row.category, category, "sheet", row.review))
    return record(ledger, found, {})


class CorrectionCheck:
    """Runs both checks every CHECK_EVERY cycles from the poll loop; a failing check never stops a cycle."""

    def __init__(self, every: int = CHECK_EVERY) -> None:
        self.every = max(1, every)
        self.cycles = 0
        self.unmatched: set[str] = set()

    def tick(self, ledger: Ledger, mail: MailProvider, labels: LabelsConfig, sinks: Sequence[Any],
             text_chars: int) -> int:
        """Count a cycle; on every n-th run the checks. Returns the number of new corrections."""
        self.cycles += 1
        if (self.cycles - 1) % self.every:  # the first cycle checks: a restart may follow a long pause
            return 0
        added = 0
        for check in (lambda: check_label_corrections(ledger, mail, labels, self.unmatched, text_chars),
                      lambda: check_sheet_corrections(ledger, sinks)):
            try:
                added += len(check())
            except (AuthError, StateError, MailboxPaused):
                raise
            except Exception as exc:  # the next check retries; triage goes on meanwhile
                log.warning("checking for corrections failed: %s: %s", type(exc).__name__, exc)
        return added
