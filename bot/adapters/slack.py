"""Lead pings in Slack: a DM to the assignee, or the fallback channel for people without a Slack account.

Scopes: chat:write, users:read, users:read.email; for the duplicate check on a replay also im:write, im:history
and channels:history (groups:history for a private fallback channel). slack_sdk's retry handlers are switched
off: bot.retry owns retrying, and each post carries the mail's provider id as metadata so a replay can find it.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import SlackConfig
from bot.escape import slack_text
from bot.models import Person
from bot.ports import SinkUnavailable
from bot.retry import call_with_retry, parse_retry_after

log = logging.getLogger(__name__)

EVENT_TYPE = "triage_lead"
HISTORY_WINDOW = 200  # messages searched for an earlier post of the same lead on a replay
# Slack errors that mean our request is wrong: a bug to surface, not an outage to wait out.
_REQUEST_ERRORS = frozenset({"invalid_arguments", "invalid_blocks", "invalid_blocks_format", "msg_too_long",
                             "invalid_metadata_format", "invalid_metadata_schema", "no_text"})
_SERVER_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                            "request_timeout"})
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")
# The heading of each kind of ping (payload "kind"; a new lead when absent).
HEADINGS = {"lead": "New lead", "reminder": "Reminder: this lead has no answer yet",
            "reassigned": "Lead reassigned to you", "taken_over": "Your lead was reassigned",
            "escalation": "Unanswered lead"}


def default_client(cfg: SlackConfig) -> WebClient:
    return WebClient(token=cfg.token, base_url=cfg.base_url, timeout=math.ceil(cfg.timeout_seconds),
                     retry_handlers=[])


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        return status == 429 or status >= 500 or exc.response.get("error") in _SERVER_ERRORS
    return isinstance(exc, (URLError, HTTPException, ConnectionError, TimeoutError))


def _retry_after(exc: BaseException) -> float | None:
    if not isinstance(exc, SlackApiError):
        return None
    headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
    value = headers.get("retry-after")
    return parse_retry_after(value[0] if isinstance(value, list) else value)


class SlackNotifier:
    name = "slack"

    def __init__(self, cfg: SlackConfig, people: dict[str, Person],
                 client_factory: Callable[[SlackConfig], WebClient] = default_client, *,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = 5) -> None:
        self.cfg = cfg
        self.people = {email.lower(): p for email, p in people.items()}
        self._client = client_factory(cfg)
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._user_ids: dict[str, str | None] = {}  # email -> Slack user id (None: no Slack account)

    def notify(self, payload: dict[str, Any], retry: bool) -> str:
        """Post the lead ping; with retry=True, first look for an earlier post of it and keep that one."""
        maybe_landed = retry

        def attempt() -> str:
            nonlocal maybe_landed
            target = self._recipient(payload)
            if target is None:
                return "slack skipped: no Slack user and no fallback channel"
            channel, is_user, status = target
            if maybe_landed and self._already_posted(channel, is_user, str(payload["provider_id"])):
                log.info("slack: the ping for this lead was already delivered (%s)", status)
                return status
            try:
                self._client.chat_postMessage(
                    channel=channel, **compose(payload, for_channel=not is_user), unfurl_links=False,
                    unfurl_media=False,
                    metadata={"event_type": EVENT_TYPE, "event_payload": {
                        "provider_id": payload["provider_id"], "message_id": payload["message_id"]}})
            except Exception as exc:
                # A 429 is refused unposted; a 5xx or a dropped connection may have posted it.
                maybe_landed = maybe_landed or not (isinstance(exc, SlackApiError) and exc.response.status_code == 429)
                raise
            return status

        try:
            return call_with_retry(attempt, is_retryable=_retryable, retry_after=_retry_after,
                                   max_attempts=self._max_attempts, sleep=self._sleep, what="slack")
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in _REQUEST_ERRORS:
                raise
            raise SinkUnavailable(f"Slack: HTTP {exc.response.status_code} {error}") from exc
        except (URLError, HTTPException, ConnectionError, TimeoutError) as exc:
            raise SinkUnavailable(f"Slack: {type(exc).__name__}: {exc}") from exc

    def alert(self, text: str) -> str | None:
        """Tell the team in the fallback channel that the bot needs a person (e.g. lost authorization); returns
        where it went, or None without a fallback channel."""
        if not self.cfg.fallback_channel:
            return None
        message = f":warning: Triage bot: {slack_text(text)}"
        call_with_retry(lambda: self._client.chat_postMessage(channel=self.cfg.fallback_channel, text=message,
                                                              unfurl_links=False, unfurl_media=False),
                        is_retryable=_retryable, retry_after=_retry_after, max_attempts=self._max_attempts,
                        sleep=self._sleep, what="slack alert")
        return f"Slack channel {self.cfg.fallback_channel}"

    # ------------------------------------------------------------ internals

    def _recipient(self, payload: dict[str, Any]) -> tuple[str, bool, str] | None:
        """(channel to post to, whether it is a user, status text), or None when nobody can be reached."""
        if "channel" in payload:  # an escalation goes to the managers' channel, not to a person
            channel = str(payload["channel"] or self.cfg.fallback_channel)
            return (channel, False, f"slack channel {channel}") if channel else None
        email = str(payload.get("assignee_email") or "").lower()
        person = self.people.get(email)
        user = payload.get("slack_id") or (person.slack_id if person else None) or self._lookup(email)
        if user:
            return user, True, f"slack dm {user}"
        if self.cfg.fallback_channel:
            return self.cfg.fallback_channel, False, f"slack channel {self.cfg.fallback_channel}"
        return None

    def _lookup(self, email: str) -> str | None:
        if not email:
            return None
        if email not in self._user_ids:
            try:
                self._user_ids[email] = self._client.users_lookupByEmail(email=email)["user"]["id"]
            except SlackApiError as exc:
                if exc.response.get("error") != "users_not_found":
                    raise
                self._user_ids[email] = None
        return self._user_ids[email]

    def _already_posted(self, channel: str, is_user: bool, provider_id: str) -> bool:
        try:
            if is_user:
                channel = self._client.conversations_open(users=channel)["channel"]["id"]
            history = self._client.conversations_history(channel=channel, limit=HISTORY_WINDOW,
                                                         include_all_metadata=True)
        except SlackApiError as exc:
            if _retryable(exc):
                raise
            # Without the history scopes the check is impossible: a possible second ping beats none.
            log.warning("slack: cannot read %s to check for an earlier ping (%s)", channel,
                        exc.response.get("error"))
            return False
        for message in history.get("messages") or []:
            md = message.get("metadata") or {}
            if md.get("event_type") == EVENT_TYPE and (md.get("event_payload") or {}).get("provider_id") == provider_id:
                return True
        return False


def _link(url: Any, label: str) -> str:
    text = str(url or "")
    if _SAFE_URL.match(text):
        return f"<{slack_text(text)}|{label}>"
    return f"{label}: {slack_text(text)}" if text else ""


def _one_line(value: Any, limit: int) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compose(payload: dict[str, Any], for_channel: bool) -> dict[str, Any]:
    """Fallback text and Block Kit blocks; every value from the mail is escaped."""
    name, addr = _one_line(payload.get("from_name"), 100), _one_line(payload.get("from_addr"), 100)
    sender = slack_text(f"{name} <{addr}>" if name and addr else name or addr) or "–"
    subject = slack_text(_one_line(payload.get("subject"), 250))
    title = HEADINGS.get(str(payload.get("kind") or "lead"), HEADINGS["lead"])
    heading = f"*{title}*"
    if for_channel:  # the name as plain text: the person has no Slack account to mention
        heading += f" for {slack_text(_one_line(payload.get('assignee_name'), 100))}"
    if payload.get("note"):  # what happened: "reminder to ... after 4.0 business hours"
        heading += "\n" + slack_text(_one_line(payload["note"], 300))
    fields = [("From", sender), ("Company", slack_text(_one_line(payload.get("company"), 150)) or "–"),
              ("Subject", subject or "–"), ("Language", slack_text(_one_line(payload.get("language"), 20)) or "–")]
    links = " · ".join(x for x in (_link(payload.get("thread_link"), "Open the thread"),
                                   _link(payload.get("draft_link"), "Open the draft")) if x)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": heading}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}", "verbatim": True}
                                       for k, v in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                     "text": slack_text(_one_line(payload.get("summary"), 500)) or "–"}},
    ]
    if links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
    text = f"{title} from {sender}: {subject}"
    return {"text": text, "blocks": blocks}
