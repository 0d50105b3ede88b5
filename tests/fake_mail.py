"""FakeMailProvider: an in-memory mailbox with Gmail's semantics, verified by tests/contract/mail_contract.py.

Pipeline and crash tests assert on its state (`messages`, `labels`, `drafts`) rather than on call lists.
Failures are injected per method with fail_next(); `after=True` makes the call take effect first and then raise,
which is how a test simulates "the server did it, but the process died before it heard back".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.adapters.maildir import sender_of
from bot.mime import header_date, read_headers, thread_key
from bot.models import MessageRef
from bot.ports import MailError, ThreadMessage

_IDS = re.compile(r"<[^<>\s]{1,500}>")
SYSTEM_LABELS = frozenset({"INBOX", "TRASH", "DRAFT", "SENT", "UNREAD", "SPAM"})


@dataclass
class FakeMessage:
    provider_id: str
    raw: bytes
    thread_id: str
    labels: set[str]
    date: datetime | None
    from_addr: str
    message_id: str
    source_id: str | None = None  # X-Triage-Source of a draft


@dataclass
class _Failure:
    exc: BaseException
    after: bool
    remaining: int


@dataclass
class FakeMailProvider:
    processed_label: str = "Triage/Processed"
    messages: dict[str, FakeMessage] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)  # user labels that exist
    drafts: dict[str, str] = field(default_factory=dict)  # draft id -> provider_id of the draft message
    checkpoints: int = 0
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _fetch_errors: dict[str, Exception] = field(default_factory=dict)
    _seq: int = 0

    # ------------------------------------------------------------ test controls

    def add(self, raw: bytes, labels: Iterable[str] = ("INBOX", "UNREAD"), thread_id: str | None = None) -> str:
        """Deliver a message; returns its provider_id. The thread id follows the headers unless given."""
        h = read_headers(raw)
        message_id = (_IDS.findall(h.get("message-id", "")) or [""])[0]
        self._seq += 1
        pid = f"m{self._seq:05d}"
        if thread_id is None:
            refs = _IDS.findall(h.get("references", ""))
            reply_to = (_IDS.findall(h.get("in-reply-to", "")) or [""])[0]
            thread_id = thread_key(message_id, reply_to, refs) or f"<{pid}@fake>"
        date = header_date(h.get("date"))
        self.messages[pid] = FakeMessage(pid, raw, thread_id, set(labels), date,
                                         sender_of(re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]), message_id,
                                         h.get("x-triage-source") or None)
        return pid

    def fail_next(self, method: str, exc: BaseException, times: int = 1, after: bool = False) -> None:
        """The next `times` calls of `method` raise exc; with after=True each call takes effect first."""
        self._failures.setdefault(method, []).append(_Failure(exc, after, times))

    def fail_fetch(self, provider_id: str, exc: Exception) -> None:
        """fetch() reports exc for this one message until clear_fetch_error()."""
        self._fetch_errors[provider_id] = exc

    def clear_fetch_error(self, provider_id: str) -> None:
        self._fetch_errors.pop(provider_id, None)

    def delete_label(self, name: str) -> None:
        """What a person deleting the label in the web UI does: gone from the list and from every message."""
        self.labels.discard(name)
        for m in self.messages.values():
            m.labels.discard(name)

    def mark_read(self, provider_id: str) -> None:
        self.messages[provider_id].labels.discard("UNREAD")

    def labels_of(self, provider_id: str) -> set[str]:
        return set(self.messages[provider_id].labels)

    def _before(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        if not failure.after:
            raise failure.exc
        return failure

    @staticmethod
    def _after(failure: _Failure | None) -> None:
        if failure is not None:
            raise failure.exc

    def _get(self, provider_id: str) -> FakeMessage:
        m = self.messages.get(provider_id)
        if m is None:
            raise MailError(f"message {provider_id!r} not found")
        return m

    # ------------------------------------------------------------ MailProvider

    def list_new(self, limit: int) -> list[MessageRef]:
        failure = self._before("list_new")
        epoch = datetime.min.replace(tzinfo=UTC)
        found = sorted((m for m in self.messages.values()
                        if "INBOX" in m.labels and self.processed_label not in m.labels and "TRASH" not in m.labels),
                       key=lambda m: (m.date or epoch, m.provider_id))
        refs = [MessageRef(m.provider_id, m.thread_id, frozenset(m.labels - {"UNREAD"}), m.date)
                for m in found[:limit]]
        self._after(failure)
        return refs

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes | Exception]]:
        for ref in refs:
            failure = self._before("fetch")
            m = self.messages.get(ref.provider_id)
            error = self._fetch_errors.get(ref.provider_id)
            self._after(failure)
            if error is not None:
                yield ref, error
            elif m is None:
                yield ref, MailError(f"message {ref.provider_id!r} not found")
            else:
                yield ref, m.raw

    def thread(self, thread_id: str) -> list[ThreadMessage]:
        failure = self._before("thread")
        epoch = datetime.min.replace(tzinfo=UTC)
        found = sorted((m for m in self.messages.values() if m.thread_id == thread_id),
                       key=lambda m: (m.date or epoch, m.provider_id))
        self._after(failure)
        return [ThreadMessage(m.provider_id, m.from_addr, m.date, "DRAFT" in m.labels,
                              m.source_id if "DRAFT" in m.labels else None) for m in found]

    def ensure_labels(self, names: Iterable[str]) -> None:
        failure = self._before("ensure_labels")
        for name in names:
            if not name.strip() or name.upper() in SYSTEM_LABELS:
                raise ValueError(f"label {name!r} is empty or a system label")
            self.labels.add(name)
        self._after(failure)

    def modify(self, provider_id: str, add: Sequence[str], remove: Sequence[str], archive: bool) -> None:
        failure = self._before("modify")
        m = self._get(provider_id)
        unknown = [n for n in [*add, *remove] if n not in self.labels and n not in SYSTEM_LABELS]
        if unknown:  # like Gmail: a label id that no longer exists fails the whole call
            raise MailError(f"unknown label(s) {unknown}")
        m.labels = (m.labels | set(add)) - set(remove) - ({"INBOX"} if archive else set())
        self._after(failure)

    def trash(self, provider_ids: Sequence[str]) -> None:
        failure = self._before("trash")
        for pid in provider_ids:
            if pid in self.messages:
                self.messages[pid].labels = (self.messages[pid].labels - {"INBOX"}) | {"TRASH"}
        self._after(failure)

    def create_draft(self, raw: bytes, thread_id: str) -> str:
        failure = self._before("create_draft")
        pid = self.add(raw, labels=("DRAFT",), thread_id=thread_id)
        draft_id = f"r{len(self.drafts) + 1:05d}"
        self.drafts[draft_id] = pid
        self._after(failure)
        return draft_id

    def checkpoint(self) -> None:
        failure = self._before("checkpoint")
        self.checkpoints += 1
        self._after(failure)

    def ids_with_label(self, label: str) -> set[str]:
        """Like Gmail's listing by label: mail in the trash is left out."""
        failure = self._before("ids_with_label")
        found = {m.provider_id for m in self.messages.values() if label in m.labels and "TRASH" not in m.labels}
        self._after(failure)
        return found
