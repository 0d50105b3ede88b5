"""MailProvider over the Gmail API v1 (google-api-python-client, one service object per thread).

Retries: every call runs with num_retries=0 and goes through bot.retry, the single retry owner. Errors leave
this module as AuthError (a person must re-authorize), MailboxPaused (Gmail's flood control named a time to come
back: no Gmail call is made before it, across cycles and restarts), MessageGone (the message was deleted or left
the inbox before the bot got to it) or MailError (GmailError: the pipeline keeps the message where it is and
tries again next cycle; GmailUnavailable when Gmail itself failed, which uses none of the message's attempts).

Quota (Gmail units) of an idle 60 s cycle: labels.list 1 (ensure_labels) + history.list 2, plus a catch-up
messages.list 5 every `catchup_every` cycles. A listing with new mail adds one search for the small ones
(messages.list `smaller:`, 5 units per 500 unprocessed inbox ids, only when the listing names one it has not seen).
Per new message: one messages.get (5 units, batched), the lookup of its labels, date and size; for a message that
search found small it is format=raw, so the lookup is also the download. Any other message is looked up with
format=metadata (its headers) first: one larger than max_message_bytes (by Gmail's sizeEstimate) is never
downloaded, it costs the lookup alone; one within it is then downloaded (format=raw, 5 units more). Then its label
change, messages.modify 5, or a share of one messages.batchModify (50 units for up to 1,000 messages with the same
change, which the pipeline groups through modify_many()); a reply draft adds threads.get 10 + drafts.create 10. A
full sync adds messages.list 5 per 500 ids. Every call is charged to a QuotaPacer first
(bot.adapters.gmail_quota), which keeps a backlog under Gmail's per-user rate of 15,000 units a minute.
Nothing here sends mail: drafts.send and messages.send are never called.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import parseaddr
from functools import partial
from typing import Any

import httplib2
from google.auth.exceptions import RefreshError
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest

from bot.adapters.gmail_auth import AUTH_EXPIRED
from bot.adapters.gmail_quota import QuotaPacer
from bot.config import GmailConfig, LabelsConfig
from bot.mime import header_date
from bot.models import HeadersOnly, MessageRef
from bot.ports import AuthError, CursorStore, MailboxPaused, MailError, MessageGone, ThreadMessage, Unavailable
from bot.retry import backoff_delay, call_with_retry, parse_retry_after

log = logging.getLogger(__name__)

CURSOR_KEY = "gmail.history_id"
SYNCED_KEY = "gmail.synced_at"  # when the bot was last known to be in sync: how far back a full sync reaches
PAUSED_KEY = "gmail.paused_until"  # Gmail's flood-control deadline: no call before it
SYNC_MARGIN = timedelta(hours=1)  # a full sync reaches this much further back, for clocks that disagree
MAX_PAUSE = timedelta(days=1)  # a deadline further away than this is taken as this (a wrong clock somewhere)
SOURCE_HEADER = "X-Triage-Source"
_RATE_LIMIT = {"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}
_NO_SCOPE = {"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"}
_TRANSIENT = (TimeoutError, ConnectionError, http.client.HTTPException, ssl.SSLError, httplib2.ServerNotFoundError)
_CALL_ERRORS = (HttpError, RefreshError, BatchError, httplib2.HttpLib2Error, OSError, http.client.HTTPException)
_TRASH_UNITS, _BATCH_MODIFY_UNITS = 5, 50
MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # as mail.max_message_bytes: a larger message is not downloaded
BATCH_BYTES = 4 * 1024 * 1024  # raw mail (by Gmail's size estimate) downloaded in one request; a larger one alone
SMALL_BYTES = 256 * 1024  # mail Gmail's search finds smaller than this is downloaded by its lookup, 16 to a request
PREFETCH_BYTES = 32 * 1024 * 1024  # raw mail kept from a listing's lookups until fetch() asks for it
SMALL_IDS_KEPT = 20_000  # ids known to be small (a message never changes): enough for a large backlog
# The headers a message's lookup asks for: what bot.mime, the pre-filter and the classifier read from headers, so a
# message too large to download is judged on the same headers as any other.
LOOKUP_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To",
                  "References", "Return-Path", "MIME-Version", "Content-Type", "Auto-Submitted", "Precedence",
                  "X-Autoreply", "X-Autorespond", "X-Autoresponder", "List-Id", "List-Unsubscribe", "List-Post",
                  "Authentication-Results", "ARC-Authentication-Results", "X-Priority", "X-MSMail-Priority",
                  "User-Agent", "Original-Message-ID", SOURCE_HEADER)


class GmailError(MailError):
    """A Gmail call failed; status is the HTTP status (None for transport errors), reason Gmail's reason code."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class GmailUnavailable(GmailError, Unavailable):
    """Gmail itself failed (5xx, 429, a rate limit, the network) after the retries: not the message's fault."""


def error_reasons(exc: HttpError) -> list[str]:
    """Gmail's machine-readable reasons, most specific first ("rateLimitExceeded", ..., "RESOURCE_EXHAUSTED")."""
    try:
        error = json.loads(exc.content.decode("utf-8")).get("error", {})
    except (ValueError, AttributeError, UnicodeDecodeError):
        return []
    if not isinstance(error, dict):
        return []
    found = [str(e["reason"]) for key in ("errors", "details") for e in error.get(key) or []
             if isinstance(e, dict) and e.get("reason")]
    return found + ([str(error["status"])] if error.get("status") else [])


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, rate-limit 403s and transport failures; never other 4xx (they will fail the same way again)."""
    if isinstance(exc, HttpError):
        status = exc.status_code
        return status == 429 or status >= 500 or (status == 403 and not _RATE_LIMIT.isdisjoint(error_reasons(exc)))
    return isinstance(exc, _TRANSIENT)


def retry_after(exc: BaseException) -> float | None:
    return parse_retry_after(exc.resp.get("retry-after")) if isinstance(exc, HttpError) else None


_RETRY_AFTER_TIME = re.compile(r"Retry after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))")


def rate_limit_deadline(exc: BaseException) -> datetime | None:
    """The time Gmail's flood control names in its message ("User-rate limit exceeded.  Retry after
    2026-12-07T11:16:42.247Z") on a 429 or rate-limit 403; None for any other error."""
    if not isinstance(exc, HttpError) or not is_retryable(exc) or exc.status_code not in (403, 429):
        return None
    found = _RETRY_AFTER_TIME.search(exc.content.decode("utf-8", "replace") if exc.content else "")
    if not found:
        return None
    try:
        when = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def may_have_landed(exc: BaseException) -> bool:
    """Whether a failed POST may still have been carried out (5xx, timeout, dropped connection)."""
    if isinstance(exc, HttpError):
        return exc.status_code >= 500
    return not isinstance(exc, ConnectionRefusedError)


