"""A stateful fake of the Gmail API v1 (and Google's OAuth token endpoint) on a local FakeServer.

Enough of Gmail for the real google-api-python-client and google-auth to drive it: messages with labels and
threads, history with increasing ids (expire_history() makes old ids answer 404), labels, drafts, threads.get,
messages.list with a subset of the search syntax, modify/batchModify/trash, the multipart batch endpoint, and
the token endpoint (refresh-token, authorization-code and service-account grants).

As strict as Gmail where the bot could otherwise get away with something:
  - History records hold only each message's id and threadId (as the API reference says they typically do),
    never its labels; `labelId` filters on the labels the message had at the time of the change.
  - A message deleted for good (delete_message) answers 404 to messages.get and messages.modify, alone or as a
    batch item; history reports it as messageDeleted. A person can move mail to Trash or Spam (trash_message,
    mark_spam) at any moment, e.g. between history.list and the fetch (after()).
  - Quota: 15,000 units per user per minute (`user_limit_per_minute`; None switches it off) over a sliding
    60-second window of the fake's clock. A call that would pass it is refused, without effect or cost, with
    429 userRateLimitExceeded and Gmail's flood-control message "User-rate limit exceeded.  Retry after
    <RFC 3339 time>" (the moment the window has room again). With `lockout_minutes` set, passing the limit
    locks the user out for that long instead, and every call until then is refused with the same message.
  - userId is "me" or the mailbox's own address; any other answers 403 "Delegation denied", as Gmail does for
    a mailbox the credentials do not own. Empty lists are left out of list answers (no "drafts": []). A list
    call asking for more than the documented maximum of 500 results (maxResults) is refused with 400.
  - Search: `label:` matches a label's name lower-cased with each "/" and each space written as "-" (Gmail's own
    search-box form), or the quoted name; never a label id, and runs of separators are not merged.
    `after:`/`before:` take epoch seconds or YYYY/MM/DD (UTC), `newer_than:` Nd.
    `larger:`/`smaller:` compare the raw message's length (as sizeEstimate gives it) in bytes, K or M.
  - drafts.create with a threadId joins that thread only when the draft's References/In-Reply-To name a message
    of the thread AND its Subject, decoded, matches a thread message's Subject once leading reply prefixes
    (Re:, RE:, AW:, Fwd:, WG:, SV:) are removed: exactly, so doubled spaces and invisible characters count.
    Otherwise the draft starts a thread of its own.

Semantics chosen where Gmail's are undocumented: inbound mail joins a thread it references or that references
it; messages.list and threads.get order by internal date; messages.trash adds TRASH and removes INBOX.

For tests and benchmarks:
  fake.add_message(...)          a new inbound message at runtime; returns its id and records history
  fake.mark_read / move_to_inbox / trash_message / mark_spam / delete_message / delete_label / create_label
                                 what a person does in the mailbox
  fake.after("history.list", fn) fn() runs right after the next such call took effect (a person acting then)
  fake.fail_after("drafts.create", gerror(503))   the call takes effect, then the client gets an error
  fake.calls / fake.quota / fake.units   API methods called (batch items one by one), units per method, total
  fake.call_log                  (monotonic time, method, message or thread id(s), units) per API call,
                                 for per-message quota attribution and units-per-minute windows
  fake.reads                     (message id, format) of each messages.get answered: what was downloaded
  fake.fail_every(3, gerror(429, "rateLimitExceeded", retry_after=1))
                                 a storm: every 3rd API call (batch items included) is refused with that
                                 response, without effect and without spending units; calm() ends it
  fake.refused                   calls refused by a storm or by the quota, per method
  fake.sent()                    send calls attempted (drafts.send, messages.send): always [] for the bot
  fake.latency = 0.05            seconds added to every HTTP request (a batch is one request)
  fake.server.fail(pattern, gerror(429, "rateLimitExceeded", retry_after=2), times=3)
                                 faults; they also apply to the items inside a batch, matched on the item path
  fake.revoke_refresh_token(t)   the token endpoint answers invalid_grant for it from now on
  fake.config(dir) / fake.credentials() / fake.write_token_file(path)
                                 a GmailConfig with every endpoint here, and credentials it accepts
"""

from __future__ import annotations

import base64
import email
import itertools
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.oauth2.credentials import Credentials

from bot.config import GmailConfig
from tests.fakes import Clock
from tests.httpfake import FakeServer, Request, Response

# The fake's "now" unless a test gives it a clock: the day after the contract suite's mail (22-26 Nov 2026).
FAKE_NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def wall_clock() -> datetime:
    """For a fake serving a bot process, which reads the real clock (shifted as a whole under libfaketime)."""
    return datetime.now(UTC)

API = r"/gmail/v1/users/(?P<user>[^/]+)"

