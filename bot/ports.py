"""The seams between the pipeline and the outside world. Adapters implement these; tests use fakes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.models import Classification, Email, MessageRef, PrefilterResult


@dataclass(frozen=True)
class ThreadMessage:
    """One message of a thread, as much as the colleague-replied and draft checks need."""

    provider_id: str
    from_addr: str  # lower-cased address
    date: datetime | None
    is_draft: bool
    source_id: str | None = None  # for bot drafts: the provider id of the mail the draft answers (X-Triage-Source)


class Unavailable(Exception):
    """Our own side or a service failed (a full or read-only disk, a service down or rate-limited), not the message
    at hand: the message keeps its attempts and is simply tried again next cycle. Only a failure of the message
    itself counts towards poll.max_attempts (see bot.pipeline.fault_of)."""


class RetryLater(Unavailable):
    """As Unavailable, and nothing more should be tried this cycle (a service asked us to stay away for a while):
    the rest of the inbox waits for the next cycle, no attempt used."""


class MailError(Exception):
    """A mail provider call failed for one message; the message stays where it is and is retried."""


class MailUnavailable(MailError, Unavailable):
    """A mail provider call failed because of the mailbox, not the message (a service outage, our disk)."""


class MessageGone(MailError):
    """The message is no longer there to act on: deleted, or moved out of the inbox (Trash, Spam, archived) before
    the bot got to it. The pipeline records it once with this reason and does not retry it; no attempt is used."""


class MailboxPaused(RetryLater):
    """The mail service asked for no calls before `until` (Gmail's flood control). Not any message's fault: the
    pipeline stops the cycle's mail work where it is, uses no attempt, and carries on once `until` has passed."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"mail calls paused until {until.isoformat(timespec='seconds')}")
        self.until = until


class AuthError(Exception):
    """Credentials are missing, expired or revoked; the bot cannot continue until a person acts."""


class MailProvider(Protocol):
    """A mailbox with Gmail semantics: labels by name, archive = leave the inbox, trash is recoverable."""

    def list_new(self, limit: int) -> list[MessageRef]:
        """Inbox messages the bot has not marked processed, oldest first, read or unread alike.

        May return messages the ledger already knows (the pipeline skips those); must never omit one.
        """
        ...

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes | Exception]]:
        """Raw RFC 822 bytes of each message (or the error for that one message), streamed."""
        ...

    def thread(self, thread_id: str) -> list[ThreadMessage]:
        """The messages of a thread, oldest first, drafts included."""
        ...

    def ensure_labels(self, names: Iterable[str]) -> None:
        """Create the labels that do not exist yet (also ones a person deleted)."""
        ...

    def modify(self, provider_id: str, add: Sequence[str], remove: Sequence[str], archive: bool) -> None:
        """All label changes of one message in one call; archive removes it from the inbox."""
        ...

    def trash(self, provider_ids: Sequence[str]) -> None:
        """Move messages to the trash (recoverable), in bulk."""
        ...

    def create_draft(self, raw: bytes, thread_id: str) -> str:
        """Store a reply draft (never sent) in the thread; returns the draft id.

        The raw MIME carries an X-Triage-Source header (the provider id of the mail it answers: two mails may
        share a Message-ID, never a provider id); thread() reports it as ThreadMessage.source_id, which is how a
        retry finds a draft that already exists.
        """
        ...

    def checkpoint(self) -> None:
        """Every message returned by the last list_new() is now recorded in the ledger: advance the sync cursor."""
        ...

    def ids_with_label(self, label: str) -> set[str]:
        """The provider ids of every message that carries this label now (empty if the label does not exist).

        How people correct the bot: moving a message to another category label. Not for the hot path: it lists
        the whole label (Gmail: one messages.list per 500 ids).
        """
        ...


class CursorStore(Protocol):
    """Small persisted key/value store (in the ledger database) for sync cursors such as Gmail's historyId."""

    def get_cursor(self, key: str) -> str | None: ...

    def set_cursor(self, key: str, value: str) -> None: ...


class Classifier(Protocol):
    name: str

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        """Category, confidence, language and extracted fields of one message; never raises for bad mail."""
        ...


class SinkUnavailable(Unavailable):
    """A sink (sheet, chat, CRM) is down or rate-limited; the outbox keeps the work and replays it later."""


# The outbox calls each sink with retry=True when an earlier attempt for the same item may have landed
# (the process died or the call failed after sending). A sink must then check the remote side first,
# so that a replay never leaves a duplicate row, ping or contact.


class AuditSink(Protocol):
    """Where decision rows go (one row per message, keyed by its "message_id" field)."""

    name: str

    def write(self, rows: Sequence[dict[str, Any]], retry: bool) -> None:
        """Append the rows in order, all in one call where the service allows; raise SinkUnavailable to retry."""
        ...


class Notifier(Protocol):
    """Optionally also `alert(text) -> None`: tell the team the bot needs a person (lost authorization...)."""

    name: str

    def notify(self, payload: dict[str, Any], retry: bool) -> str:
        """Tell the assignee about a lead; returns a short status ("slack dm U123", "console")."""
        ...


class Crm(Protocol):
    name: str

    def upsert_lead(self, payload: dict[str, Any], retry: bool) -> str:
        """Create or update the contact (deduplicated by email); returns the CRM record id."""
        ...


class ClassificationMemory(Protocol):
    """What the cascade needs from the ledger: LLM spend and recent results per thread."""

    def llm_spent_usd(self, day: str) -> float:
        """USD spent on LLM calls on this UTC day (YYYY-MM-DD)."""
        ...

    def recent_thread_classification(self, thread_id: str, hours: float) -> Classification | None:
        """The newest classification of a message in this thread within the last `hours`, if any."""
        ...
