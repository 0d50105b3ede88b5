"""The behaviour every MailProvider promises, as a reusable pytest suite.

Subclass MailProviderContract in a test module (the subclass name must start with "Test"), override the `make`
fixture to return a function that builds a provider holding the given raw messages in its inbox, and implement the
hooks that need provider-specific access (what a person or another client does to the mailbox). Thread ids and
provider ids are treated as opaque: the suite only compares them with each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from bot.models import MessageRef
from bot.ports import MailError, MailProvider

PROCESSED = "Triage/Processed"
LEAD, REVIEW = "Triage/Lead", "Triage/Review"
LABELS = (PROCESSED, LEAD, REVIEW)

Factory = Callable[[Sequence[bytes]], MailProvider]


def make_mail(msg_id: str, sender: str, subject: str, day: int, hour: int = 9, *, in_reply_to: str = "",
              references: Sequence[str] = (), extra: str = "", body: str = "Hello, please send a quote.") -> bytes:
    """A small RFC 5322 message dated November `day`, 2026."""
    date = format_datetime(datetime(2026, 11, day, hour, 0, tzinfo=UTC))
    lines = [f"From: {sender}", "To: sales@acme-pumps.example", f"Subject: {subject}", f"Date: {date}",
             f"Message-ID: {msg_id}", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append("References: " + " ".join(references))
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


ROOT = make_mail("<root@customer.example>", "Jane Roe <Jane.Roe@Customer.example>", "Pumps for our plant", 23)
REPLY = make_mail("<reply@acme-pumps.example>", "Bob Nguyen <bob@acme-pumps.example>", "Re: Pumps for our plant", 24,
                  in_reply_to="<root@customer.example>", references=["<root@customer.example>"])
FOLLOW_UP = make_mail("<follow@customer.example>", "jane.roe@customer.example", "Re: Pumps for our plant", 25,
                      in_reply_to="<reply@acme-pumps.example>",
                      references=["<root@customer.example>", "<reply@acme-pumps.example>"])
OTHER = make_mail("<other@elsewhere.example>", "Max Muster <max@elsewhere.example>", "Angebot Ventile", 22)


def draft_for(source_msg_id: str) -> bytes:
    return make_mail("<draft-1@acme-pumps.example>", "Acme Pumps Sales <sales@acme-pumps.example>",
                     "Re: Pumps for our plant", 26, in_reply_to=source_msg_id, references=[source_msg_id],
                     extra=f"X-Triage-Source: {source_msg_id}", body="Dear Jane, thank you.")


class MailProviderContract:
    """Run against a fake and against every real adapter, so the fake cannot drift from the real thing."""

    @pytest.fixture
    def make(self) -> Factory:
        raise NotImplementedError

    # Hooks: what happens to the mailbox outside the bot.
    def deliver(self, provider: MailProvider, raw: bytes) -> None:
        raise NotImplementedError

    def mark_read(self, provider: MailProvider, provider_id: str) -> None:
        raise NotImplementedError

    def delete_label(self, provider: MailProvider, name: str) -> None:
        raise NotImplementedError

    def labels_of(self, provider: MailProvider, provider_id: str) -> set[str]:
        """The user label names a message carries now, wherever it is."""
        raise NotImplementedError

    def in_trash(self, provider: MailProvider, provider_id: str) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------ helpers

    @staticmethod
    def ids(provider: MailProvider) -> dict[str, MessageRef]:
        """Message-ID -> ref of every listed message, read through fetch()."""
        refs = provider.list_new(1000)
        out = {}
        for ref, raw in provider.fetch(refs):
            assert isinstance(raw, bytes), raw
            line = next(x for x in raw.decode().splitlines() if x.lower().startswith("message-id:"))
            out[line.split(":", 1)[1].strip()] = ref
        return out

    @staticmethod
    def fetched(provider: MailProvider, ref: MessageRef) -> bytes | Exception:
        return next(iter(provider.fetch([ref])))[1]

    # ------------------------------------------------------------ listing

    def test_list_new_is_oldest_first_and_respects_limit(self, make: Factory) -> None:
        provider = make([FOLLOW_UP, ROOT, OTHER, REPLY])
        provider.ensure_labels(LABELS)
        ids = self.ids(provider)
        order = [ids[m].provider_id for m in ("<other@elsewhere.example>", "<root@customer.example>",
                                              "<reply@acme-pumps.example>", "<follow@customer.example>")]
        assert [r.provider_id for r in provider.list_new(10)] == order
        assert [r.provider_id for r in provider.list_new(2)] == order[:2]
        assert all("INBOX" in r.labels for r in provider.list_new(10))

    def test_list_new_includes_read_messages_and_excludes_processed(self, make: Factory) -> None:
        provider = make([ROOT, OTHER])
        provider.ensure_labels(LABELS)
        ids = self.ids(provider)
        root, other = ids["<root@customer.example>"], ids["<other@elsewhere.example>"]
        self.mark_read(provider, root.provider_id)
        assert {r.provider_id for r in provider.list_new(10)} == {root.provider_id, other.provider_id}
        provider.modify(other.provider_id, [PROCESSED], [], archive=False)
        listed = provider.list_new(10)
        assert [r.provider_id for r in listed] == [root.provider_id]
        assert isinstance(self.fetched(provider, other), bytes)  # processed, still in the inbox, still readable

    def test_new_mail_shows_up_on_the_next_listing(self, make: Factory) -> None:
        provider = make([ROOT])
        provider.ensure_labels(LABELS)
        assert len(provider.list_new(10)) == 1
        self.deliver(provider, OTHER)
        assert len(provider.list_new(10)) == 2

    def test_fetch_streams_each_message_and_reports_a_missing_one_in_place(self, make: Factory) -> None:
        provider = make([ROOT, OTHER])
        refs = provider.list_new(10)
        missing = MessageRef(provider_id="no-such-message-42", thread_id="x")
        results = list(provider.fetch([refs[0], missing, refs[1]]))
        assert [r.provider_id for r, _ in results] == [refs[0].provider_id, missing.provider_id, refs[1].provider_id]
        assert b"Message-ID: <other@elsewhere.example>" in results[0][1]  # type: ignore[operator]
        assert isinstance(results[1][1], Exception)
        assert b"Message-ID: <root@customer.example>" in results[2][1]  # type: ignore[operator]

    # ------------------------------------------------------------ labels, archive, trash

    def test_labels_are_added_and_removed(self, make: Factory) -> None:
        provider = make([ROOT])
        provider.ensure_labels(LABELS)
        ref = provider.list_new(10)[0]
        provider.modify(ref.provider_id, [LEAD, REVIEW], [], archive=False)
        assert {LEAD, REVIEW} <= provider.list_new(10)[0].labels
        assert {LEAD, REVIEW} <= self.labels_of(provider, ref.provider_id)
        provider.modify(ref.provider_id, [], [REVIEW], archive=False)
        assert LEAD in self.labels_of(provider, ref.provider_id)
        assert REVIEW not in self.labels_of(provider, ref.provider_id)
        assert REVIEW not in provider.list_new(10)[0].labels

    def test_archive_leaves_the_inbox_but_keeps_the_message(self, make: Factory) -> None:
        provider = make([ROOT, OTHER])
        provider.ensure_labels(LABELS)
        ids = self.ids(provider)
        root, other = ids["<root@customer.example>"], ids["<other@elsewhere.example>"]
        provider.modify(root.provider_id, [PROCESSED, LEAD], [], archive=True)
        provider.modify(other.provider_id, [], [], archive=True)  # archived without any label
        assert provider.list_new(10) == []
        assert {PROCESSED, LEAD} <= self.labels_of(provider, root.provider_id)
        for ref in (root, other):
            raw = self.fetched(provider, ref)
            assert isinstance(raw, bytes) and b"Message-ID:" in raw
            assert ref.provider_id in [m.provider_id for m in provider.thread(ref.thread_id)]

    def test_modify_of_an_unknown_message_raises_mail_error(self, make: Factory) -> None:
        provider = make([ROOT])
        provider.ensure_labels(LABELS)
        with pytest.raises(MailError):
            provider.modify("no-such-message-42", [LEAD], [], archive=True)

    def test_trash_is_recoverable(self, make: Factory) -> None:
        provider = make([ROOT, OTHER])
        provider.ensure_labels(LABELS)
        ids = self.ids(provider)
        root = ids["<root@customer.example>"]
        provider.modify(root.provider_id, [PROCESSED], [], archive=True)
        provider.trash([root.provider_id, "no-such-message-42"])  # an id already gone is not an error
        assert [r.provider_id for r in provider.list_new(10)] == [ids["<other@elsewhere.example>"].provider_id]
        assert self.in_trash(provider, root.provider_id)
        assert not self.in_trash(provider, ids["<other@elsewhere.example>"].provider_id)
        assert root.provider_id in [m.provider_id for m in provider.thread(root.thread_id)]
        assert isinstance(self.fetched(provider, root), bytes)
        provider.trash([root.provider_id])  # trashing twice changes nothing
        assert self.in_trash(provider, root.provider_id)

    def test_ensure_labels_recreates_a_deleted_label(self, make: Factory) -> None:
        provider = make([ROOT])
        provider.ensure_labels(LABELS)
        ref = provider.list_new(10)[0]
        self.delete_label(provider, LEAD)
        provider.ensure_labels(LABELS)
        provider.modify(ref.provider_id, [LEAD], [], archive=False)
        assert LEAD in self.labels_of(provider, ref.provider_id)

    # ------------------------------------------------------------ threads and drafts

    def test_thread_groups_a_conversation_oldest_first_with_senders(self, make: Factory) -> None:
        provider = make([FOLLOW_UP, OTHER, REPLY, ROOT])
        ids = self.ids(provider)
        root, reply, follow = (ids[m] for m in ("<root@customer.example>", "<reply@acme-pumps.example>",
                                                 "<follow@customer.example>"))
        assert root.thread_id == reply.thread_id == follow.thread_id
        assert ids["<other@elsewhere.example>"].thread_id != root.thread_id
        thread = provider.thread(root.thread_id)
        assert [m.provider_id for m in thread] == [root.provider_id, reply.provider_id, follow.provider_id]
        assert [m.from_addr for m in thread] == ["jane.roe@customer.example", "bob@acme-pumps.example",
                                                 "jane.roe@customer.example"]
        assert not any(m.is_draft for m in thread)
        assert thread[0].date == datetime(2026, 11, 23, 9, tzinfo=UTC)
        assert provider.thread("<no-such-thread@nowhere.example>") == []

    def test_draft_appears_in_its_thread_with_its_source(self, make: Factory) -> None:
        provider = make([ROOT, OTHER])
        provider.ensure_labels(LABELS)
        root = self.ids(provider)["<root@customer.example>"]
        draft_id = provider.create_draft(draft_for("<root@customer.example>"), root.thread_id)
        assert draft_id
        thread = provider.thread(root.thread_id)
        drafts = [m for m in thread if m.is_draft]
        assert len(drafts) == 1 and len(thread) == 2
        assert drafts[0].source_id == "<root@customer.example>"
        assert drafts[0].from_addr == "sales@acme-pumps.example"
        assert [m.source_id for m in thread if not m.is_draft] == [None]  # only drafts name a source
        assert len(provider.list_new(10)) == 2  # a draft is never inbox mail
        provider.checkpoint()