# Quota units per method (https://developers.google.com/gmail/api/reference/quota).
COSTS: dict[str, int] = {
    "users.getProfile": 1,
    "messages.list": 5,
    "messages.get": 5,
    "messages.modify": 5,
    "messages.batchModify": 50,
    "messages.trash": 5,
    "history.list": 2,
    "labels.list": 1,
    "labels.get": 1,
    "labels.create": 5,
    "labels.delete": 5,
    "drafts.create": 10,
    "drafts.list": 5,
    "drafts.send": 100,
    "messages.send": 100,
    "threads.get": 10,
}

SYSTEM_LABELS = ("INBOX", "UNREAD", "STARRED", "IMPORTANT", "SENT", "DRAFT", "SPAM", "TRASH",
                 "CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS", "CATEGORY_UPDATES", "CATEGORY_FORUMS")
# System labels a client may add or remove itself (SENT and DRAFT are set by Gmail only).
_APPLICABLE = set(SYSTEM_LABELS) - {"SENT", "DRAFT"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def gerror(status: int, reason: str = "", message: str = "", retry_after: float | None = None) -> Response:
    """A Google-style JSON error response (also usable with FakeServer.fail)."""
    body = {"error": {"code": status, "message": message or reason or "error",
                      "errors": [{"message": message or reason or "error", "domain": "global", "reason": reason}],
                      "status": _STATUS.get(status, "UNKNOWN")}}
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Response(status, body, headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def label_search_key(name: str) -> str:
    """A label name as Gmail's search matches it: lower-cased, each "/" and each space written as "-"."""
    return re.sub(r"[/\s]", "-", name.strip().lower())


def flood_control(until: datetime) -> Response:
    """Gmail's answer to a user over its quota: 429 with the moment to retry in the message, not in a header."""
    at = until.astimezone(UTC)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    return gerror(429, "userRateLimitExceeded", f"User-rate limit exceeded.  Retry after {stamp}")


@dataclass
class FakeMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: set[str]
    internal_date: int  # ms since the epoch
    history_id: int
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class FakeGmail:
    """Start with `with FakeGmail() as gm:`; point the client at gm.api_endpoint / gm.batch_uri / gm.token_uri."""

    def __init__(self, token: str = "test-access-token", refresh_token: str = "test-refresh-token",
                 address: str = "sales@acme-pumps.example", clock: Callable[[], datetime] | None = None) -> None:
        self.server = FakeServer()
        # Gmail's "now": what newer_than: compares with and what new mail is dated. Tests share one settable clock;
        # a process test whose bot reads the wall clock passes a wall clock here (wall_clock).
        self.clock: Callable[[], datetime] = clock or Clock(FAKE_NOW)
        self.address = address
        self.lock = self.server.lock  # one lock for the fake's state, whether a handler or a test touches it
        self.token, self.refresh_token = token, refresh_token
        self.messages: dict[str, FakeMessage] = {}
        self.labels: dict[str, dict[str, Any]] = {
            name: {"id": name, "name": name, "type": "system"} for name in SYSTEM_LABELS}
        self.drafts: dict[str, str] = {}  # draft id -> message id
        self._thread_by_msgid: dict[str, str] = {}  # Message-ID header -> thread id
        self._thread_by_ref: dict[str, str] = {}  # a Message-ID some message references -> that message's thread
        # (id, type, record, labels the message had at the time: what history.list's labelId filters on)
        self.history: list[tuple[int, str, dict[str, Any], frozenset[str]]] = []
        self.history_floor = 0  # history ids below this answer 404
        self.calls: list[str] = []
        self.quota: Counter[str] = Counter()
        self.access_tokens: set[str] = {token} if token else set()
        self.refresh_tokens: set[str] = {refresh_token} if refresh_token else set()
        self.token_requests: list[dict[str, str]] = []
        self.require_auth = True
        self.label_search = True  # False: `label:` in a query matches nothing, as for a name search cannot parse
        self.after_faults: dict[str, list[tuple[Response, list[int]]]] = {}
        self.hooks: dict[str, list[Callable[[], None]]] = {}  # method -> what happens right after its next call
        self.user_limit_per_minute: int | None = 15_000  # Gmail's per-user quota rate; None: unlimited
        self.lockout_minutes = 0.0  # > 0: passing the limit locks the user out this long (Gmail's flood control)
        self.locked_until: datetime | None = None
        self._window: deque[tuple[datetime, int]] = deque()  # (when, units) of the calls of the last minute
        self._window_units = 0
        self.call_log: list[tuple[float, str, str, int]] = []
        self.reads: list[tuple[str, str]] = []  # (message id, format) per messages.get answered
        self.refused: Counter[str] = Counter()  # calls a storm refused, per method
        self._storm: tuple[int, Response, re.Pattern[str]] | None = None
        self._storm_count = 0
        self._ids = itertools.count(0x18F0000000000001)
        self._history_ids = itertools.count(5000, 7)  # increasing, not contiguous, like Gmail's
        self._label_ids = itertools.count(1)
        self._draft_ids = itertools.count(1)
        self._token_ids = itertools.count(1)
        self._clock_ms = self._now_ms() - 3_600_000
        self._current_history = next(self._history_ids)
        self._routes()

    # ------------------------------------------------------------------ lifecycle and knobs

    def __enter__(self) -> FakeGmail:
        # Two tweaks FakeServer does not offer as options: TCP_NODELAY, so a response written as headers then
        # body does not stall ~40 ms on a delayed ACK (every request did), and a short shutdown poll (0.5 s).
        httpd = self.server._httpd
        httpd.RequestHandlerClass.disable_nagle_algorithm = True  # the handler class is per server instance
        self.server._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                               daemon=True)
        self.server._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()

    @property
    def api_endpoint(self) -> str:
        return self.server.url + "/"

    @property
    def batch_uri(self) -> str:
        return self.server.url + "/batch/gmail/v1"

    @property
    def token_uri(self) -> str:
        return self.server.url + "/token"

    @property
    def latency(self) -> float:
        return self.server.delay_seconds

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.server.delay_seconds = seconds

    @property
    def units(self) -> int:
        """Quota units spent so far (batch items counted individually)."""
        return sum(self.quota.values())

    def reset_counters(self) -> None:
        with self.lock:
            self.calls.clear()
            self.quota.clear()
            self.call_log.clear()
            self.reads.clear()
            self.refused.clear()

    def credentials(self) -> Credentials:
        """OAuth credentials holding an access token this fake accepts (no refresh token: never refreshed)."""
        return Credentials(token=self.token)

    def write_token_file(self, path: Path) -> Path:
        """An authorized-user token file as `run.py auth gmail` stores it; refreshing it works against this fake."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"refresh_token": self.refresh_token, "client_id": "fake.apps.googleusercontent.com",
                                    "client_secret": "fake-secret", "token_uri": "https://oauth2.googleapis.com/token",
                                    "scopes": ["https://www.googleapis.com/auth/gmail.modify"]}))
        path.chmod(0o600)
        return path

    def config(self, state_dir: Path, **overrides: Any) -> GmailConfig:
        """A GmailConfig pointing every endpoint at this fake."""
        values: dict[str, Any] = {
            "auth": "oauth", "token_file": state_dir / "gmail-token.json", "client_secrets_file": None,
            "service_account_file": None, "subject": "", "api_endpoint": self.api_endpoint,
            "batch_uri": self.batch_uri, "token_uri": self.token_uri, "lookback_days": 7, "batch_size": 50,
            "timeout_seconds": 10.0}
        values.update(overrides)
        return GmailConfig(**values)

    # ------------------------------------------------------------------ state helpers for tests

    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def _tick(self) -> int:
        """The internal date of the next message: a second after the last one, and never behind the clock."""
        self._clock_ms = max(self._clock_ms + 1000, self._now_ms() - 3_600_000)
        return self._clock_ms

    def _next_history(self) -> int:
        self._current_history = next(self._history_ids)
        return self._current_history

    def _record(self, kind: str, msg: FakeMessage, labels: list[str] | None = None) -> None:
        """One history record: the message by id and threadId only; labelId filters on `then`."""
        hid = self._next_history()
        msg.history_id = hid
        ref = {"id": msg.id, "threadId": msg.thread_id}
        record: dict[str, Any] = {"id": str(hid), "messages": [dict(ref)]}
        key = {"messageAdded": "messagesAdded", "messageDeleted": "messagesDeleted", "labelAdded": "labelsAdded",
               "labelRemoved": "labelsRemoved"}[kind]
        entry: dict[str, Any] = {"message": ref}
        if labels is not None:
            entry["labelIds"] = labels
        record[key] = [entry]
        then = frozenset(msg.labels) | frozenset(labels or ())  # a removal is a change of the label removed
        self.history.append((hid, kind, record, then))

    def add_message(self, raw: bytes | None = None, *, sender: str = "Jane Buyer <jane@customer.example>",
                    subject: str = "Pump quote", body: str = "Hello, please send a quote.",
                    labels: tuple[str, ...] = ("INBOX", "UNREAD"), thread_id: str | None = None,
                    age_days: float = 0.0, headers: dict[str, str] | None = None,
                    internal_date: datetime | None = None) -> str:
        """Deliver a message (as it would arrive from outside) and record it in the history; returns its id.

        The internal date is "now" (a fake clock that ticks one second per message) minus age_days, or
        internal_date when given (as messages.import with internalDateSource=dateHeader would set it).
        """
        with self.lock:
            date_ms = self._tick() - int(age_days * 86_400_000)
            if internal_date is not None:
                date_ms = int(internal_date.timestamp() * 1000)
                self._clock_ms = max(self._clock_ms, date_ms)  # what is created later is never older
            if raw is None:
                em = EmailMessage()
                em["From"] = sender
                em["To"] = self.address
                em["Subject"] = subject
                em["Date"] = format_datetime(_utc(date_ms))
                em["Message-ID"] = make_msgid(domain="customer.example")
                for k, v in (headers or {}).items():
                    em[k] = v
                em.set_content(body)
                raw = em.as_bytes()
            msg = self._store(raw, set(labels), thread_id, date_ms)
            self._index(msg)
            self._record("messageAdded", msg)
            return msg.id

    def _store(self, raw: bytes, labels: set[str], thread_id: str | None, date_ms: int,
               join: bool = True) -> FakeMessage:
        """Keep a message; without a thread_id it joins the thread it references (join=False: a thread of its own)."""
        mid = f"{next(self._ids):016x}"
        headers = [(k, str(v)) for k, v in BytesHeaderParser(policy=compat32).parsebytes(raw).items()]
        msg = FakeMessage(mid, "", raw, labels, date_ms, 0, headers)
        msg.thread_id = thread_id or (self._thread_of(msg) if join else None) or mid
        self.messages[mid] = msg
        return msg

    def _thread_of(self, msg: FakeMessage) -> str | None:
        """The thread an inbound message joins: one whose messages it references, or that reference it."""
        for ref in sorted(_references(msg)):
            if ref in self._thread_by_msgid:
                return self._thread_by_msgid[ref]
        return self._thread_by_ref.get(msg.header("Message-ID") or "")

    def _index(self, msg: FakeMessage) -> None:
        if msg.header("Message-ID"):
            self._thread_by_msgid.setdefault(str(msg.header("Message-ID")), msg.thread_id)
        for ref in _references(msg):
            self._thread_by_ref.setdefault(ref, msg.thread_id)

    def delete_label(self, name: str) -> None:
        """A person deletes a user label: it disappears from every message."""
        with self.lock:
            lid = self.label_id(name)
            if lid is None:
                raise KeyError(name)
            del self.labels[lid]
            for msg in self.messages.values():
                msg.labels.discard(lid)

    def label_id(self, name: str) -> str | None:
        return next((lab["id"] for lab in self.labels.values() if lab["name"] == name), None)

    def label_names(self, message_id: str) -> set[str]:
        return {self.labels[lid]["name"] for lid in self.messages[message_id].labels if lid in self.labels}

    def mark_read(self, message_id: str) -> None:
        """A person opens the message first."""
        with self.lock:
            msg = self.messages[message_id]
            msg.labels.discard("UNREAD")
            self._record("labelRemoved", msg, ["UNREAD"])

    def fail_after(self, method: str, response: Response, times: int = 1) -> None:
        """The next `times` calls of `method` ("drafts.create") take effect, then answer `response` anyway:
        the server did the work but the client never heard back."""
        with self.lock:
            self.after_faults.setdefault(method, []).append((response, [times]))

    def fail_every(self, every: int, response: Response, methods: str = ".") -> None:
        """From now on every `every`-th API call whose method name matches `methods` answers `response`."""
        with self.lock:
            self._storm, self._storm_count = (max(1, every), response, re.compile(methods)), 0

    def calm(self) -> None:
        with self.lock:
            self._storm = None

    def sent(self) -> list[str]:
        """Send calls that reached the fake (refused or not): the bot must never make one."""
        return [r.path for r in self.server.requests(r"/send$")] + [m for m in self.calls if m.endswith(".send")]

    def create_label(self, name: str) -> str:
        """Another client (or a person) creates a user label."""
        with self.lock:
            return str(self._labels_create(Request("POST", "", {}, {}, json.dumps({"name": name}).encode())).body["id"])

    def move_to_inbox(self, message_id: str) -> None:
        """A person moves a message back into the inbox (a label change: history reports no messageAdded)."""
        with self.lock:
            self._change(self.messages[message_id], ["INBOX"], ["TRASH", "SPAM"])

    def trash_message(self, message_id: str) -> None:
        """A person deletes a message in Gmail: it goes to the Trash (recoverable for 30 days)."""
        with self.lock:
            self._change(self.messages[message_id], ["TRASH"], ["INBOX"])

    def mark_spam(self, message_id: str) -> None:
        """A person reports a message as spam."""
        with self.lock:
            self._change(self.messages[message_id], ["SPAM"], ["INBOX"])

    def delete_message(self, message_id: str) -> None:
        """The message is deleted for good (emptied from the Trash, or by another client): 404 from now on."""
        with self.lock:
            msg = self.messages.pop(message_id)
            self._record("messageDeleted", msg)
            for did in [d for d, mid in self.drafts.items() if mid == message_id]:
                del self.drafts[did]

    def after(self, method: str, action: Callable[[], None]) -> None:
        """action() runs once, right after the next call of `method` ("history.list") has taken effect."""
        with self.lock:
            self.hooks.setdefault(method, []).append(action)

    def expire_history(self) -> None:
        """Every history id handed out so far becomes invalid (404), as after a long outage."""
        with self.lock:
            self.history_floor = self._next_history()

    def thread_messages(self, thread_id: str) -> list[FakeMessage]:
        return sorted((m for m in self.messages.values() if m.thread_id == thread_id), key=lambda m: m.internal_date)

    def revoke_refresh_token(self, token: str) -> None:
        with self.lock:
            self.refresh_tokens.discard(token)

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    # ------------------------------------------------------------------ routing

    def _routes(self) -> None:
        api = [
            ("GET", "/profile", "users.getProfile", self._profile),
            ("GET", "/messages", "messages.list", self._messages_list),
            ("POST", "/messages/batchModify", "messages.batchModify", self._batch_modify),
            ("GET", r"/messages/(?P<id>[^/]+)", "messages.get", self._messages_get),
            ("POST", r"/messages/(?P<id>[^/]+)/modify", "messages.modify", self._modify),
            ("POST", r"/messages/(?P<id>[^/]+)/trash", "messages.trash", self._trash),
            ("POST", "/messages/send", "messages.send", self._forbidden),
            ("GET", "/history", "history.list", self._history_list),
            ("GET", "/labels", "labels.list", self._labels_list),
            ("POST", "/labels", "labels.create", self._labels_create),
            ("GET", r"/labels/(?P<id>[^/]+)", "labels.get", self._labels_get),
            ("DELETE", r"/labels/(?P<id>[^/]+)", "labels.delete", self._labels_delete),
            ("GET", "/drafts", "drafts.list", self._drafts_list),
            ("POST", "/drafts", "drafts.create", self._drafts_create),
            ("POST", "/drafts/send", "drafts.send", self._forbidden),
            ("GET", r"/threads/(?P<id>[^/]+)", "threads.get", self._threads_get),
        ]
        for method, path, name, handler in api:
            self.server.route(method, API + path, self._api(name, handler))
        self.server.route("POST", r"/batch/gmail/v1", self._batch)
        self.server.route("POST", r"/token", self._token)

    def _api(self, name: str, handler: Any) -> Any:
        def wrapped(req: Request) -> Response:
            with self.lock:
                if self.require_auth and not self._authorized(req):
                    return gerror(401, "authError", "Request had invalid authentication credentials.")
                user = req.match.group("user") if req.match else "me"
                if user != "me" and user.lower() != self.address.lower():
                    return gerror(403, "forbidden", f"Delegation denied for {self.address}")
                if int(req.arg("maxResults") or 0) > 500:  # every list method's documented maximum
                    return gerror(400, "invalidArgument", "maxResults must be at most 500")
                refusal = self._over_quota(COSTS.get(name, 5))
                if refusal is not None:
                    self.refused[name] += 1
                    return refusal
                if self._storm is not None and self._storm[2].search(name):
                    self._storm_count += 1
                    if self._storm_count % self._storm[0] == 0:
                        self.refused[name] += 1
                        return self._storm[1]
                self.calls.append(name)
                self.quota[name] += COSTS.get(name, 5)
                self.call_log.append((time.monotonic(), name, _target(name, req), COSTS.get(name, 5)))
                self._window.append((self.clock(), COSTS.get(name, 5)))
                self._window_units += COSTS.get(name, 5)
                resp = handler(req)
                for action in self.hooks.pop(name, []):
                    action()
                for fault, left in self.after_faults.get(name, []):
                    if left[0] > 0:
                        left[0] -= 1
                        return fault
                return resp
        return wrapped

    def _over_quota(self, units: int) -> Response | None:
        """Flood control: the refusal for a call of `units` that the user's rate does not allow now, else None."""
        now = self.clock()
        if self.locked_until is not None and now < self.locked_until:
            return flood_control(self.locked_until)
        while self._window and self._window[0][0] <= now - timedelta(minutes=1):
            self._window_units -= self._window.popleft()[1]
        limit = self.user_limit_per_minute
        if limit is None or self._window_units + units <= limit:
            return None
        if self.lockout_minutes > 0:
            self.locked_until = now + timedelta(minutes=self.lockout_minutes)
            return flood_control(self.locked_until)
        excess, until = self._window_units + units - limit, now
        for when, spent in self._window:  # room comes back as the oldest calls leave the window
            excess -= spent
            until = when + timedelta(minutes=1)
            if excess <= 0:
                break
        return flood_control(until)

    def _authorized(self, req: Request) -> bool:
        auth = req.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.access_tokens

    def _forbidden(self, req: Request) -> Response:
        return gerror(403, "forbidden", "the fake refuses to send mail")

    # ------------------------------------------------------------------ rendering

    def _render(self, msg: FakeMessage, fmt: str, wanted: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": msg.id, "threadId": msg.thread_id, "labelIds": sorted(msg.labels),
                               "historyId": str(msg.history_id), "internalDate": str(msg.internal_date),
                               "sizeEstimate": len(msg.raw), "snippet": ""}
        if fmt == "raw":
            out["raw"] = b64url(msg.raw)
        elif fmt in ("metadata", "full"):
            names = {w.lower() for w in wanted or []}
            headers = [{"name": k, "value": v} for k, v in msg.headers
                       if fmt == "full" or not names or k.lower() in names]
            out["payload"] = {"mimeType": "text/plain"}
            if headers:  # like every Google JSON API, Gmail leaves an empty list out rather than sending []
                out["payload"]["headers"] = headers
        elif fmt != "minimal":
            raise ValueError(fmt)
        return out

    def _msg(self, req: Request) -> FakeMessage | None:
        return self.messages.get(req.match.group("id")) if req.match else None

    # ------------------------------------------------------------------ users / messages

    def _profile(self, req: Request) -> Response:
        return Response(200, {"emailAddress": self.address, "messagesTotal": len(self.messages),
                              "threadsTotal": len({m.thread_id for m in self.messages.values()}),
                              "historyId": str(self._current_history)})

    def _messages_list(self, req: Request) -> Response:
        try:
            match = self._query(req.arg("q", "") or "")
        except ValueError as exc:
            return gerror(400, "invalidArgument", str(exc))
        label_ids = req.query.get("labelIds", [])
        hidden = set() if req.arg("includeSpamTrash") == "true" else {"SPAM", "TRASH"}
        found = [m for m in sorted(self.messages.values(), key=lambda m: m.internal_date, reverse=True)
                 if match(m) and set(label_ids) <= m.labels and not (m.labels & hidden)]
        start, size = int(req.arg("pageToken") or 0), min(int(req.arg("maxResults") or 100), 500)
        body: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if found[start:start + size]:
            body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in found[start:start + size]]
        if start + size < len(found):
            body["nextPageToken"] = str(start + size)
        return Response(200, body)

    def _query(self, q: str) -> Any:
        """The search operators the bot uses: in:, label:, newer_than:Nd, after:, before:, is:, rfc822msgid:,
        larger:/smaller: (bytes, or with K or M; the size is sizeEstimate's), each negatable."""
        tests = []
        for tok in re.finditer(r'(-?)([a-z_0-9]+):("[^"]*"|\S+)|(\S+)', q):
            if tok.group(4):
                raise ValueError(f"the fake does not support free-text search: {tok.group(4)!r}")
            neg, op, value = tok.group(1) == "-", tok.group(2), tok.group(3).strip('"')
            tests.append((neg, self._operator(op, value)))
        return lambda m: all(test(m) != neg for neg, test in tests)

    def _operator(self, op: str, value: str) -> Any:
        if op == "in" and value.lower() in ("inbox", "trash", "spam", "sent", "drafts", "draft"):
            system = {"drafts": "DRAFT"}.get(value.lower(), value.upper())
            return lambda m: system in m.labels
        if op == "label":
            if not self.label_search:
                return lambda m: False
            key = label_search_key(value)
            return lambda m: any(label_search_key(self.labels[lid]["name"]) == key
                                 for lid in m.labels if lid in self.labels)
        if op in ("after", "before"):
            edge = _search_time(value)
            if op == "after":
                return lambda m: m.internal_date >= edge
            return lambda m: m.internal_date < edge
        if op == "is" and value.lower() in ("unread", "starred", "important"):
            return lambda m: value.upper() in m.labels
        if op == "is" and value.lower() == "read":
            return lambda m: "UNREAD" not in m.labels
        if op == "newer_than" and re.fullmatch(r"\d+d", value):
            cutoff = self._now_ms() - int(value[:-1]) * 86_400_000
            return lambda m: m.internal_date >= cutoff
        if op in ("larger", "smaller") and (size := re.fullmatch(r"(\d+)([km]?)", value.lower())):
            edge = int(size.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[size.group(2)]
            if op == "larger":
                return lambda m: len(m.raw) > edge
            return lambda m: len(m.raw) < edge
        if op == "rfc822msgid":
            return lambda m: (m.header("Message-ID") or "").strip("<>") == value.strip("<>")
        raise ValueError(f"the fake does not support the search operator {op}:{value}")

    def _messages_get(self, req: Request) -> Response:
        msg = self._msg(req)
        if msg is None:
            return gerror(404, "notFound", "Requested entity was not found.")
        fmt = req.arg("format", "full") or "full"
        self.reads.append((msg.id, fmt))
        return Response(200, self._render(msg, fmt, req.query.get("metadataHeaders")))

    def _check_labels(self, add: list[str], remove: list[str]) -> Response | None:
        for lid in add + remove:
            if lid not in self.labels or (lid in add and self.labels[lid]["type"] == "system"
                                          and lid not in _APPLICABLE):
                return gerror(400, "invalidArgument", f"Invalid label: {lid}")
        return None

    def _change(self, msg: FakeMessage, add: list[str], remove: list[str]) -> None:
        added, removed = [x for x in add if x not in msg.labels], [x for x in remove if x in msg.labels]
        msg.labels |= set(added)
        msg.labels -= set(removed)
        if added:
            self._record("labelAdded", msg, added)
        if removed:
            self._record("labelRemoved", msg, removed)

    def _modify(self, req: Request) -> Response:
        msg, body = self._msg(req), req.json() or {}
        if msg is None:
            return gerror(404, "notFound", "Requested entity was not found.")
        add, remove = body.get("addLabelIds", []), body.get("removeLabelIds", [])
        error = self._check_labels(add, remove)
        if error:
            return error
        self._change(msg, add, remove)
        return Response(200, self._render(msg, "minimal"))

    def _batch_modify(self, req: Request) -> Response:
        body = req.json() or {}
        ids, add, remove = body.get("ids", []), body.get("addLabelIds", []), body.get("removeLabelIds", [])
        if not ids or len(ids) > 1000:
            return gerror(400, "invalidArgument", "ids must hold 1 to 1000 message ids")
        error = self._check_labels(add, remove)
        if error:
            return error
        for mid in ids:
            if mid in self.messages:
                self._change(self.messages[mid], add, remove)
        return Response(204, b"")

    def _trash(self, req: Request) -> Response:
        msg = self._msg(req)
        if msg is None:
            return gerror(404, "notFound", "Requested entity was not found.")
        self._change(msg, ["TRASH"], ["INBOX"])
        return Response(200, self._render(msg, "minimal"))

    # ------------------------------------------------------------------ history

    def _history_list(self, req: Request) -> Response:
        start = int(req.arg("startHistoryId") or 0)
        if not start:
            return gerror(400, "invalidArgument", "startHistoryId is required")
        if start < self.history_floor:
            return gerror(404, "notFound", "Requested entity was not found.")
        kinds = set(req.query.get("historyTypes")
                    or ["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"])
        label = req.arg("labelId")
        records = [json.loads(json.dumps(record)) for hid, kind, record, then in self.history
                   if hid > start and kind in kinds and (not label or label in then)]
        offset, size = int(req.arg("pageToken") or 0), min(int(req.arg("maxResults") or 100), 500)
        body: dict[str, Any] = {"historyId": str(self._current_history)}
        if records[offset:offset + size]:
            body["history"] = records[offset:offset + size]
        if offset + size < len(records):
            body["nextPageToken"] = str(offset + size)
        return Response(200, body)

    # ------------------------------------------------------------------ labels

    def _labels_list(self, req: Request) -> Response:
        return Response(200, {"labels": [dict(lab) for lab in self.labels.values()]})

    def _labels_get(self, req: Request) -> Response:
        lab = self.labels.get(req.match.group("id")) if req.match else None
        return Response(200, dict(lab)) if lab else gerror(404, "notFound", "Requested entity was not found.")

    def _labels_create(self, req: Request) -> Response:
        body = req.json() or {}
        name = str(body.get("name", "")).strip()
        if not name:
            return gerror(400, "invalidArgument", "Invalid label name")
        if any(lab["name"].lower() == name.lower() for lab in self.labels.values()):
            return gerror(409, "duplicate", "Label name exists or conflicts")
        lid = f"Label_{next(self._label_ids)}"
        self.labels[lid] = {"id": lid, "name": name, "type": "user",
                            "messageListVisibility": body.get("messageListVisibility", "show"),
                            "labelListVisibility": body.get("labelListVisibility", "labelShow")}
        return Response(200, dict(self.labels[lid]))

    def _labels_delete(self, req: Request) -> Response:
        lab = self.labels.get(req.match.group("id")) if req.match else None
        if lab is None or lab["type"] == "system":
            return gerror(404, "notFound", "Requested entity was not found.")
        self.delete_label(lab["name"])
        return Response(204, b"")

    # ------------------------------------------------------------------ drafts and threads

    def _drafts_create(self, req: Request) -> Response:
        message = (req.json() or {}).get("message") or {}
        if not message.get("raw"):
            return gerror(400, "invalidArgument", "Missing draft message")
        msg = self._store(unb64url(message["raw"]), {"DRAFT"}, None, self._tick(), join=False)
        msg.thread_id = self._draft_thread(msg, message.get("threadId")) or msg.id
        self._index(msg)
        self._record("messageAdded", msg)
        did = f"r-{next(self._draft_ids)}"
        self.drafts[did] = msg.id
        return Response(200, {"id": did, "message": self._render(msg, "minimal")})

    def _draft_thread(self, msg: FakeMessage, thread_id: str | None) -> str | None:
        """Gmail threads a draft only with threadId + References/In-Reply-To into the thread + matching Subject."""
        members = [m for m in self.thread_messages(thread_id) if m.id != msg.id] if thread_id else []
        if not members or not thread_id:
            return None
        subject = _base_subject(_subject(msg))
        if _references(msg) & {m.header("Message-ID") for m in members} and any(
                _base_subject(_subject(m)) == subject for m in members):
            return thread_id
        return None

    def _drafts_list(self, req: Request) -> Response:
        items = [{"id": did, "message": {"id": mid, "threadId": self.messages[mid].thread_id}}
                 for did, mid in self.drafts.items() if mid in self.messages]
        start, size = int(req.arg("pageToken") or 0), min(int(req.arg("maxResults") or 100), 500)
        body: dict[str, Any] = {"resultSizeEstimate": len(items)}
        if items[start:start + size]:  # as messages.list: Gmail leaves an empty list out
            body["drafts"] = items[start:start + size]
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return Response(200, body)

    def _threads_get(self, req: Request) -> Response:
        thread_id = req.match.group("id") if req.match else ""
        members = self.thread_messages(thread_id)
        if not members:
            return gerror(404, "notFound", "Requested entity was not found.")
        fmt = req.arg("format", "full") or "full"
        wanted = req.query.get("metadataHeaders")
        return Response(200, {"id": thread_id, "historyId": str(max(m.history_id for m in members)),
                              "messages": [self._render(m, fmt, wanted) for m in members]})

    # ------------------------------------------------------------------ batch endpoint

    def _batch(self, req: Request) -> Response:
        ctype = req.headers.get("content-type", "")
        if not ctype.startswith("multipart/mixed"):
            return gerror(400, "invalidArgument", "batch requests must be multipart/mixed")
        outer = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body)
        parts = outer.get_payload()
        if not isinstance(parts, list) or not 0 < len(parts) <= 100:
            return gerror(400, "invalidArgument", "a batch holds 1 to 100 requests")
        boundary = f"batch_fake_{next(self._token_ids)}"
        out = []
        for part in parts:
            inner = _parse_inner(part.get_payload())
            resp = self.server._fault_for(inner.path) or self.server._route(inner)
            data, headers = resp.encoded()
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            cid = str(part["Content-ID"]).strip()[1:-1]
            out.append(f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{cid}>\r\n\r\n"
                       f"HTTP/1.1 {resp.status} {_phrase(resp.status)}\r\n{head}\r\n{data.decode()}\r\n")
        out.append(f"--{boundary}--\r\n")
        return Response(200, "".join(out), {"Content-Type": f"multipart/mixed; boundary={boundary}"})

    # ------------------------------------------------------------------ OAuth token endpoint

    def _token(self, req: Request) -> Response:
        form = req.form()
        grant = form.get("grant_type", "")
        with self.lock:
            self.token_requests.append({"grant_type": grant, "refresh_token": form.get("refresh_token", ""),
                                        "assertion": form.get("assertion", ""), "code": form.get("code", "")})
            if grant == "refresh_token" and form.get("refresh_token") not in self.refresh_tokens:
                return Response(400, {"error": "invalid_grant", "error_description": "Token has been expired or "
                                                                                     "revoked."})
            if grant not in ("refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer", "authorization_code"):
                return Response(400, {"error": "unsupported_grant_type"})
            token = f"ya29.fake-{next(self._token_ids)}"
            self.access_tokens.add(token)
            body = {"access_token": token, "expires_in": 3600, "token_type": "Bearer",
                    "scope": form.get("scope") or "https://www.googleapis.com/auth/gmail.modify"}
            if grant == "authorization_code":
                body["refresh_token"] = f"1//fake-refresh-{next(self._token_ids)}"
                self.refresh_tokens.add(body["refresh_token"])
            return Response(200, body)