def translate(exc: BaseException, what: str) -> AuthError | MailError:
    """Library error -> AuthError (needs a person), GmailUnavailable (Gmail itself is failing: retried next cycle,
    no attempt of the message used) or GmailError (this message, this cycle)."""
    if isinstance(exc, (AuthError, MailError)):
        return exc
    if isinstance(exc, RefreshError):
        if getattr(exc, "retryable", False):
            return GmailUnavailable(f"Gmail {what} failed: the token endpoint is unavailable")
        return AuthError(AUTH_EXPIRED)
    if isinstance(exc, HttpError):
        reasons = error_reasons(exc)
        if exc.status_code == 401 or (exc.status_code == 403 and not _NO_SCOPE.isdisjoint(reasons)):
            return AuthError(AUTH_EXPIRED)
        reason = reasons[0] if reasons else ""
        kind = GmailUnavailable if is_retryable(exc) else GmailError
        return kind(f"Gmail {what} failed: HTTP {exc.status_code} {exc.reason or reason}".strip(),
                    exc.status_code, reason)
    return GmailUnavailable(f"Gmail {what} failed: {type(exc).__name__}: {exc}")


def label_query(name: str) -> str:
    """A label name as Gmail's own search box writes it: "Triage/Processed" -> "triage-processed".

    Gmail writes "/" and spaces in label names as "-" in search (and refuses labels that differ only there);
    other punctuation is quoted instead. Correctness does not depend on this match: a processed message that
    slips through is dropped by its label id (one messages.get minimal) before list_new() returns it.
    """
    simple = re.sub(r"[\s/]", "-", name.strip()).lower()
    return simple if re.fullmatch(r"[\w.-]+", simple) else '"' + name.replace('"', "") + '"'


def _decode_raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322: printable ASCII except ":"
_LINE_BREAKS = re.compile(r"[\r\n]+[ \t]*")


def header_block(answer: dict[str, Any]) -> bytes:
    """The headers of a format=metadata answer as an RFC 822 header block (with the blank line that ends it).

    Line breaks in a value are unfolded: Gmail decodes encoded words, and one that decodes to a line break must
    not start a header line of its own (a forged X-Triage-Source would pass the mail off as our own draft).
    """
    lines = []
    for header in (answer.get("payload") or {}).get("headers") or []:
        if not isinstance(header, dict):
            continue
        name, value = str(header.get("name", "")), str(header.get("value", ""))
        if _FIELD_NAME.fullmatch(name):
            lines.append(f"{name}: {_LINE_BREAKS.sub(' ', value)}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8", "replace")


DELETED = "the message was deleted from Gmail"


def gone_reason(labels: Iterable[str], processed: str | None, processed_name: str) -> str | None:
    """Why a message with these label ids is not (any more) one to process, or None when it is."""
    found = set(labels)
    if "TRASH" in found:
        return "the message was moved to Trash"
    if "SPAM" in found:
        return "the message was marked as spam"
    if "INBOX" not in found:
        return "the message was moved out of the inbox"
    if processed is not None and processed in found:
        return f"the message is labelled {processed_name} already"
    return None


