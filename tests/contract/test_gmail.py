"""GmailProvider with the real google-api-python-client and google-auth against the local Gmail fake."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httplib2
import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.errors import HttpError

from bot.adapters.gmail import CURSOR_KEY, GmailError, GmailProvider, is_retryable, may_have_landed
from bot.adapters.gmail_auth import AUTH_EXPIRED, GMAIL_SCOPE, load_credentials, scopes
from bot.config import LabelsConfig
from bot.models import MessageRef
from bot.ports import AuthError, MailboxPaused, MailError, MailProvider, MessageGone
from tests.contract.fake_gmail import SYSTEM_LABELS, FakeGmail, MemoryCursors, gerror, unb64url
from tests.contract.mail_contract import LEAD, PROCESSED, REVIEW, Factory, MailProviderContract

LABELS = LabelsConfig(processed=PROCESSED, review=REVIEW, categories={"lead": LEAD, "spam": "Triage/Spam"})


@pytest.fixture
def gm() -> Iterator[FakeGmail]:
    with FakeGmail() as fake:
        yield fake


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_provider(gm: FakeGmail, tmp_path: Path, cursors: MemoryCursors | None = None, sleeps: Sleeps | None = None,
                  creds: Any = None, **kw: Any) -> GmailProvider:
    return GmailProvider(gm.config(tmp_path, **kw.pop("cfg", {})), creds or gm.credentials(),
                         LABELS, cursors if cursors is not None else MemoryCursors(),
                         sleep=sleeps if sleeps is not None else Sleeps(), clock=gm.clock, **kw)


def ids(refs: Sequence[MessageRef]) -> list[str]:
    return [r.provider_id for r in refs]


def mark_processed(gm: FakeGmail, provider: GmailProvider, message_ids: Sequence[str]) -> None:
    for mid in message_ids:
        provider.modify(mid, [PROCESSED], [], archive=True)


# ---------------------------------------------------------------- sync


def test_first_sync_lists_unprocessed_inbox_mail_of_the_lookback_window_oldest_first(gm: FakeGmail,
                                                                                      tmp_path: Path) -> None:
    new = [gm.add_message(subject=f"quote {i}") for i in range(3)]
    gm.add_message(subject="too old", age_days=10)
    gm.add_message(subject="archived", labels=("UNREAD",))
    done = gm.add_message(subject="done")
    cursors = MemoryCursors()
    provider = make_provider(gm, tmp_path, cursors)
    provider.ensure_labels([PROCESSED])
    gm.messages[done].labels.add(str(gm.label_id(PROCESSED)))
    profile_history = gm._current_history

    refs = provider.list_new(100)

    assert ids(refs) == new
    assert all("INBOX" in r.labels and r.internal_date is not None for r in refs)
    assert refs[0].internal_date < refs[2].internal_date  # type: ignore[operator]
    listing, small = gm.server.requests(r"/messages$")
    assert listing.arg("q") == "in:inbox -label:triage-processed newer_than:7d"  # as Gmail's search box writes it
    assert small.arg("q") == listing.arg("q") + " smaller:262144"  # the ones a lookup may download
    assert "is:unread" not in str(listing.query)
    assert cursors == {}  # nothing stored before checkpoint()
    provider.checkpoint()
    assert cursors[CURSOR_KEY] == str(profile_history)


def test_processed_mail_is_dropped_even_when_the_query_cannot_exclude_it(gm: FakeGmail, tmp_path: Path) -> None:
    new, done = gm.add_message(subject="new"), gm.add_message(subject="done")
    provider = make_provider(gm, tmp_path)
    provider.modify(done, [PROCESSED], [], archive=False)
    gm.label_search = False
    assert ids(provider.list_new(100)) == [new]
    assert gm.calls.count("messages.get") == 2  # one minimal lookup each


def test_full_sync_reads_every_page(gm: FakeGmail, tmp_path: Path) -> None:
    all_ids = [gm.add_message(subject=f"m{i}") for i in range(620)]
    provider = make_provider(gm, tmp_path)
    refs = provider.list_new(1000)
    assert ids(refs) == all_ids
    assert gm.calls.count("messages.list") == 2 + 2  # 500 + 120, and as many for the search of the small ones


def test_incremental_sync_reads_history_and_downloads_each_new_message_once(gm: FakeGmail, tmp_path: Path) -> None:
    first = gm.add_message(subject="first")
    cursors = MemoryCursors()
    provider = make_provider(gm, tmp_path, cursors)
    assert ids(provider.list_new(100)) == [first]
    provider.checkpoint()
    stored = cursors[CURSOR_KEY]
    gm.reset_counters()
    later = [gm.add_message(subject="second"), gm.add_message(subject="third")]

    refs = provider.list_new(100)

    assert ids(refs) == later
    assert "INBOX" in refs[0].labels
    # History gives ids only: one search finds which are small, then one lookup each, which is also the download
    # fetch() hands out.
    assert gm.calls == ["history.list", "messages.list", "messages.get", "messages.get"]
    assert [raw for _, raw in provider.fetch(refs)] == [gm.messages[m].raw for m in later]
    assert gm.reads == [(m, "raw") for m in later]
    assert gm.units == 2 + 5 + 10
    (req,) = gm.server.requests(r"/history$")
    assert req.arg("startHistoryId") == stored
    assert req.query["historyTypes"] == ["messageAdded"] and req.arg("labelId") == "INBOX"
    provider.checkpoint()
    assert int(cursors[CURSOR_KEY]) > int(stored)
    assert provider.list_new(100) == []


def test_history_keeps_mail_a_person_read_drops_processed_mail_and_reports_archived_mail_gone(
        gm: FakeGmail, tmp_path: Path) -> None:
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    provider.list_new(100)
    provider.checkpoint()
    read_first, processed, archived = (gm.add_message(subject=s) for s in ("read", "processed", "archived"))
    gm.mark_read(read_first)
    provider.modify(processed, [PROCESSED], [], archive=False)
    gm._change(gm.messages[archived], [], ["INBOX"])

    refs = provider.list_new(100)

    assert ids(refs) == [read_first, archived]  # history said all three were added; the lookups say the rest
    got = dict(provider.fetch(refs))
    assert got[refs[0]] == gm.messages[read_first].raw
    assert isinstance(got[refs[1]], MessageGone) and str(got[refs[1]]) == "the message was moved out of the inbox"


def test_a_message_read_by_a_person_first_is_listed_on_a_full_sync(gm: FakeGmail, tmp_path: Path) -> None:
    mid = gm.add_message()
    gm.mark_read(mid)
    assert "UNREAD" not in gm.messages[mid].labels
    assert ids(make_provider(gm, tmp_path).list_new(100)) == [mid]


def test_cursor_does_not_move_without_checkpoint(gm: FakeGmail, tmp_path: Path) -> None:
    cursors = MemoryCursors()
    provider = make_provider(gm, tmp_path, cursors)
    provider.list_new(100)
    provider.checkpoint()
    stored = cursors[CURSOR_KEY]
    mid = gm.add_message()
    assert ids(provider.list_new(100)) == [mid]
    assert cursors[CURSOR_KEY] == stored
    # the process dies here, before the ledger has the message: a restart lists it again
    restarted = make_provider(gm, tmp_path, cursors)
    assert mid in ids(restarted.list_new(100))


def test_stale_history_id_falls_back_to_a_full_sync_losing_and_repeating_nothing(gm: FakeGmail,
                                                                                 tmp_path: Path) -> None:
    cursors = MemoryCursors()
    provider = make_provider(gm, tmp_path, cursors)
    old = [gm.add_message(subject="a"), gm.add_message(subject="b")]
    assert ids(provider.list_new(100)) == old
    provider.checkpoint()
    mark_processed(gm, provider, old)
    waiting = gm.add_message(subject="arrived during the outage")
    gm.expire_history()
    gm.reset_counters()

    refs = provider.list_new(100)

    assert ids(refs) == [waiting]
    assert gm.calls[:3] == ["history.list", "users.getProfile", "messages.list"]
    provider.checkpoint()
    newest = gm.add_message(subject="after")
    assert ids(provider.list_new(100)) == [newest]  # the new cursor is valid again


def test_more_mail_than_the_limit_is_handed_out_in_turns_without_losing_any(gm: FakeGmail, tmp_path: Path) -> None:
    cursors = MemoryCursors()
    provider = make_provider(gm, tmp_path, cursors)
    provider.list_new(100)
    provider.checkpoint()
    waiting = [gm.add_message(subject=f"m{i}") for i in range(5)]
    seen: list[str] = []
    for _ in range(3):
        batch = ids(provider.list_new(2))
        assert batch and not set(batch) & set(seen)
        seen += batch
        provider.checkpoint()
    assert seen == waiting
    assert provider.list_new(2) == []


def test_catch_up_finds_mail_a_person_moved_back_into_the_inbox(gm: FakeGmail, tmp_path: Path) -> None:
    moved = gm.add_message(subject="was archived", labels=())
    cursors = MemoryCursors()
    provider = make_provider(gm, tmp_path, cursors, catchup_every=3)
    assert provider.list_new(100) == []  # cycle 0: full sync
    provider.checkpoint()
    gm.move_to_inbox(moved)
    gm.reset_counters()
    assert provider.list_new(100) == []  # cycles 1, 2: history alone does not report label changes
    assert provider.list_new(100) == []
    assert gm.calls.count("messages.list") == 0
    newest = gm.add_message(subject="new")
    assert ids(provider.list_new(100)) == [moved, newest]  # cycle 3: the catch-up listing, merged with history
    assert gm.calls.count("messages.list") == 1 + 1  # and the search of the small ones
    assert gm.calls.count("messages.get") == 2  # one lookup each, which is also its download
    # and a restart with a stored cursor catches up at once
    provider.checkpoint()
    assert ids(make_provider(gm, tmp_path, cursors).list_new(100)) == [moved, newest]  # still unprocessed


# ---------------------------------------------------------------- labels and changes


def test_labels_are_created_once_with_their_visibility(gm: FakeGmail, tmp_path: Path) -> None:
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    provider.ensure_labels(LABELS.all())
    assert gm.calls.count("labels.create") == len(LABELS.all())
    lead = gm.labels[str(gm.label_id(LEAD))]
    processed = gm.labels[str(gm.label_id(PROCESSED))]
    assert lead["labelListVisibility"] == "labelShow"
    assert processed["labelListVisibility"] == "labelHide"


@pytest.mark.parametrize("refusal", [400, 404])  # Gmail's own "Invalid label", or a 404 about the label
def test_a_label_a_person_deleted_is_recreated_and_the_change_made_once_more(gm: FakeGmail, tmp_path: Path,
                                                                             refusal: int) -> None:
    mid = gm.add_message()
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    old_id = gm.label_id(LEAD)
    gm.delete_label(LEAD)
    if refusal == 404:
        gm.server.fail(r"/modify$", gerror(404, "notFound", "Requested entity was not found."))
    gm.reset_counters()

    provider.modify(mid, [LEAD, PROCESSED], [], archive=True)

    assert gm.label_id(LEAD) not in (None, old_id)
    assert gm.label_names(mid) == {LEAD, PROCESSED, "UNREAD"}
    assert len(gm.server.requests(r"/modify$")) == 2 and gm.calls.count("labels.create") == 1


def test_a_label_deleted_again_while_the_change_is_redone_leaves_the_change_failed(gm: FakeGmail,
                                                                                     tmp_path: Path) -> None:
    first, second = gm.add_message(), gm.add_message()
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    gm.delete_label(LEAD)
    gm.after("labels.create", lambda: gm.delete_label(LEAD))  # and a person deletes it again at once

    with pytest.raises(GmailError) as err:
        provider.modify(first, [LEAD], [], archive=True)
    assert err.value.status == 400 and not isinstance(err.value, MessageGone)
    assert "INBOX" in gm.messages[first].labels  # not archived without its label

    gm.after("labels.create", lambda: gm.delete_label(LEAD))
    gm.reset_counters()
    left = provider.modify_many([first, second], [LEAD], archive=True)

    assert sorted(left) == sorted([first, second])
    assert all(isinstance(e, GmailError) and e.status == 400 for e in left.values())
    assert all(gm.messages[m].labels == {"INBOX", "UNREAD"} for m in (first, second))
    # one check of the label list, one recreation, one more try: then the messages wait for the next cycle
    assert gm.calls == ["messages.modify"] * 2 + ["labels.list", "labels.create"] + ["messages.modify"] * 2


def test_a_label_created_elsewhere_meanwhile_is_found_after_409(gm: FakeGmail, tmp_path: Path) -> None:
    mid = gm.add_message()
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels([PROCESSED])
    theirs = gm.create_label(REVIEW.upper())  # Gmail label names clash regardless of case
    provider.modify(mid, [REVIEW], [], archive=False)
    assert theirs in gm.messages[mid].labels
    assert len([lab for lab in gm.labels.values() if lab["name"].lower() == REVIEW.lower()]) == 1


def test_a_change_that_adds_the_inbox_keeps_the_message_there_even_when_archiving(gm: FakeGmail,
                                                                                   tmp_path: Path) -> None:
    mid = gm.add_message(labels=("UNREAD",))
    provider = make_provider(gm, tmp_path)
    provider.modify(mid, ["INBOX", REVIEW], [], archive=True)
    assert gm.label_names(mid) == {"INBOX", REVIEW, "UNREAD"}
    assert "INBOX" not in gm.server.requests(r"/modify$")[-1].json()["removeLabelIds"]


def test_modify_is_one_call_per_message_with_archive(gm: FakeGmail, tmp_path: Path) -> None:
    mid = gm.add_message()
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    provider.modify(mid, [REVIEW], [], archive=False)
    gm.reset_counters()

    provider.modify(mid, [LEAD, PROCESSED], [REVIEW, "Triage/Never-Created"], archive=True)

    assert gm.calls == ["messages.modify"]
    body = gm.server.requests(r"/modify$")[-1].json()
    assert sorted(body["addLabelIds"]) == sorted([gm.label_id(LEAD), gm.label_id(PROCESSED)])
    assert sorted(body["removeLabelIds"]) == sorted([gm.label_id(REVIEW), "INBOX"])
    assert gm.label_names(mid) == {LEAD, PROCESSED, "UNREAD"}


def test_trash_uses_the_cheaper_call(gm: FakeGmail, tmp_path: Path) -> None:
    few = [gm.add_message() for _ in range(10)]  # 10 x 5 units: no dearer than one batchModify
    many = [gm.add_message() for _ in range(11)]
    provider = make_provider(gm, tmp_path)
    provider.trash(few)
    assert gm.calls == ["messages.trash"] * 10 and gm.units == 50
    assert len(gm.server.requests(r"/batch/")) == 1
    gm.reset_counters()
    provider.trash(many)
    assert gm.calls == ["messages.batchModify"] and gm.units == 50
    for mid in few + many:
        assert "TRASH" in gm.messages[mid].labels and "INBOX" not in gm.messages[mid].labels


def test_a_trash_gmail_refuses_is_an_error_naming_the_call_and_a_message_already_gone_is_not(
        gm: FakeGmail, tmp_path: Path) -> None:
    kept, gone, refused = gm.add_message(), gm.add_message(), gm.add_message()
    provider = make_provider(gm, tmp_path)
    gm.delete_message(gone)
    gm.server.fail(rf"/messages/{refused}/trash$", gerror(400, "failedPrecondition", "Precondition check failed."))

    with pytest.raises(GmailError, match=r"^Gmail trash failed for 1 message\(s\): Gmail messages.trash failed: "
                                         r"HTTP 400 Precondition check failed"):
        provider.trash([kept, gone, refused])

    assert "TRASH" in gm.messages[kept].labels and "TRASH" not in gm.messages[refused].labels


def test_a_label_change_of_many_messages_uses_the_cheaper_call(gm: FakeGmail, tmp_path: Path) -> None:
    few = [gm.add_message() for _ in range(10)]  # 10 x 5 units: no dearer than one batchModify
    many = [gm.add_message() for _ in range(11)]
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels([PROCESSED])
    gm.reset_counters()

    assert provider.modify_many(few, [PROCESSED], archive=True) == {}
    assert gm.calls == ["messages.modify"] * 10 and len(gm.server.requests(r"/batch/")) == 1
    gm.reset_counters()
    assert provider.modify_many(many, [PROCESSED], archive=True) == {}
    assert gm.calls == ["messages.batchModify"]
    assert all(gm.label_names(m) == {PROCESSED, "UNREAD"} for m in few + many)


def test_a_refused_batch_change_is_redone_message_by_message_so_only_the_bad_ones_are_left(gm: FakeGmail,
                                                                                        tmp_path: Path) -> None:
    mids = [gm.add_message() for _ in range(60)]
    gone, refused = mids[7], mids[55]
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels([PROCESSED])
    gm.delete_message(gone)
    gm.server.fail(r"/batchModify$", gerror(400, "invalidArgument", "Invalid id value"))
    gm.server.fail(rf"/messages/{refused}/modify$", gerror(400, "failedPrecondition", "Precondition check failed."))
    gm.reset_counters()

    left = provider.modify_many(mids, [PROCESSED], archive=True)

    assert sorted(left) == sorted([gone, refused])
    assert isinstance(left[gone], MessageGone)
    assert str(left[refused]) == "Gmail messages.modify failed: HTTP 400 Precondition check failed."
    assert all(gm.label_names(m) == {PROCESSED, "UNREAD"} for m in mids if m not in (gone, refused))
    assert gm.label_names(refused) == {"INBOX", "UNREAD"}
    # each message tried once (the faulted one never reached Gmail), at most 50 to a batch request
    assert gm.calls.count("messages.modify") == 59 and len(gm.server.requests(r"/batch/")) == 2


@pytest.mark.parametrize("change", ["label", "trash"])
def test_a_change_of_more_than_a_thousand_messages_goes_a_thousand_at_a_time(gm: FakeGmail, tmp_path: Path,
                                                                              change: str) -> None:
    mids = [gm.add_message() for _ in range(1001)]
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels([PROCESSED])

    if change == "label":
        assert provider.modify_many(mids, [PROCESSED], archive=True) == {}
    else:
        provider.trash(mids)

    want = {PROCESSED, "UNREAD"} if change == "label" else {"TRASH", "UNREAD"}
    assert all(gm.label_names(m) == want for m in mids)
    batches = [r.json()["ids"] for r in gm.server.requests(r"/batchModify$")]
    assert [len(b) for b in batches] == [1000, 1] and sum(batches, []) == mids
    assert "messages.modify" not in gm.calls and "messages.trash" not in gm.calls
    assert provider.pacer.spent == gm.units  # 50 units a batchModify, as Gmail charges


@pytest.mark.parametrize("refusal", [400, 404])
def test_a_label_deleted_before_a_batch_change_is_recreated_and_the_batch_made_once_more(
        gm: FakeGmail, tmp_path: Path, refusal: int) -> None:
    mids = [gm.add_message() for _ in range(11)]
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    gm.delete_label(LEAD)
    gm.server.fail(r"/batchModify$", gerror(refusal, "invalidArgument" if refusal == 400 else "notFound"))
    gm.reset_counters()

    assert provider.modify_many(mids, [LEAD], archive=False) == {}

    assert all(gm.label_names(m) == {LEAD, "INBOX", "UNREAD"} for m in mids)
    assert len(gm.server.requests(r"/batchModify$")) == 2 and gm.calls.count("labels.create") == 1
    assert "messages.modify" not in gm.calls  # the label was at fault, not a message: no message-by-message redo


# ---------------------------------------------------------------- threads and drafts


def reply_to(gm: FakeGmail, mid: str, source: bool = True) -> bytes:
    orig = gm.messages[mid]
    reply = EmailMessage()
    reply["From"] = "Acme Pumps Sales <sales@acme-pumps.example>"
    reply["To"] = orig.header("From")
    reply["Subject"] = "Re: " + str(orig.header("Subject"))
    reply["In-Reply-To"] = orig.header("Message-ID")
    reply["References"] = orig.header("Message-ID")
    if source:
        reply["X-Triage-Source"] = orig.header("Message-ID")
    reply.set_content("Dear Jane, thank you for your request.")
    return reply.as_bytes()


def test_thread_reports_a_colleagues_reply_and_bot_drafts_with_their_source(gm: FakeGmail, tmp_path: Path) -> None:
    root = gm.add_message(sender="Jane Roe <Jane.Roe@customer.example>", subject="Pumps")
    orig = gm.messages[root]
    colleague = gm.add_message(sender="Bob Nguyen <bob@acme-pumps.example>", subject="Re: Pumps", labels=("SENT",),
                               headers={"In-Reply-To": str(orig.header("Message-ID"))})
    provider = make_provider(gm, tmp_path)
    draft_id = provider.create_draft(reply_to(gm, root), orig.thread_id)
    gm.reset_counters()
    charged = provider.pacer.spent

    thread = provider.thread(orig.thread_id)

    assert gm.calls == ["threads.get"] and provider.pacer.spent - charged == gm.units == 10
    asked = gm.server.requests(r"/threads/")[-1]
    assert asked.arg("format") == "metadata"  # headers only, never the bodies
    assert asked.query["metadataHeaders"] == ["From", "Date", "X-Triage-Source"]
    assert [m.from_addr for m in thread] == ["jane.roe@customer.example", "bob@acme-pumps.example",
                                             "sales@acme-pumps.example"]
    assert [m.provider_id for m in thread[:2]] == [root, colleague]
    assert [m.is_draft for m in thread] == [False, False, True]
    assert thread[2].source_id == orig.header("Message-ID") and thread[0].source_id is None
    assert thread[0].date == parsedate_to_datetime(str(orig.header("Date"))).astimezone(UTC)
    assert gm.messages[gm.drafts[draft_id]].thread_id == orig.thread_id


def test_a_thread_message_without_sender_or_readable_date_is_listed_at_its_arrival_time(
        gm: FakeGmail, tmp_path: Path) -> None:
    arrived = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    bare = gm.add_message(b"Subject: Pump quote\r\n\r\nHello\r\n", internal_date=arrived)
    thread_id = gm.messages[bare].thread_id
    garbled = gm.add_message(b"From: Jane <Jane@customer.example>\r\nDate: yesterday\r\n\r\nHi\r\n",
                             thread_id=thread_id, internal_date=arrived + timedelta(minutes=5))

    thread = make_provider(gm, tmp_path).thread(thread_id)

    assert [(m.provider_id, m.from_addr, m.date) for m in thread] == [
        (bare, "", arrived), (garbled, "jane@customer.example", arrived + timedelta(minutes=5))]


def test_draft_is_threaded_and_never_sent(gm: FakeGmail, tmp_path: Path) -> None:
    root = gm.add_message()
    provider = make_provider(gm, tmp_path)
    draft_id = provider.create_draft(reply_to(gm, root), gm.messages[root].thread_id)

    body = gm.server.requests(r"/drafts$", "POST")[-1].json()["message"]
    assert body["threadId"] == gm.messages[root].thread_id
    sent = unb64url(body["raw"])
    assert f"In-Reply-To: {gm.messages[root].header('Message-ID')}".encode() in sent
    assert b"References: " in sent
    draft = gm.messages[gm.drafts[draft_id]]
    assert draft.labels == {"DRAFT"} and draft.thread_id == gm.messages[root].thread_id
    assert not {"drafts.send", "messages.send"} & set(gm.calls)


def test_a_draft_created_despite_a_5xx_is_found_instead_of_duplicated(gm: FakeGmail, tmp_path: Path) -> None:
    root = gm.add_message()
    # A colleague's own draft in the thread, older than the bot's: not the one the bot is looking for.
    theirs = gm.add_message(sender="Bob Nguyen <bob@acme-pumps.example>", subject="Re: Pump quote",
                            labels=("DRAFT",), thread_id=gm.messages[root].thread_id)
    gm.drafts["r-bob"] = theirs
    provider = make_provider(gm, tmp_path)
    gm.fail_after("drafts.create", gerror(503, "backendError"))

    draft_id = provider.create_draft(reply_to(gm, root), gm.messages[root].thread_id)

    assert list(gm.drafts) == ["r-bob", draft_id] and draft_id != "r-bob"
    assert gm.messages[gm.drafts[draft_id]].header("X-Triage-Source") == gm.messages[root].header("Message-ID")
    assert gm.calls.count("drafts.create") == 1 and gm.calls.count("threads.get") == 1
    assert provider.pacer.spent == gm.units  # the pacer charged the lookup what Gmail charged


def test_a_lookup_for_the_uncertain_draft_that_fails_is_retried_after_gmails_wait(gm: FakeGmail,
                                                                                 tmp_path: Path) -> None:
    root = gm.add_message()
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps)
    gm.fail_after("drafts.create", gerror(503, "backendError"))
    gm.fail_after("threads.get", gerror(503, "backendError", retry_after=5))

    draft_id = provider.create_draft(reply_to(gm, root), gm.messages[root].thread_id)

    assert list(gm.drafts) == [draft_id]
    assert gm.calls.count("drafts.create") == 1 and gm.calls.count("threads.get") == 2
    assert len(sleeps) == 2 and 5 <= sleeps[1] <= 5.5  # the bot's own retry, honouring Retry-After


def test_draft_id_names_a_draft_found_by_its_message(gm: FakeGmail, tmp_path: Path) -> None:
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps)
    assert provider.draft_id("not-a-draft") == "not-a-draft"  # no drafts at all: nothing better to name it by
    roots = [gm.add_message(subject=f"quote {i}") for i in range(2)]
    made = [provider.create_draft(reply_to(gm, r), gm.messages[r].thread_id) for r in roots]
    gm.fail_after("drafts.list", gerror(503, "backendError", retry_after=7))

    assert provider.draft_id(gm.drafts[made[1]]) == made[1]
    assert len(sleeps) == 1 and 7 <= sleeps[0] <= 7.7  # the bot's own retry, honouring Retry-After

    gm.server.fail(r"/drafts$", gerror(403, "forbidden", "Insufficient permission"))
    with pytest.raises(GmailError, match="Gmail drafts.list failed: HTTP 403"):
        provider.draft_id(gm.drafts[made[0]])


def test_a_5xx_before_the_draft_landed_creates_it_once_after_checking(gm: FakeGmail, tmp_path: Path) -> None:
    root = gm.add_message()
    provider = make_provider(gm, tmp_path)
    gm.server.fail(r"/drafts$", gerror(500, "backendError"))
    draft_id = provider.create_draft(reply_to(gm, root), gm.messages[root].thread_id)
    assert list(gm.drafts) == [draft_id]
    assert len(gm.server.requests(r"/drafts$", "POST")) == 2 and gm.calls.count("threads.get") == 1


@pytest.mark.parametrize("source", [True, False])  # a refused call never landed: safe to repeat either way
def test_a_rate_limited_draft_is_retried_without_a_lookup(gm: FakeGmail, tmp_path: Path, source: bool) -> None:
    root = gm.add_message()
    provider = make_provider(gm, tmp_path)
    gm.server.fail(r"/drafts$", gerror(429, "rateLimitExceeded", retry_after=1))
    provider.create_draft(reply_to(gm, root, source=source), gm.messages[root].thread_id)
    assert len(gm.drafts) == 1 and "threads.get" not in gm.calls


def test_an_uncertain_draft_failure_without_a_source_header_is_not_repeated(gm: FakeGmail, tmp_path: Path) -> None:
    root = gm.add_message()
    provider = make_provider(gm, tmp_path)
    gm.fail_after("drafts.create", gerror(503, "backendError"))
    with pytest.raises(MailError, match="^Gmail drafts.create failed: HTTP 503"):
        provider.create_draft(reply_to(gm, root, source=False), gm.messages[root].thread_id)
    assert len(gm.drafts) == 1 and gm.calls.count("drafts.create") == 1


# ---------------------------------------------------------------- fetch


def test_fetch_yields_raw_bytes_in_batches_of_the_configured_size(gm: FakeGmail, tmp_path: Path) -> None:
    mids = [gm.add_message(subject=f"m{i}") for i in range(7)]
    provider = make_provider(gm, tmp_path, cfg={"batch_size": 3})
    refs = [MessageRef(m, gm.messages[m].thread_id) for m in mids]  # not listed: fetch() looks them up first
    gm.reset_counters()
    before = len(gm.server.requests(r"/batch/"))

    got = list(provider.fetch(refs))

    assert [r.provider_id for r, _ in got] == mids
    assert all(raw == gm.messages[r.provider_id].raw for r, raw in got)
    # 3 + 3 + 1: lookups and downloads batched, the last download alone as a plain request
    assert len(gm.server.requests(r"/batch/")) - before == 5
    assert gm.reads == [(m, f) for start in (0, 3, 6) for f in ("metadata", "raw") for m in mids[start:start + 3]]
    assert gm.calls == ["messages.get"] * 14 and gm.units == 70


def test_a_failing_batch_item_yields_its_own_error_and_a_transient_one_is_retried(gm: FakeGmail,
                                                                                 tmp_path: Path) -> None:
    a, b, c = (gm.add_message(subject=s) for s in "abc")
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps)
    refs = [MessageRef(m, gm.messages[m].thread_id) for m in (a, b, c)]  # not listed: looked up first
    gm.server.fail(rf"/messages/{b}$", gerror(400, "failedPrecondition", "Mail too large"))
    gm.server.fail(rf"/messages/{c}$", gerror(503, "backendError", retry_after=2))
    before = len(gm.server.requests(r"/batch/"))

    got = dict((r.provider_id, raw) for r, raw in provider.fetch(refs))

    assert got[a] == gm.messages[a].raw and got[c] == gm.messages[c].raw
    assert isinstance(got[b], MailError) and "Mail too large" in str(got[b])
    # the lookups, c's lookup again, alone, in a second batch, then the downloads of a and c (b's failed lookup
    # settled it)
    assert len(gm.server.requests(r"/batch/")) - before == 3
    assert gm.reads == [(a, "metadata"), (c, "metadata"), (a, "raw"), (c, "raw")]
    assert len(sleeps) == 1 and sleeps[0] >= 2


def test_a_failing_batch_endpoint_is_retried_then_reported_per_message(gm: FakeGmail, tmp_path: Path) -> None:
    mids = [gm.add_message() for _ in range(3)]
    provider = make_provider(gm, tmp_path)
    refs = provider.list_new(100)
    gm.server.fail(r"/batch/", gerror(502, "badGateway"))
    assert [raw == gm.messages[m].raw for m, (_, raw) in zip(mids, provider.fetch(refs), strict=True)] == [True] * 3
    gm.server.fail(r"/batch/", gerror(503, "backendError"), times=50)
    got = list(provider.fetch(refs))
    assert [r.provider_id for r, _ in got] == mids and all(isinstance(x, MailError) for _, x in got)


# ---------------------------------------------------------------- errors and retries


def test_a_429_storm_is_ridden_out_honouring_retry_after(gm: FakeGmail, tmp_path: Path) -> None:
    mid = gm.add_message()
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps)
    gm.server.fail(r"/messages$", gerror(429, "rateLimitExceeded", "Too many concurrent requests", retry_after=3),
                   times=3)
    assert ids(provider.list_new(100)) == [mid]
    assert len(sleeps) == 3 and all(3 <= s <= 3.3 for s in sleeps)


def test_a_429_storm_longer_than_the_budget_gives_up_in_bounded_time(gm: FakeGmail, tmp_path: Path) -> None:
    gm.add_message()
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps, max_retry_seconds=60)
    gm.server.fail(r"/messages$", gerror(429, "rateLimitExceeded", retry_after=25), times=100)
    with pytest.raises(MailError, match="429"):
        provider.list_new(100)
    assert len(sleeps) == 2 and sum(sleeps) <= 60
    assert len(gm.server.requests(r"/messages$")) == 3


def test_5xx_and_rate_limit_403_are_retried_other_403_are_not(gm: FakeGmail, tmp_path: Path) -> None:
    mid = gm.add_message()
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps)
    gm.server.fail(r"/messages$", gerror(500, "backendError"))
    gm.server.fail(r"/messages$", gerror(403, "userRateLimitExceeded"))
    assert ids(provider.list_new(100)) == [mid]
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # exponential, jittered
    gm.server.fail(r"/messages$", gerror(403, "dailyLimitExceeded", "Daily Limit Exceeded"))
    with pytest.raises(MailError, match="Daily Limit Exceeded"):
        provider.list_new(100)
    assert len(sleeps) == 2


def test_a_400_becomes_a_mail_error_with_gmails_reason(gm: FakeGmail, tmp_path: Path) -> None:
    mid = gm.add_message()
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    gm.server.fail(r"/modify$", gerror(400, "invalidArgument", "Invalid label: Label_999"))
    with pytest.raises(MailError, match="Gmail messages.modify failed: HTTP 400 Invalid label: Label_999") as err:
        provider.modify(mid, [LEAD], [], archive=True)
    assert not isinstance(err.value, AuthError)
    assert len(gm.server.requests(r"/modify$")) == 1  # labels all exist: no recreate-and-retry


def test_which_failures_may_have_created_a_draft() -> None:
    def http_error(status: int) -> HttpError:
        return HttpError(httplib2.Response({"status": status}), b'{"error": {"code": %d}}' % status)

    assert may_have_landed(TimeoutError()) and may_have_landed(ConnectionResetError())
    assert may_have_landed(http_error(500)) and may_have_landed(http_error(503))
    assert not may_have_landed(ConnectionRefusedError()) and not may_have_landed(http_error(429))
    assert is_retryable(http_error(503)) and is_retryable(TimeoutError()) and not is_retryable(http_error(404))


def test_a_listing_that_fails_half_way_does_not_let_checkpoint_advance(gm: FakeGmail, tmp_path: Path) -> None:
    cursors = MemoryCursors()
    provider = make_provider(gm, tmp_path, cursors)
    provider.list_new(100)
    gm.server.fail(r"/batch/", gerror(400, "invalidArgument"))  # the label lookups after the listing fail
    gm.add_message()
    with pytest.raises(MailError):
        provider.list_new(100)
    provider.checkpoint()
    assert cursors == {}


def test_a_missing_thread_is_empty_and_a_missing_message_is_gone(gm: FakeGmail, tmp_path: Path) -> None:
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    assert provider.thread("18f00000deadbeef") == []
    with pytest.raises(MessageGone, match="deleted from Gmail"):
        provider.modify("18f00000deadbeef", [LEAD], [], archive=False)
    assert gm.calls.count("messages.modify") == 1  # the labels exist: no recreate-and-retry
    every_user_label = [lab["name"] for lab in gm.labels.values() if lab["type"] == "user"]
    with pytest.raises(MessageGone, match="deleted from Gmail"):  # a change naming every label there is
        provider.modify("18f00000deadbeef", every_user_label, list(SYSTEM_LABELS), archive=True)
    assert gm.calls.count("messages.modify") == 2


def retry_after_message(when: datetime) -> str:
    return f"User-rate limit exceeded.  Retry after {when.strftime('%Y-%m-%dT%H:%M:%S')}.247Z"


@pytest.mark.parametrize("status", [429, 403])
def test_a_rate_limit_deadline_in_the_message_pauses_every_call_until_then(gm: FakeGmail, tmp_path: Path,
                                                                           status: int) -> None:
    gm.add_message()
    cursors, sleeps = MemoryCursors(), Sleeps()
    provider = make_provider(gm, tmp_path, cursors, sleeps=sleeps)
    deadline = gm.clock() + timedelta(minutes=7)
    gm.server.fail(r"/messages$", gerror(status, "userRateLimitExceeded", retry_after_message(deadline)))

    with pytest.raises(MailboxPaused) as paused:
        provider.list_new(100)

    assert paused.value.until == deadline.replace(microsecond=247_000)
    assert sleeps == [] and len(gm.server.requests(r"/messages$")) == 1  # not retried into the lockout
    before = len(gm.server.log)
    for again in (provider, make_provider(gm, tmp_path, cursors)):  # this process, and one restarted
        with pytest.raises(MailboxPaused):
            again.list_new(100)
        with pytest.raises(MailboxPaused):
            again.create_draft(b"Subject: x\r\n\r\nx", "")
    assert len(gm.server.log) == before  # not one request while paused
    gm.clock.now = deadline + timedelta(seconds=1)
    assert len(make_provider(gm, tmp_path, cursors).list_new(100)) == 1


def test_a_rate_limit_deadline_already_past_is_an_ordinary_retry(gm: FakeGmail, tmp_path: Path) -> None:
    gm.add_message()
    sleeps = Sleeps()
    provider = make_provider(gm, tmp_path, sleeps=sleeps)
    gone_by = gm.clock() - timedelta(seconds=5)
    gm.server.fail(r"/messages$", gerror(429, "userRateLimitExceeded", retry_after_message(gone_by)))
    assert len(provider.list_new(100)) == 1 and len(sleeps) == 1


def test_a_batch_item_with_a_deadline_pauses_the_provider(gm: FakeGmail, tmp_path: Path) -> None:
    mids = [gm.add_message() for _ in range(3)]
    provider = make_provider(gm, tmp_path)
    deadline = gm.clock() + timedelta(minutes=2)
    gm.server.fail(rf"/messages/{mids[1]}$", gerror(429, "userRateLimitExceeded", retry_after_message(deadline)))
    with pytest.raises(MailboxPaused):
        list(provider.fetch([MessageRef(m, "") for m in mids]))
    with pytest.raises(MailboxPaused):
        provider.modify(mids[0], [LEAD], [], archive=False)


# ---------------------------------------------------------------- the fake is as strict as Gmail


def gmail_client(gm: FakeGmail) -> Any:
    from googleapiclient.discovery import build

    return build("gmail", "v1", credentials=Credentials(token="test-access-token"), static_discovery=True,
                 cache_discovery=False, client_options={"api_endpoint": gm.api_endpoint}).users()


def test_the_fakes_history_holds_ids_only_and_filters_on_the_labels_at_the_time(gm: FakeGmail) -> None:
    users = gmail_client(gm)
    start = users.getProfile(userId="me").execute()["historyId"]
    archived_later = gm.add_message(subject="in the inbox when it came")
    gm.trash_message(archived_later)
    skipped_inbox = gm.add_message(subject="a filter skipped the inbox", labels=("UNREAD",))
    gm.move_to_inbox(skipped_inbox)

    def added(**kw: Any) -> list[dict[str, Any]]:
        history = users.history().list(userId="me", startHistoryId=start, historyTypes=["messageAdded"],
                                       **kw).execute().get("history", [])
        return [a["message"] for h in history for a in h.get("messagesAdded", [])]

    assert added(labelId="INBOX") == [{"id": archived_later, "threadId": gm.messages[archived_later].thread_id}]
    assert [m["id"] for m in added()] == [archived_later, skipped_inbox]
    labelled = users.history().list(userId="me", startHistoryId=start, historyTypes=["labelAdded"],
                                    labelId="INBOX").execute()["history"]
    assert [h["labelsAdded"][0]["message"]["id"] for h in labelled] == [skipped_inbox]


def test_the_fake_deletes_mail_for_good_and_trashes_it_as_a_person_does(gm: FakeGmail, tmp_path: Path) -> None:
    users = gmail_client(gm)
    deleted, trashed = gm.add_message(), gm.add_message()
    gm.delete_message(deleted)
    gm.trash_message(trashed)
    for call in (users.messages().get(userId="me", id=deleted),
                 users.messages().modify(userId="me", id=deleted, body={"addLabelIds": ["STARRED"]})):
        with pytest.raises(HttpError) as err:
            call.execute()
        assert err.value.status_code == 404
    provider = make_provider(gm, tmp_path)
    ((_, item),) = provider.fetch([MessageRef(deleted, "")])  # a batch item
    assert isinstance(item, MessageGone)
    assert users.messages().get(userId="me", id=trashed, format="minimal").execute()["labelIds"] == ["TRASH",
                                                                                                     "UNREAD"]
    assert users.messages().list(userId="me", q="in:inbox").execute().get("messages") is None


def test_the_fake_enforces_the_per_user_rate_with_gmails_flood_control_message(gm: FakeGmail) -> None:
    users = gmail_client(gm)
    gm.user_limit_per_minute = 12
    users.messages().list(userId="me").execute()  # 5 units
    gm.clock.now += timedelta(seconds=30)
    users.labels().list(userId="me").execute()  # 1 unit
    users.messages().list(userId="me").execute()  # 11 units in the last minute
    with pytest.raises(HttpError) as err:
        users.messages().list(userId="me").execute()
    assert err.value.status_code == 429
    message = json.loads(err.value.content)["error"]["message"]
    first_call_leaves = (gm.clock() - timedelta(seconds=30) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert message == f"User-rate limit exceeded.  Retry after {first_call_leaves}.000Z"
    assert gm.refused["messages.list"] == 1 and gm.quota["messages.list"] == 10  # refused calls cost nothing
    gm.clock.now += timedelta(seconds=31)
    users.messages().list(userId="me").execute()  # the first call left the window: 5 units fit again

    gm.lockout_minutes = 5
    with pytest.raises(HttpError):
        users.messages().list(userId="me").execute()
    lockout = gm.clock() + timedelta(minutes=5)
    gm.clock.now += timedelta(minutes=4)  # the window is empty by now, but the lockout holds
    with pytest.raises(HttpError) as err:
        users.labels().list(userId="me").execute()
    assert lockout.strftime("%Y-%m-%dT%H:%M:%S") in json.loads(err.value.content)["error"]["message"]
    gm.clock.now = lockout
    users.labels().list(userId="me").execute()


def test_the_fakes_label_search_matches_as_gmail_writes_label_names(gm: FakeGmail) -> None:
    users = gmail_client(gm)
    names = ["Triage/Processed", "Triage  Done", "Triage-Done"]
    mids = {name: gm.add_message(subject=name) for name in names}
    for name, mid in mids.items():
        gm.messages[mid].labels.add(gm.create_label(name))

    def found(q: str) -> set[str]:
        return {m["id"] for m in users.messages().list(userId="me", q=q).execute().get("messages", [])}

    assert found("label:triage-processed") == found('label:"Triage/Processed"') == {mids["Triage/Processed"]}
    assert found("label:triage-done") == {mids["Triage-Done"]}  # runs of separators are not merged
    assert found("label:triage--done") == {mids["Triage  Done"]}
    assert found(f"label:{gm.label_id('Triage/Processed')}") == set()  # never by label id


def test_the_fake_threads_a_draft_only_when_its_subject_matches_the_thread(gm: FakeGmail, tmp_path: Path) -> None:
    root = gm.add_message(subject="Pumps  for\u200bthe plant")
    orig = gm.messages[root]
    provider = make_provider(gm, tmp_path)

    def draft(subject: str) -> str:
        reply = EmailMessage()
        reply["Subject"] = subject
        reply["In-Reply-To"] = reply["References"] = orig.header("Message-ID")
        reply.set_content("Thank you.")
        return gm.messages[gm.drafts[provider.create_draft(reply.as_bytes(), orig.thread_id)]].thread_id

    assert draft("Re: Pumps for the plant") != orig.thread_id  # cleaned up: not the thread's subject
    assert draft("Re: Pumps  for\u200bthe plant") == orig.thread_id
    assert draft("AW: Pumps  for\u200bthe plant") == orig.thread_id


# ---------------------------------------------------------------- auth


def write_token(path: Path, gm: FakeGmail, refresh_token: str = "test-refresh-token", **extra: Any) -> None:
    info = {"refresh_token": refresh_token, "client_id": "cid.apps.googleusercontent.com", "client_secret": "shh",
            "token_uri": "https://oauth2.googleapis.com/token", "scopes": [GMAIL_SCOPE]} | extra
    path.write_text(json.dumps(info))


def test_an_expired_token_is_refreshed_at_the_configured_endpoint_and_saved_0600(gm: FakeGmail,
                                                                                 tmp_path: Path) -> None:
    cfg = gm.config(tmp_path)
    write_token(cfg.token_file, gm, token="old-token", expiry="2020-01-01T00:00:00Z")

    creds = load_credentials(cfg, scopes())

    saved = json.loads(cfg.token_file.read_text())
    assert [r["grant_type"] for r in gm.token_requests] == ["refresh_token"]
    assert creds.token.startswith("ya29.fake-") and saved["token"] == creds.token
    assert saved["refresh_token"] == "test-refresh-token"
    assert stat.S_IMODE(cfg.token_file.stat().st_mode) == 0o600
    mid = gm.add_message()
    provider = GmailProvider(cfg, creds, LABELS, MemoryCursors(), sleep=Sleeps())
    assert ids(provider.list_new(10)) == [mid]
    assert gm.server.requests(r"/messages$")[-1].headers["authorization"] == f"Bearer {creds.token}"

    gm.expire_access_tokens()  # an hour later: the API answers 401, google-auth refreshes once, we save again
    assert ids(provider.list_new(10)) == [mid]
    assert len(gm.token_requests) == 2
    assert json.loads(cfg.token_file.read_text())["token"] == creds.token != saved["token"]


def test_a_revoked_refresh_token_is_an_auth_error_with_one_clear_line(gm: FakeGmail, tmp_path: Path) -> None:
    cfg = gm.config(tmp_path)
    write_token(cfg.token_file, gm, refresh_token="revoked")
    with pytest.raises(AuthError) as err:
        load_credentials(cfg, scopes())
    assert str(err.value) == AUTH_EXPIRED and "\n" not in str(err.value)
    with pytest.raises(AuthError, match="No Gmail token"):
        load_credentials(gm.config(tmp_path / "nowhere"), scopes())
    with pytest.raises(AuthError, match="lacks the scope"):
        load_credentials(cfg, scopes(sheets=True))


def test_revocation_while_running_stops_the_cycle_with_auth_error(gm: FakeGmail, tmp_path: Path) -> None:
    cfg = gm.config(tmp_path)
    gm.write_token_file(cfg.token_file)
    creds = load_credentials(cfg, scopes())
    refs = [MessageRef(gm.add_message(), "")]
    provider = GmailProvider(cfg, creds, LABELS, MemoryCursors(), sleep=Sleeps())
    gm.expire_access_tokens()
    gm.revoke_refresh_token("test-refresh-token")
    with pytest.raises(AuthError, match=r"run `python run.py auth gmail` again"):
        provider.list_new(10)
    with pytest.raises(AuthError):
        list(provider.fetch(refs))  # raised, not yielded per message
    plain = make_provider(gm, tmp_path, creds=Credentials(token="never-issued"))
    with pytest.raises(AuthError):
        plain.thread("x")


def test_a_service_account_signs_its_grant_for_the_configured_token_endpoint(gm: FakeGmail, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    sa_file = tmp_path / "sa.json"
    sa_file.write_text(json.dumps({"type": "service_account", "client_email": "bot@proj.iam.gserviceaccount.com",
                                   "private_key": pem, "private_key_id": "k1", "client_id": "1",
                                   "token_uri": "https://oauth2.googleapis.com/token"}))
    cfg = gm.config(tmp_path, auth="service_account", service_account_file=sa_file,
                    subject="sales@acme-pumps.example")
    mid = gm.add_message()

    provider = GmailProvider(cfg, load_credentials(cfg, scopes()), LABELS, MemoryCursors(), sleep=Sleeps())

    assert ids(provider.list_new(10)) == [mid]
    (grant,) = gm.token_requests
    claims = json.loads(base64.urlsafe_b64decode(grant["assertion"].split(".")[1] + "=="))
    # sent to the configured endpoint; google-auth always names Google's endpoint as the audience
    assert claims["sub"] == "sales@acme-pumps.example" and claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == GMAIL_SCOPE


def test_the_console_consent_flow_stores_a_private_token(gm: FakeGmail, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import parse_qs, urlsplit

    from bot.adapters.gmail_auth import run_oauth_flow

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token endpoint is plain http
    secrets = tmp_path / "client.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "cid.apps.googleusercontent.com", "client_secret": "shh",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
        "redirect_uris": ["http://localhost"]}}))
    cfg = gm.config(tmp_path / "state", client_secrets_file=secrets)
    shown: list[str] = []

    def paste(prompt: str) -> str:
        url = next(line for text in shown for line in text.splitlines() if line.startswith("https://"))
        query = parse_qs(urlsplit(url).query)
        assert query["scope"] == [GMAIL_SCOPE] and query["access_type"] == ["offline"]
        return f"http://localhost:1/?state={query['state'][0]}&code=4/one-time-code&scope={GMAIL_SCOPE}"

    path = run_oauth_flow(cfg, scopes(), console=True, out=shown.append, read=paste)

    assert path == cfg.token_file and stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["refresh_token"] in gm.refresh_tokens
    assert [r["grant_type"] for r in gm.token_requests] == ["authorization_code"]
    assert not any(saved["refresh_token"] in line for line in shown)
    assert load_credentials(cfg, scopes()).refresh_token == saved["refresh_token"]


def test_the_local_server_consent_flow_receives_the_redirect(gm: FakeGmail, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import threading
    import time
    import urllib.request
    from urllib.parse import parse_qs, urlencode, urlsplit

    from bot.adapters.gmail_auth import run_oauth_flow

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    secrets = tmp_path / "client.json"
    secrets.write_text(json.dumps({"installed": {
        "client_id": "cid", "client_secret": "shh", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token", "redirect_uris": ["http://localhost"]}}))
    cfg = gm.config(tmp_path / "state", client_secrets_file=secrets)
    done: list[Path] = []
    worker = threading.Thread(target=lambda: done.append(run_oauth_flow(cfg, scopes(), timeout_seconds=10)))
    worker.start()
    printed = ""
    for _ in range(200):  # the flow prints the consent address (and opens no browser)
        printed += capsys.readouterr().out
        if "https://accounts.google.com" in printed:
            break
        time.sleep(0.02)
    url = next(w for w in printed.split() if w.startswith("https://accounts.google.com"))
    query = parse_qs(urlsplit(url).query)
    redirect = query["redirect_uri"][0]
    assert urlsplit(redirect).hostname == "localhost"
    with urllib.request.urlopen(redirect + "?" + urlencode({"state": query["state"][0], "code": "4/c"}), timeout=5):
        pass  # what the browser does after consent
    worker.join(10)
    assert done == [cfg.token_file] and json.loads(cfg.token_file.read_text())["refresh_token"] in gm.refresh_tokens


# ---------------------------------------------------------------- quota


def test_an_idle_cycle_costs_three_units(gm: FakeGmail, tmp_path: Path) -> None:
    provider = make_provider(gm, tmp_path)
    provider.ensure_labels(LABELS.all())
    provider.list_new(100)
    provider.checkpoint()
    gm.reset_counters()
    provider.ensure_labels(LABELS.all())  # the pipeline calls it every cycle: one labels.list
    assert provider.list_new(100) == []
    assert gm.quota == {"labels.list": 1, "history.list": 2}


# ---------------------------------------------------------------- the shared MailProvider contract


class TestGmailContract(MailProviderContract):
    @pytest.fixture
    def make(self, gm: FakeGmail, tmp_path: Path) -> Factory:
        self.gm = gm

        def build(raws: Sequence[bytes]) -> MailProvider:
            for raw in raws:
                self.deliver_raw(raw)
            return make_provider(gm, tmp_path)
        return build

    def deliver_raw(self, raw: bytes) -> None:
        """As messages.import with internalDateSource=dateHeader: the suite orders by the Date header."""
        date = BytesHeaderParser().parsebytes(raw)["Date"]
        self.gm.add_message(raw, internal_date=parsedate_to_datetime(date) if date else None)

    def deliver(self, provider: MailProvider, raw: bytes) -> None:
        self.deliver_raw(raw)

    def mark_read(self, provider: MailProvider, provider_id: str) -> None:
        self.gm.mark_read(provider_id)

    def delete_label(self, provider: MailProvider, name: str) -> None:
        self.gm.delete_label(name)

    def labels_of(self, provider: MailProvider, provider_id: str) -> set[str]:
        return self.gm.label_names(provider_id) - set(SYSTEM_LABELS)

    def in_trash(self, provider: MailProvider, provider_id: str) -> bool:
        return "TRASH" in self.gm.messages[provider_id].labels


def test_the_fake_answers_a_batch_like_gmail(gm: FakeGmail) -> None:
    """The fake's own batch endpoint, as the client library parses it: one 200 and one 404 in one response."""
    from googleapiclient.discovery import build
    from googleapiclient.http import BatchHttpRequest

    mid = gm.add_message()
    service = build("gmail", "v1", credentials=Credentials(token="test-access-token"), static_discovery=True,
                    cache_discovery=False, client_options={"api_endpoint": gm.api_endpoint})
    got: dict[str, Any] = {}
    batch = BatchHttpRequest(callback=lambda rid, resp, exc: got.update({rid: exc or resp}), batch_uri=gm.batch_uri)
    batch.add(service.users().messages().get(userId="me", id=mid, format="metadata", metadataHeaders=["Subject"]),
              request_id="ok")
    batch.add(service.users().messages().get(userId="me", id="missing"), request_id="gone")
    batch.execute()
    assert got["ok"]["payload"]["headers"] == [{"name": "Subject", "value": "Pump quote"}]
    assert got["gone"].status_code == 404
    assert datetime.fromtimestamp(int(got["ok"]["internalDate"]) / 1000, UTC) <= gm.clock()