def _target(method: str, req: Request) -> str:
    """The message (messages.*; "id,id,..." for batchModify) or thread (threads.get, drafts.create) a call is
    about; "" for the rest."""
    if method in ("drafts.create", "messages.batchModify"):
        try:
            body = req.json() or {}
        except ValueError:
            return ""
        if method == "messages.batchModify":
            return ",".join(str(i) for i in body.get("ids") or [])
        return str((body.get("message") or {}).get("threadId") or "")
    groups = req.match.groupdict() if req.match else {}
    return str(groups.get("id") or "") if method.startswith(("messages.", "threads.")) else ""


def _parse_inner(payload: Any) -> Request:
    """One application/http part of a batch request -> a Request for the normal routes."""
    text = payload if isinstance(payload, str) else str(payload)
    gap = re.search(r"\r?\n\r?\n", text)
    head, body = (text[:gap.start()], text[gap.end():]) if gap else (text, "")
    lines = head.splitlines()
    method, target, _version = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ":" in ln)}
    parts = urlsplit(target)
    return Request(method, parts.path, parse_qs(parts.query, keep_blank_values=True), headers, body.encode())


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _references(msg: FakeMessage) -> set[str]:
    return set(" ".join(filter(None, [msg.header("In-Reply-To"), msg.header("References")])).split())


def _subject(msg: FakeMessage) -> str:
    """The Subject as Gmail reads it: unfolded, RFC 2047 decoded, nothing else changed."""
    return str(BytesHeaderParser(policy=default_policy).parsebytes(msg.raw).get("Subject") or "")


def _base_subject(subject: str) -> str:
    """The subject without its leading reply/forward prefixes; the rest compared exactly (spaces, invisibles)."""
    return re.sub(r"^\s*((re|fwd?|aw|wg|sv)\s*:\s*)+", "", subject, flags=re.I).strip()


def _search_time(value: str) -> int:
    """after:/before: values: epoch seconds or YYYY/MM/DD (midnight UTC here), as ms since the epoch."""
    if re.fullmatch(r"\d{9,}", value):
        return int(value) * 1000
    try:
        day = datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"the fake does not understand the date {value!r}") from None
    return int(day.timestamp() * 1000)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class MemoryCursors(dict[str, str]):
    """A CursorStore in memory (the real one lives in the ledger database)."""

    def get_cursor(self, key: str) -> str | None:
        return self.get(key)

    def set_cursor(self, key: str, value: str) -> None:
        self[key] = value