class GmailProvider:
    """The shared inbox in Gmail. Not thread-safe (httplib2): build one per thread."""

    def __init__(self, cfg: GmailConfig, credentials: Any, labels: LabelsConfig, cursor_store: CursorStore,
                 sleep: Callable[[float], None] = time.sleep, catchup_every: int = 10,
                 max_retry_seconds: float = 60.0, pacer: QuotaPacer | None = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, prefetch_bytes: int = PREFETCH_BYTES,
                 clock: Callable[[], datetime] | None = None) -> None:
        """max_message_bytes: a message Gmail estimates larger than this is never downloaded (its headers are)."""
        self._cfg, self._labels, self._cursors, self._sleep = cfg, labels, cursor_store, sleep
        self._clock = clock or (lambda: datetime.now(UTC))
        self.pacer = pacer or QuotaPacer(sleep=sleep)  # every call is charged here before it is sent
        self._http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=cfg.timeout_seconds))
        self._users = build("gmail", "v1", http=self._http, static_discovery=True, cache_discovery=False,
                            client_options={"api_endpoint": cfg.api_endpoint}).users()
        self._catchup_every = max(1, catchup_every)
        self._max_retry_seconds = max_retry_seconds
        self._label_cache: dict[str, tuple[str, str]] | None = None  # casefolded name -> (id, name)
        self._cycle = 0
        self._catchup_forced = False
        self._listed: set[str] = set()  # ids returned by the last list_new()
        self._confirmed: set[str] = set()  # ids checkpointed while the stored cursor could not advance
        self._pending_cursor: str | None = None
        # What lookups settled without a download: why a message is gone, the headers of one too large to
        # download, a failed lookup; and the size of each message fetch() may download.
        self._settled: dict[str, bytes | MailError] = {}
        self._sizes: dict[str, int] = {}
        self._max_bytes = max_message_bytes
        self._small_bytes = min(SMALL_BYTES, max_message_bytes)
        self._small: dict[str, bool] = {}  # per id the search was asked about: did it find it small
        self._prefetch_bytes = prefetch_bytes
        self._pending_synced: str | None = None
        self._paused_until = _stored_time(cursor_store.get_cursor(PAUSED_KEY))
        self._pause_told = False  # the pause is logged once per process

    # ------------------------------------------------------------------ calls

    def _retrying(self, fn: Callable[[], Any], what: str, retryable: Callable[[BaseException], bool] = is_retryable,
                  ) -> Any:
        try:
            return call_with_retry(fn, is_retryable=lambda exc: retryable(exc) and self._deadline(exc) is None,
                                   retry_after=retry_after, sleep=self._sleep, max_delay=self._max_retry_seconds,
                                   what=f"Gmail {what}")
        except _CALL_ERRORS as exc:
            deadline = self._deadline(exc)
            if deadline is not None:
                self._pause(deadline)
            raise translate(exc, what) from exc

    def _deadline(self, exc: BaseException) -> datetime | None:
        """Gmail's flood-control deadline carried by this error, if it is still ahead."""
        deadline = rate_limit_deadline(exc)
        return deadline if deadline is not None and deadline > self._clock() else None

    def _pause(self, deadline: datetime) -> None:
        """Make no Gmail call before `deadline`; stored, so a restart honours it too."""
        until = min(deadline, self._clock() + MAX_PAUSE)
        self._paused_until = until
        self._cursors.set_cursor(PAUSED_KEY, until.isoformat())
        self._pause_told = True
        log.warning("Gmail's rate limit was hit: no Gmail calls until %s (%.0f s from now), as Gmail asks",
                    until.isoformat(timespec="seconds"), (until - self._clock()).total_seconds())
        raise MailboxPaused(until)

    def _spend(self, what: str, count: int = 1) -> None:
        """Before every API call: refuse it while Gmail's deadline is ahead, else charge it to the pacer."""
        until = self._paused_until
        if until is not None and self._clock() < until:
            if self._cursors.get_cursor(PAUSED_KEY) != until.isoformat():
                # A pause that began inside a ledger transaction (a thread check while a message is decided) was
                # rolled back with it; stored again here, a restart honours it too.
                self._cursors.set_cursor(PAUSED_KEY, until.isoformat())
            if not self._pause_told:  # a restarted process says once why it does not touch Gmail
                self._pause_told = True
                log.warning("Gmail calls stay paused until %s (Gmail's rate limit)",
                            until.isoformat(timespec="seconds"))
            raise MailboxPaused(until)
        self.pacer.spend(what, count)

    def _call(self, request: Callable[[], Any], what: str) -> Any:
        """Build and execute one API request, retrying transient failures; a fresh request object per attempt."""
        def send() -> Any:
            self._spend(what)
            return request().execute(num_retries=0)

        return self._retrying(send, what)

    def _batch(self, requests: Sequence[Callable[[], Any]], what: str) -> list[Any]:
        """Run requests as batch HTTP calls; returns each item's response or its error (AuthError is raised).

        Items that fail with a retryable error go into another batch after a backoff; the batch call itself is
        retried as a whole by _retrying.
        """
        results: list[Any] = [None] * len(requests)
        todo, attempt, waited = list(range(len(requests))), 0, 0.0
        while todo:
            attempt += 1
            answers = self._retrying(partial(self._batch_once, [requests[i] for i in todo], what), what)
            deadline = max(filter(None, map(self._deadline, answers)), default=None)
            if deadline is not None:
                self._pause(deadline)
            again = [i for i, a in zip(todo, answers, strict=True) if isinstance(a, HttpError) and is_retryable(a)]
            for i, ans in zip(todo, answers, strict=True):
                results[i] = ans
            hint = max((retry_after(results[i]) or 0.0 for i in again), default=0.0)
            delay = max(hint, backoff_delay(attempt))
            if not again or attempt >= 5 or waited + delay > self._max_retry_seconds:
                break
            log.warning("Gmail %s: %d of %d batch items failed, retrying them in %.1f s", what, len(again),
                        len(todo), delay)
            self._sleep(delay)
            waited += delay
            todo = again
        for i, ans in enumerate(results):
            if isinstance(ans, BaseException):
                results[i] = translate(ans, what)
                if isinstance(results[i], AuthError):
                    raise results[i]
        return results

    def _batch_once(self, requests: list[Callable[[], Any]], what: str) -> list[Any]:
        answers: dict[str, Any] = {}
        self._spend(what, len(requests))  # Gmail charges a batch item by item

        def collect(request_id: str, response: Any, exception: BaseException | None) -> None:
            answers[request_id] = exception if exception is not None else response

        # An explicit batch_uri: new_batch_http_request() would ignore api_endpoint and use the discovery rootUrl.
        batch = BatchHttpRequest(callback=collect, batch_uri=self._cfg.batch_uri)
        for i, make in enumerate(requests):
            batch.add(make(), request_id=str(i))
        batch.execute(http=self._http)
        return [answers.get(str(i), GmailError("Gmail batch response lacks an item")) for i in range(len(requests))]

    # ------------------------------------------------------------------ sync

    def list_new(self, limit: int) -> list[MessageRef]:
        """Unprocessed inbox messages, oldest first, read or unread (never `is:unread`: a person may open one first).

        The first run (no stored historyId) or one after the id expired (404) lists the inbox; the historyId is
        read from the profile *before* listing, so mail that arrives during the listing is in the history after
        it. The very first run looks back `lookback_days`; a later full sync reaches back to the last time the
        bot was known to be in sync (stored at each checkpoint), however long ago. Later runs read only
        history.list (messageAdded in INBOX, 2 units a page).

        Catch-up: at startup and every `catchup_every` cycles the lookback query runs as well. It costs 5 units
        per 500 ids and, because processed mail carries the processed label, it usually returns one short page;
        it picks up what history cannot report as "added": mail a person moved back to the inbox, anything a
        failed cycle left behind. The pipeline skips known ids, so listing a message twice is harmless; omitting
        one is not.

        When more than `limit` messages are waiting, the cursor is not advanced at checkpoint(); the next cycle
        lists the same range again (plus a catch-up) and skips the ids already checkpointed.
        """
        self._pending_cursor, self._pending_synced, self._listed = None, None, set()  # a failed listing must not
        self._settled.clear()  # let checkpoint() advance
        self._sizes.clear()
        started = self._clock()
        processed = self._label_id(self._labels.processed, create=False)
        cursor = self._cursors.get_cursor(CURSOR_KEY)
        refs: list[MessageRef] | None = None
        new_cursor: str | None = None
        if cursor:
            try:
                refs, new_cursor = self._history_since(cursor)
            except GmailError as exc:
                if exc.status != 404:
                    raise
                log.warning("Gmail history id %s is no longer valid: full sync", cursor)
        if refs is None:
            new_cursor = str(self._call(lambda: self._users.getProfile(userId="me"), "users.getProfile")["historyId"])
            refs = self._list_unprocessed(self._full_sync_since(started))
        elif self._catchup_forced or self._cycle % self._catchup_every == 0:
            refs = list({r.provider_id: r for r in self._list_unprocessed() + refs}.values())
        self._cycle += 1
        fresh = [r for r in refs if r.provider_id not in self._confirmed]
        chosen = self._with_labels(fresh[:limit], processed)
        overflow = len(fresh) > limit
        self._catchup_forced = overflow
        if not overflow:  # set only once the listing fully succeeded
            self._pending_cursor, self._pending_synced = new_cursor, started.isoformat()
        self._listed = {r.provider_id for r in chosen}
        return chosen

    def checkpoint(self) -> None:
        """Advance the stored historyId (and the time the bot was in sync), unless the last list_new() had to
        leave messages for later."""
        self._confirmed |= self._listed
        self._listed = set()
        if self._pending_cursor is not None:
            self._cursors.set_cursor(CURSOR_KEY, self._pending_cursor)
            self._cursors.set_cursor(SYNCED_KEY, str(self._pending_synced))
            self._pending_cursor = self._pending_synced = None
            self._confirmed.clear()

    def _full_sync_since(self, now: datetime) -> datetime | None:
        """Where a full sync starts: None (the lookback window) on the very first run, else the last time the
        bot was known to be in sync, or the lookback window if that reaches further."""
        lookback = now - timedelta(days=self._cfg.lookback_days)
        synced = _stored_time(self._cursors.get_cursor(SYNCED_KEY))
        if synced is None:
            log.info("Gmail full sync: inbox mail of the last %d days (lookback_days)", self._cfg.lookback_days)
            return None
        since = min(synced - SYNC_MARGIN, lookback)
        log.info("Gmail full sync: inbox mail since %s, %.1f days back (the bot was last in sync at %s)",
                 since.isoformat(timespec="seconds"), (now - since).total_seconds() / 86400,
                 synced.isoformat(timespec="seconds"))
        return since

    def _history_since(self, cursor: str) -> tuple[list[MessageRef], str]:
        """Messages added to the inbox since `cursor`, bare: a record's labels (if any) are those it had when it
        was added, so the lookup in _with_labels decides whether it is still one to process."""
        refs: dict[str, MessageRef] = {}
        page: str | None = None
        latest = cursor
        while True:
            resp = self._call(partial(self._users.history().list, userId="me", startHistoryId=cursor,
                                      historyTypes=["messageAdded"], labelId="INBOX", maxResults=500,
                                      pageToken=page), "history.list")
            latest = str(resp.get("historyId") or latest)
            for record in resp.get("history", []):
                for added in record.get("messagesAdded", []):
                    msg = added.get("message") or {}
                    if msg.get("id"):
                        refs.setdefault(msg["id"], MessageRef(msg["id"], msg.get("threadId", "")))
            page = resp.get("nextPageToken")
            if not page:
                return list(refs.values()), latest

    def _list_unprocessed(self, since: datetime | None = None, size: str = "") -> list[MessageRef]:
        window = f"after:{int(since.timestamp())}" if since else f"newer_than:{self._cfg.lookback_days}d"
        query = f"in:inbox -label:{label_query(self._labels.processed)} {window} {size}".rstrip()
        found: list[MessageRef] = []
        page: str | None = None
        while True:
            resp = self._call(partial(self._users.messages().list, userId="me", q=query, maxResults=500,
                                      pageToken=page), "messages.list")
            found += [self._ref(m) for m in resp.get("messages", [])]
            page = resp.get("nextPageToken")
            if not page:
                return found[::-1]  # Gmail lists newest first

    def _with_labels(self, refs: list[MessageRef], processed: str | None) -> list[MessageRef]:
        """Labels, date and size of the listed refs (listings and history give ids only), oldest first.

        One batched messages.get per ref (see _look_up). It drops what got the processed label meanwhile; what was
        deleted or left the inbox stays listed, and fetch() hands out MessageGone for it, so the pipeline records
        why it was not processed. A small message's lookup downloaded it; of any other, its sizeEstimate tells
        fetch() what it may download: a message larger than max_message_bytes never is, fetch() hands out the
        headers of this lookup instead (HeadersOnly).
        """
        bare = [r.provider_id for r in refs if not r.labels]
        if not bare:
            return refs
        answers, raws = self._look_up(bare, self._found_small(bare))
        out = []
        for ref in refs:
            answer = answers.get(ref.provider_id)
            if answer is None:
                out.append(ref)
            elif isinstance(answer, GmailError) and answer.status == 404:
                self._settled[ref.provider_id] = MessageGone(DELETED)
                out.append(ref)
            elif isinstance(answer, Exception):
                out.append(replace(ref, labels=frozenset({"INBOX"})))  # known from the query; fetch() looks again
            elif processed is None or processed not in (answer.get("labelIds") or []):
                if reason := gone_reason(answer.get("labelIds") or [], None, ""):
                    self._settled[ref.provider_id] = MessageGone(reason)
                elif ref.provider_id in raws:
                    self._settled[ref.provider_id] = raws[ref.provider_id]
                else:
                    self._note_size(ref.provider_id, answer)
                out.append(self._ref(answer))
        return out

    def _found_small(self, provider_ids: Sequence[str]) -> set[str]:
        """Those of the ids that Gmail's search finds smaller than _small_bytes in the unprocessed inbox.

        The search (messages.list, 5 units per 500 ids) runs only when an id has not been asked about; a message's
        size never changes, so the answer is kept for later listings. Mail the search does not find (not indexed
        yet, older than the lookback window, larger) is not taken to be small: its size comes from its lookup.
        """
        if any(pid not in self._small for pid in provider_ids):
            if len(self._small) > SMALL_IDS_KEPT:
                self._small.clear()
            self._small.update(dict.fromkeys(provider_ids, False))
            self._small.update((r.provider_id, True)
                               for r in self._list_unprocessed(size=f"smaller:{self._small_bytes}"))
        return {pid for pid in provider_ids if self._small[pid]}

    def _look_up(self, provider_ids: Sequence[str], small: Collection[str] = ()) -> tuple[dict[str, Any],
                                                                                           dict[str, bytes]]:
        """messages.get (5 units, whatever the format) for each id, batched: its answer or its error; and the raw
        mail of those looked up with format=raw.

        A small message (in `small`) is looked up with format=raw, 16 to a request, so that its lookup is its
        download, until prefetch_bytes of raw mail are held; any other with format=metadata and LOOKUP_HEADERS,
        so that its sizeEstimate decides what fetch() downloads, and a message too large to download is judged on
        its headers.
        """
        get, size = self._users.messages().get, max(1, min(self._cfg.batch_size, 50))
        answers: dict[str, Any] = {}
        raws: dict[str, bytes] = {}
        first = [pid for pid in provider_ids if pid in small]
        later = [pid for pid in provider_ids if pid not in small]
        together, room = max(1, min(size, BATCH_BYTES // self._small_bytes)), self._prefetch_bytes
        for start in range(0, len(first), together):
            chunk = first[start:start + together]
            if room <= 0:
                later += chunk
                continue
            found = self._batch([partial(get, userId="me", id=pid, format="raw") for pid in chunk], "messages.get")
            for pid, answer in zip(chunk, found, strict=True):
                if isinstance(answer, dict) and "raw" in answer:
                    raw = self._raw_of(pid, answer)
                    del answer["raw"]
                    if isinstance(raw, bytes):
                        raws[pid] = raw
                        room -= len(raw)
                answers[pid] = answer
        for start in range(0, len(later), size):
            chunk = later[start:start + size]
            found = self._batch([partial(get, userId="me", id=pid, format="metadata",
                                         metadataHeaders=list(LOOKUP_HEADERS)) for pid in chunk], "messages.get")
            answers.update(zip(chunk, found, strict=True))
        return answers, raws

    def _note_size(self, provider_id: str, answer: dict[str, Any]) -> None:
        """What fetch() may download of a looked-up message; of one too large to, it keeps the headers."""
        try:
            size = int(answer["sizeEstimate"])
        except (KeyError, TypeError, ValueError):
            # No estimate (Gmail always gives one): nothing says it is too large; read it, in a request of its own.
            self._sizes[provider_id] = BATCH_BYTES
            return
        if size > self._max_bytes:
            log.warning("Gmail message %s is about %s bytes, more than max_message_bytes: only its headers are read",
                        provider_id, f"{size:,}")
            self._settled[provider_id] = HeadersOnly(header_block(answer), size)
        else:
            self._sizes[provider_id] = size

    def _ref(self, msg: dict[str, Any]) -> MessageRef:
        names = {lid: name for lid, name in (self._label_cache or {}).values()}
        internal = int(msg.get("internalDate") or 0)
        return MessageRef(provider_id=msg["id"], thread_id=msg.get("threadId", ""),
                          labels=frozenset(names.get(x, x) for x in msg.get("labelIds") or []),
                          internal_date=datetime.fromtimestamp(internal / 1000, UTC) if internal else None)

    # ------------------------------------------------------------------ reading

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes | Exception]]:
        """Raw RFC 822 bytes per message, in order, batch_size messages at a time.

        A message larger than max_message_bytes (by Gmail's sizeEstimate) is never downloaded: it comes as
        HeadersOnly, its headers from the lookup. The last list_new()'s lookups gave each listed message's size;
        any other message is looked up first (messages.get format=metadata, 5 units). The rest is downloaded
        (format=raw, 5 units each) in batch requests of at most BATCH_BYTES of mail; a larger message goes alone,
        as a plain request. A deleted message comes as MessageGone; so does one the last list_new() listed that is
        no longer one to process (in Trash or Spam, out of the inbox, labelled processed), with the reason. Any
        other message is read wherever it is.
        """
        done = 0
        for chunk in _chunks(refs, max(1, min(self._cfg.batch_size, 50))):
            try:
                self._size_up(chunk)
                for part in self._download_parts(chunk):
                    fetched = self._download(part)
                    for ref in part:
                        item: bytes | Exception | None = self._settled.pop(ref.provider_id, None)
                        if item is None:
                            item = self._downloaded(ref, fetched.pop(ref.provider_id))
                        self._sizes.pop(ref.provider_id, None)
                        done += 1
                        yield ref, item
                        del item  # handed out: the memory goes with it, not kept through the next download
            except AuthError:
                raise
            except MailError as exc:  # Gmail itself is failing: the rest waits for the next cycle
                yield from self._give_up(refs[done:], exc)
                return

    def _size_up(self, refs: Sequence[MessageRef]) -> None:
        """Look up the messages whose size no lookup has told yet (not listed, or their lookup failed)."""
        unknown = list(dict.fromkeys(r.provider_id for r in refs
                                     if r.provider_id not in self._settled and r.provider_id not in self._sizes))
        for pid in [pid for pid in unknown if self._small.get(pid)]:  # a search found it small: no lookup needed
            self._sizes[pid] = self._small_bytes
            unknown.remove(pid)
        if not unknown:
            return
        answers, _ = self._look_up(unknown)
        for pid, answer in answers.items():
            if isinstance(answer, MailError):
                self._settled[pid] = _message_gone(answer)
            elif (gone := self._no_longer_listed(pid, answer)) is not None:
                self._settled[pid] = gone
            else:
                self._note_size(pid, answer)

    def _download_parts(self, refs: Sequence[MessageRef]) -> Iterator[list[MessageRef]]:
        """Consecutive runs of refs whose downloads fit in BATCH_BYTES together (or are one message)."""
        part: list[MessageRef] = []
        room = BATCH_BYTES
        for ref in refs:
            need = 0 if ref.provider_id in self._settled else self._sizes.get(ref.provider_id, BATCH_BYTES)
            if need > room and any(r.provider_id not in self._settled for r in part):
                yield part
                part, room = [], BATCH_BYTES
            part.append(ref)
            room -= need
        if part:
            yield part

    def _download(self, refs: Sequence[MessageRef]) -> dict[str, Any]:
        """format=raw for each ref not settled by its lookup: a batch request, or a plain one for a single message
        (the batch response's parsing would hold several copies of a large one)."""
        ids = [r.provider_id for r in refs if r.provider_id not in self._settled]
        get = self._users.messages().get
        if len(ids) == 1:
            try:
                return {ids[0]: self._call(partial(get, userId="me", id=ids[0], format="raw"), "messages.get")}
            except GmailUnavailable:
                raise
            except GmailError as exc:  # this message's own failure, as a batch item's would be
                return {ids[0]: exc}
        answers = self._batch([partial(get, userId="me", id=pid, format="raw") for pid in ids], "messages.get")
        return dict(zip(ids, answers, strict=True))

    def _give_up(self, refs: Sequence[MessageRef], exc: MailError) -> Iterator[tuple[MessageRef, bytes | Exception]]:
        """The rest of a fetch() when Gmail fails: what lookups settled, else the error (tried again next cycle)."""
        for ref in refs:
            settled = self._settled.pop(ref.provider_id, None)
            yield ref, settled if settled is not None else exc

    def _no_longer_listed(self, provider_id: str, answer: dict[str, Any]) -> MessageGone | None:
        """Why a message the last list_new() listed is no longer one to process, by the labels of an answer."""
        if provider_id not in self._listed:
            return None
        # a message without labelIds is taken to be in the inbox: never skip one blindly
        processed = self._label_id(self._labels.processed, create=False)
        reason = gone_reason(answer.get("labelIds") or ["INBOX"], processed, self._labels.processed)
        return MessageGone(reason) if reason else None

    def _downloaded(self, ref: MessageRef, answer: Any) -> bytes | Exception:
        if isinstance(answer, GmailError) and answer.status == 404:
            return MessageGone(DELETED)
        if isinstance(answer, dict) and (gone := self._no_longer_listed(ref.provider_id, answer)) is not None:
            return gone
        return self._raw_of(ref.provider_id, answer)

    @staticmethod
    def _raw_of(provider_id: str, answer: Any) -> bytes | Exception:
        if isinstance(answer, Exception):
            return answer
        try:
            return _decode_raw(answer["raw"])
        except (KeyError, TypeError, binascii.Error, ValueError):
            return GmailError(f"Gmail messages.get returned no raw content for {provider_id}")

    def thread(self, thread_id: str) -> list[ThreadMessage]:
        """One threads.get (format=metadata, 10 units): sender, date, DRAFT label and X-Triage-Source per message.

        A thread that does not exist (any more) has no messages: [].
        """
        try:
            return self._parse_thread(self._call(lambda: self._thread_request(thread_id), "threads.get"))
        except GmailError as exc:
            if exc.status == 404:
                return []
            raise

    def _thread_request(self, thread_id: str) -> Any:
        return self._users.threads().get(userId="me", id=thread_id, format="metadata",
                                         metadataHeaders=["From", "Date", SOURCE_HEADER])

    @staticmethod
    def _parse_thread(resp: dict[str, Any]) -> list[ThreadMessage]:
        found: list[tuple[int, ThreadMessage]] = []
        for msg in resp.get("messages", []):
            headers: dict[str, str] = {}
            for h in (msg.get("payload") or {}).get("headers", []):
                headers.setdefault(str(h.get("name", "")).lower(), str(h.get("value", "")))
            internal = int(msg.get("internalDate") or 0)
            found.append((internal, ThreadMessage(
                provider_id=msg["id"], from_addr=parseaddr(headers.get("from", ""))[1].lower(),
                date=header_date(headers.get("date")) or (datetime.fromtimestamp(internal / 1000, UTC)
                                                           if internal else None),
                is_draft="DRAFT" in (msg.get("labelIds") or []),
                source_id=headers.get(SOURCE_HEADER.lower(), "").strip() or None)))
        return [tm for _, tm in sorted(found, key=lambda pair: pair[0])]

    # ------------------------------------------------------------------ labels

    def _label_map(self, refresh: bool = False) -> dict[str, tuple[str, str]]:
        if self._label_cache is None or refresh:
            resp = self._call(lambda: self._users.labels().list(userId="me"), "labels.list")
            self._label_cache = {lab["name"].casefold(): (lab["id"], lab["name"]) for lab in resp.get("labels", [])}
        return self._label_cache

    def _label_id(self, name: str, create: bool) -> str | None:
        """Get-or-create by name (Gmail names are unique regardless of case); nested names like "Triage/Lead" work."""
        key = name.casefold()
        cache = self._label_map()
        if key in cache or not create:
            return cache[key][0] if key in cache else None
        hidden = name == self._labels.processed  # bookkeeping, not something people browse by
        body = {"name": name, "labelListVisibility": "labelHide" if hidden else "labelShow",
                "messageListVisibility": "hide" if hidden else "show"}
        try:
            label = self._call(lambda: self._users.labels().create(userId="me", body=body), "labels.create")
        except GmailError as exc:
            if exc.status != 409:  # 409: it exists already (made concurrently, or our retried create landed)
                raise
            cache = self._label_map(refresh=True)
            if key not in cache:
                raise
            return cache[key][0]
        cache[key] = (label["id"], label["name"])
        log.info("created Gmail label %s", name)
        return str(label["id"])

    def ensure_labels(self, names: Iterable[str]) -> None:
        """Re-reads the label list (1 unit) so a label a person deleted since the last call is created again."""
        self._label_map(refresh=True)
        for name in names:
            self._label_id(name, create=True)

    # ------------------------------------------------------------------ changes

    def modify(self, provider_id: str, add: Sequence[str], remove: Sequence[str], archive: bool) -> None:
        """One messages.modify; a label a person deleted meanwhile is recreated and the call made once more.
        A message that no longer exists raises MessageGone."""
        for attempt in (1, 2):
            body = self._label_change(add, remove, archive)
            try:
                self._call(partial(self._users.messages().modify, userId="me", id=provider_id, body=body),
                           "messages.modify")
                return
            except GmailError as exc:
                if attempt == 2 or exc.status not in (400, 404) or not self._labels_gone(body):
                    if exc.status == 404:  # the labels are fine: the message itself is the problem
                        raise MessageGone(DELETED) from exc
                    raise
                log.warning("a Gmail label used for %s was deleted; recreating it", provider_id)

    def modify_many(self, provider_ids: Sequence[str], add: Sequence[str], archive: bool) -> dict[str, MailError]:
        """The same label change on many messages; returns the error of each message left unchanged.

        Up to 10 messages go as messages.modify items of one batch request (5 units each), more as
        messages.batchModify (50 units per 1,000 ids). A batchModify that fails is redone item by item, so one
        bad message costs only its own change. A label a person deleted meanwhile is recreated, as in modify().
        A message that no longer exists gets MessageGone.
        """
        ids = list(dict.fromkeys(provider_ids))
        errors: dict[str, MailError] = {}
        for attempt in (1, 2):
            body = self._label_change(add, (), archive)
            few = len(ids) * _TRASH_UNITS <= _BATCH_MODIFY_UNITS
            errors = self._modify_items(ids, body) if few else self._batch_modify(ids, body)
            refused = [i for i, e in errors.items() if isinstance(e, GmailError) and e.status in (400, 404)]
            if attempt == 2 or not refused or not self._labels_gone(body):
                break
            log.warning("a Gmail label used for %d messages was deleted; recreating it", len(refused))
            ids = list(errors)
        return {i: _message_gone(e) for i, e in errors.items()}

    def _modify_items(self, ids: Sequence[str], body: dict[str, list[str]]) -> dict[str, MailError]:
        modify = self._users.messages().modify
        errors: dict[str, MailError] = {}
        for start in range(0, len(ids), 50):
            chunk = ids[start:start + 50]
            try:
                answers = self._batch([partial(modify, userId="me", id=i, body=body) for i in chunk],
                                      "messages.modify")
            except MailError as exc:  # the batch endpoint itself failed: none of these changed
                answers = [exc] * len(chunk)
            errors.update((i, a) for i, a in zip(chunk, answers, strict=True) if isinstance(a, MailError))
        return errors

    def _batch_modify(self, ids: Sequence[str], body: dict[str, list[str]]) -> dict[str, MailError]:
        errors: dict[str, MailError] = {}
        for start in range(0, len(ids), 1000):
            chunk = list(ids[start:start + 1000])
            try:
                self._call(partial(self._users.messages().batchModify, userId="me", body={"ids": chunk, **body}),
                           "messages.batchModify")
            except GmailError as exc:
                if exc.status in (400, 404) and self._labels_gone(body):
                    errors.update(dict.fromkeys(chunk, exc))  # modify_many() recreates the label
                else:
                    errors.update(self._modify_items(chunk, body))  # find the message at fault
        return errors

    def _label_change(self, add: Sequence[str], remove: Sequence[str], archive: bool) -> dict[str, list[str]]:
        """addLabelIds/removeLabelIds by name; the labels to add are created if they do not exist (any more)."""
        add_ids = [str(self._label_id(name, create=True)) for name in add]
        remove_ids = [i for name in remove if (i := self._label_id(name, create=False)) and i not in add_ids]
        remove_ids += ["INBOX"] if archive and "INBOX" not in add_ids else []
        return {"addLabelIds": add_ids, "removeLabelIds": remove_ids}

    def _labels_gone(self, body: dict[str, list[str]]) -> bool:
        """Whether a label of this change was deleted meanwhile (re-reads the label list, 1 unit)."""
        known = {lid for lid, _ in self._label_map(refresh=True).values()}
        return not set(body["addLabelIds"]) | set(body["removeLabelIds"]) <= known

    def trash(self, provider_ids: Sequence[str]) -> None:
        """Move to the trash (recoverable for 30 days), choosing the cheaper of two equivalent calls.

        messages.trash costs 5 units per message; messages.batchModify costs 50 units for up to 1,000 ids and
        may add the TRASH system label (Gmail's label guide lists TRASH as "can be manually applied"). So up to
        10 messages go as messages.trash items in one batch request, more as batchModify(+TRASH, -INBOX).
        A message that is already gone (404) counts as trashed.
        """
        ids = list(dict.fromkeys(provider_ids))
        if not ids:
            return
        if len(ids) * _TRASH_UNITS <= _BATCH_MODIFY_UNITS:
            trash = self._users.messages().trash
            answers = self._batch([partial(trash, userId="me", id=mid) for mid in ids], "messages.trash")
            failed = [(mid, a) for mid, a in zip(ids, answers, strict=True)
                      if isinstance(a, Exception) and not (isinstance(a, GmailError) and a.status == 404)]
            if failed:
                raise GmailError(f"Gmail trash failed for {len(failed)} message(s): {failed[0][1]}")
            return
        for start in range(0, len(ids), 1000):
            body = {"ids": ids[start:start + 1000], "addLabelIds": ["TRASH"], "removeLabelIds": ["INBOX"]}
            self._call(partial(self._users.messages().batchModify, userId="me", body=body), "messages.batchModify")

    def profile(self) -> dict[str, Any]:
        """The mailbox's address and counts (users.getProfile, 1 unit): a read-only proof that access works."""
        return dict(self._call(lambda: self._users.getProfile(userId="me"), "users.getProfile"))

    def ids_with_label(self, label: str) -> set[str]:
        """Every message carrying the label: messages.list by label id, 5 units per page of 500 ids.

        By id, not a `label:` search: exact whatever the name contains, and not subject to the search index
        catching up with a label a person just applied. Spam and trash are left out, as in Gmail's label view.
        """
        label_id = self._label_id(label, create=False)
        if label_id is None:
            return set()
        found: set[str] = set()
        page: str | None = None
        while True:
            resp = self._call(partial(self._users.messages().list, userId="me", labelIds=[label_id], maxResults=500,
                                      pageToken=page), "messages.list")
            found.update(str(m["id"]) for m in resp.get("messages", []))
            page = resp.get("nextPageToken")
            if not page:
                return found

    def create_draft(self, raw: bytes, thread_id: str) -> str:
        """drafts.create in the thread; never sent. Never repeated blindly: after a failure that may have landed
        (5xx, timeout, dropped connection) the thread is read first and an existing draft for the same
        X-Triage-Source is returned instead of creating a second one."""
        source = _source_of(raw)
        message = {"raw": base64.urlsafe_b64encode(raw).decode()} | ({"threadId": thread_id} if thread_id else {})
        checkable = bool(source and thread_id)
        uncertain = False

        def attempt() -> str:
            nonlocal uncertain
            if uncertain:
                existing = self._find_draft(thread_id, str(source))
                if existing:
                    log.info("draft for %s already existed after an uncertain failure", source)
                    return existing
            try:
                self._spend("drafts.create")
                return str(self._users.drafts().create(userId="me", body={"message": message})
                           .execute(num_retries=0)["id"])
            except Exception as exc:
                uncertain = uncertain or may_have_landed(exc)
                raise

        return str(self._retrying(attempt, "drafts.create",
                                  lambda exc: is_retryable(exc) and (checkable or not may_have_landed(exc))))

    def _find_draft(self, thread_id: str, source: str) -> str | None:
        """The id of the draft in this thread that answers `source` (raw calls: the caller owns the retries)."""
        self._spend("threads.get")
        in_thread = self._parse_thread(self._thread_request(thread_id).execute(num_retries=0))
        message_id = next((m.provider_id for m in in_thread if m.is_draft and m.source_id == source), None)
        return None if message_id is None else self._draft_of(message_id)

    def draft_id(self, message_id: str) -> str:
        """The draft id (what drafts.create answers) of the draft whose message thread() lists as `message_id`.

        A draft found again after a crash is known by its message id only; the record wants the same id a fresh
        draft gets. drafts.list, 5 units per page of 500 drafts.
        """
        return str(self._retrying(partial(self._draft_of, message_id), "drafts.list"))

    def _draft_of(self, message_id: str) -> str:
        """draft_id() as raw calls (the caller owns the retries)."""
        page: str | None = None
        while True:
            self._spend("drafts.list")
            resp = self._users.drafts().list(userId="me", maxResults=500, pageToken=page).execute(num_retries=0)
            for draft in resp.get("drafts", []):
                if (draft.get("message") or {}).get("id") == message_id:
                    return str(draft["id"])
            page = resp.get("nextPageToken")
            if not page:
                # In the thread but not (yet) in drafts.list: its message id still names it, and it is never
                # worth a second draft.
                log.warning("Gmail drafts.list does not list the draft with message %s", message_id)
                return message_id

    # ------------------------------------------------------------------ answers (bot.followup.tracking)

    def thread_changes(self, cursor: str | None) -> tuple[set[str] | None, str]:
        """Threads that got a message (drafts aside) since `cursor`: history.list, 2 units per page of 500.

        Without a usable cursor (none yet, or expired: 404) the set is None, meaning "read every thread you
        watch", and the new cursor is the mailbox's current historyId (users.getProfile, 1 unit).
        """
        if cursor:
            try:
                return self._threads_added_since(cursor)
            except GmailError as exc:
                if exc.status != 404:
                    raise
        profile = self._call(lambda: self._users.getProfile(userId="me"), "users.getProfile")
        return None, str(profile["historyId"])

    def _threads_added_since(self, cursor: str) -> tuple[set[str], str]:
        found: set[str] = set()
        page: str | None = None
        latest = cursor
        while True:
            resp = self._call(partial(self._users.history().list, userId="me", startHistoryId=cursor,
                                      historyTypes=["messageAdded"], maxResults=500, pageToken=page), "history.list")
            latest = str(resp.get("historyId") or latest)
            added = [a.get("message") or {} for rec in resp.get("history", []) for a in rec.get("messagesAdded", [])]
            found.update(str(m["threadId"]) for m in added
                         if m.get("threadId") and "DRAFT" not in (m.get("labelIds") or []))
            page = resp.get("nextPageToken")
            if not page:
                return found, latest

    def threads(self, thread_ids: Sequence[str]) -> dict[str, list[ThreadMessage] | Exception]:
        """thread() for many threads: threads.get (format=metadata, 10 units each) batched 50 to a request.

        A thread that no longer exists has no messages; any other failure is that thread's entry.
        """
        found: dict[str, list[ThreadMessage] | Exception] = {}
        for start in range(0, len(thread_ids), 50):
            chunk = list(thread_ids[start:start + 50])
            try:
                answers = self._batch([partial(self._thread_request, tid) for tid in chunk], "threads.get")
            except MailError as exc:  # the batch endpoint itself failed: every thread of it waits
                answers = [exc] * len(chunk)
            for tid, answer in zip(chunk, answers, strict=True):
                if isinstance(answer, GmailError) and answer.status == 404:
                    found[tid] = []
                else:
                    found[tid] = answer if isinstance(answer, Exception) else self._parse_thread(answer)
        return found


def _chunks(refs: Sequence[MessageRef], size: int) -> Iterator[list[MessageRef]]:
    """Runs of at most `size` refs, none naming a message twice (what a run's lookups settle is handed out once)."""
    chunk: list[MessageRef] = []
    for ref in refs:
        if len(chunk) == size or any(r.provider_id == ref.provider_id for r in chunk):
            yield chunk
            chunk = []
        chunk.append(ref)
    if chunk:
        yield chunk


def _message_gone(exc: MailError) -> MailError:
    """A 404 about a message, once its labels are known to exist, means the message is gone."""
    return MessageGone(DELETED) if isinstance(exc, GmailError) and exc.status == 404 else exc


def _stored_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:  # not written by this module: as if absent
        return None


def _source_of(raw: bytes) -> str | None:
    value = BytesHeaderParser(policy=default_policy).parsebytes(raw).get(SOURCE_HEADER)
    return (str(value).strip() or None) if value is not None else None
