"""Leads upserted into HubSpot CRM (contacts, companies, notes) over its REST API with plain `requests`.

The official client is not used: it would add a large generated package with a second retry layer for the nine
endpoints below, and requests is already installed (google-auth and gspread depend on it).

Properties written (all HubSpot defaults, no custom property needed): email, firstname, lastname, company,
hs_language (preferred language), hubspot_owner_id; on create also lifecyclestage=lead and hs_lead_status=NEW.
An existing contact only gets blanks filled in: what sales edited stays. HubSpot itself records API-made contacts
with the original source "Offline sources"; the lead source ("shared inbox") and the Message-ID go in the note.
Private-app scopes: crm.objects.contacts.read/write, crm.objects.companies.read/write.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from bot.config import HubspotConfig
from bot.ports import SinkUnavailable
from bot.retry import call_with_retry, parse_retry_after

log = logging.getLogger(__name__)

CONTACT_PROPS = ("email", "firstname", "lastname", "company", "hs_language", "hubspot_owner_id")
OPTIONAL_PROPS = ("hs_language", "hubspot_owner_id", "lifecyclestage", "hs_lead_status")  # enum/owner values
NOTE_TO_CONTACT = 202  # HUBSPOT_DEFINED association type id
NOTES_CHECKED = 100  # most recent notes of a contact searched for this message on a replay (one batch read)
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class HubspotError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str]) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.headers = {k.lower(): v for k, v in headers.items()}

    @classmethod
    def of(cls, resp: requests.Response) -> HubspotError:
        try:
            body = resp.json()
            message = f"{body.get('category', '')} {body.get('message', '')}".strip()
        except ValueError:
            message = resp.text[:200]
        return cls(resp.status_code, message, dict(resp.headers))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, HubspotError):
        if exc.status == 429:
            return exc.headers.get("x-hubspot-ratelimit-daily-remaining") != "0"  # a spent day is not worth waiting on
        return exc.status >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def _retry_after(exc: BaseException) -> float | None:
    if not isinstance(exc, HubspotError):
        return None
    h = exc.headers
    if "retry-after" in h:
        return parse_retry_after(h["retry-after"])
    if h.get("x-hubspot-ratelimit-secondly-remaining") == "0":
        return 1.0
    if h.get("x-hubspot-ratelimit-remaining") == "0" and h.get("x-hubspot-ratelimit-interval-milliseconds"):
        return int(h["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
    return None


def _is_429(exc: BaseException) -> bool:
    return isinstance(exc, HubspotError) and exc.status == 429


class HubspotCrm:
    name = "hubspot"

    def __init__(self, cfg: HubspotConfig, session: requests.Session | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, max_attempts: int = 5) -> None:
        self._base = cfg.base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {cfg.token}", "Accept": "application/json"}
        self._timeout = (5.0, cfg.timeout_seconds)
        self._session = session or requests.Session()
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._rejected: set[tuple[str, str]] = set()  # (property, value) this portal refused, e.g. a removed option

    def upsert_lead(self, payload: dict[str, Any], retry: bool) -> str:
        """Contact by email (created or blanks filled), its company by domain, and the mail as a note."""
        email = str(payload.get("email") or "").strip().lower()
        if "@" not in email:
            raise ValueError("a CRM lead needs the sender's email address")
        done: dict[str, str] = {}  # steps finished by an earlier attempt of this call
        note_maybe_landed = retry

        def attempt() -> str:
            nonlocal note_maybe_landed
            if "contact" not in done:
                done["contact"] = self._upsert_contact(email, payload)
            cid = done["contact"]
            domain = str(payload.get("company_domain") or "").strip().lower()
            if domain and "company" not in done:
                done["company"] = self._company(domain, str(payload.get("company") or ""))
            if domain and "associated" not in done:
                self._req("PUT", f"/crm/v4/objects/contacts/{cid}/associations/default/companies/{done['company']}")
                done["associated"] = "yes"
            if not (note_maybe_landed and self._has_note(cid, str(payload["provider_id"]))):
                try:
                    self._add_note(cid, payload)
                except Exception as exc:
                    note_maybe_landed = note_maybe_landed or not _is_429(exc)
                    raise
            return cid

        try:
            return call_with_retry(attempt, is_retryable=_retryable, retry_after=_retry_after,
                                   max_attempts=self._max_attempts, sleep=self._sleep, what="hubspot")
        except (HubspotError, requests.RequestException) as exc:
            status = exc.status if isinstance(exc, HubspotError) else None
            if status is None or _retryable(exc) or status in (401, 403, 429):
                raise SinkUnavailable(f"HubSpot: {exc}") from exc
            raise

    # ------------------------------------------------------------ steps

    def _upsert_contact(self, email: str, payload: dict[str, Any]) -> str:
        given = {"email": email, "firstname": payload.get("first_name"), "lastname": payload.get("last_name"),
                 "company": payload.get("company"), "hs_language": payload.get("language"),
                 "hubspot_owner_id": payload.get("owner_id")}
        wanted = {k: str(v).strip() for k, v in given.items() if v and str(v).strip()}
        found = self._search("contacts", "email", email, CONTACT_PROPS)
        if found is None:
            try:
                created = self._write("POST", "/crm/v3/objects/contacts",
                                      {**wanted, "lifecyclestage": "lead", "hs_lead_status": "NEW"})
                return str(created["id"])
            except HubspotError as exc:
                m = _EXISTING_ID.search(exc.message) if exc.status == 409 else None
                if m is None:
                    raise
                # The search index lags behind writes; the conflict names the contact it missed.
                found = self._req("GET", f"/crm/v3/objects/contacts/{m.group(1)}",
                                  params={"properties": ",".join(CONTACT_PROPS)})
        current = found.get("properties") or {}
        blanks = {k: v for k, v in wanted.items() if not str(current.get(k) or "").strip()}
        if blanks:
            self._write("PATCH", f"/crm/v3/objects/contacts/{found['id']}", blanks)
        return str(found["id"])

    def _company(self, domain: str, name: str) -> str:
        found = self._search("companies", "domain", domain, ("domain", "name"))
        if found is not None:
            return str(found["id"])
        created = self._req("POST", "/crm/v3/objects/companies",
                            {"properties": {"domain": domain, "name": name.strip() or domain}})
        return str(created["id"])

    def _add_note(self, cid: str, payload: dict[str, Any]) -> None:
        # hs_note_body is HTML: the mail's text is escaped so it can only ever show as text.
        text = html.escape(str(payload.get("note") or "")).replace("\n", "<br>")
        source = html.escape(str(payload.get("lead_source") or "shared inbox"))
        body = (f"{text}<br><br>Source: {source}<br>Message-ID: {html.escape(str(payload['message_id']))}"
                f"<br>{_mailbox_line(str(payload['provider_id']))}")
        when = str(payload.get("received_at") or "") or datetime.now(UTC).isoformat()
        self._req("POST", "/crm/v3/objects/notes", {
            "properties": {"hs_note_body": body, "hs_timestamp": when},
            "associations": [{"to": {"id": cid}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}]}]})

    def _has_note(self, cid: str, provider_id: str) -> bool:
        """Whether a note for this message already hangs on the contact (associations read, not the search index)."""
        links = self._req("GET", f"/crm/v4/objects/contacts/{cid}/associations/notes", params={"limit": 500})
        ids = sorted((str(r["toObjectId"]) for r in links.get("results", [])), key=int, reverse=True)[:NOTES_CHECKED]
        if not ids:
            return False
        notes = self._req("POST", "/crm/v3/objects/notes/batch/read",
                          {"properties": ["hs_note_body"], "inputs": [{"id": i} for i in ids]})
        marker = _mailbox_line(provider_id)  # the note's last line: the mail's identity in the mailbox
        return any(str((n.get("properties") or {}).get("hs_note_body") or "").rpartition("<br>")[2] == marker
                   for n in notes.get("results", []))

    # ------------------------------------------------------------ HTTP

    def _search(self, kind: str, prop: str, value: str, props: tuple[str, ...]) -> dict[str, Any] | None:
        body = {"filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}],
                "properties": list(props), "limit": 1}
        results = self._req("POST", f"/crm/v3/objects/{kind}/search", body).get("results") or []
        return results[0] if results else None

    def _write(self, method: str, path: str, props: dict[str, str]) -> dict[str, Any]:
        """Create/update a contact; an optional property the portal rejects is dropped and the write repeated."""
        props = {k: v for k, v in props.items() if (k, v) not in self._rejected}
        try:
            return self._req(method, path, {"properties": props})
        except HubspotError as exc:
            bad = {(p, props[p]) for p in OPTIONAL_PROPS if p in props and exc.status == 400 and p in exc.message}
            if not bad:
                raise
            log.warning("hubspot: the portal rejects %s; writing the contact without it",
                        ", ".join(f"{p}={v!r}" for p, v in sorted(bad)))
            self._rejected |= bad
            return self._req(method, path, {"properties": {k: v for k, v in props.items() if (k, v) not in bad}})

    def _req(self, method: str, path: str, body: dict[str, Any] | None = None,
             params: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = self._session.request(method, self._base + path, json=body, params=params, headers=self._headers,
                                     timeout=self._timeout)
        if resp.status_code >= 400:
            raise HubspotError.of(resp)
        return resp.json() if resp.content else {}


def _mailbox_line(provider_id: str) -> str:
    """The note line naming the mail by its mailbox id (two mails may carry the same Message-ID)."""
    return f"Mailbox message: {html.escape(provider_id)}"
