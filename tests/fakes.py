"""In-memory fakes of the sink and classifier ports, for pipeline tests. Assert on their state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.models import Classification, Email, PrefilterResult
from bot.ports import SinkUnavailable


class FakeAuditSink:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.rows: list[dict[str, Any]] = []
        self.calls: list[tuple[int, bool]] = []  # (rows in the call, retry flag)
        self.down = False

    def write(self, rows: Sequence[dict[str, Any]], retry: bool) -> None:
        self.calls.append((len(rows), retry))
        if self.down:
            raise SinkUnavailable(f"{self.name} is down")
        present = {r["provider_id"] for r in self.rows} if retry else set()
        self.rows.extend(dict(r) for r in rows if r["provider_id"] not in present)

    def update(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Fill in fields of existing rows (found by provider_id); returns the ids with no row."""
        self.calls.append((len(rows), True))
        if self.down:
            raise SinkUnavailable(f"{self.name} is down")
        missing = set()
        for change in rows:
            row = next((r for r in self.rows if r["provider_id"] == change["provider_id"]), None)
            if row is None:
                missing.add(change["provider_id"])
            else:
                row.update(change)
        return missing


class _Faults:
    """Failures set up for single mails: `after` means the call did its work and then failed (a lost response)."""

    def __init__(self) -> None:
        self.down = False  # an outage: every call fails
        self.retries: list[tuple[str, bool]] = []  # (provider id, retry flag) of every call, in order
        self._faults: dict[str, list[tuple[BaseException, bool]]] = {}

    def fail(self, provider_id: str, exc: BaseException, times: int = 1, after: bool = False) -> None:
        """The next `times` calls about this mail raise `exc` (after doing their work, with after=True)."""
        self._faults.setdefault(provider_id, []).extend([(exc, after)] * times)

    def _fault(self, provider_id: str, retry: bool, outage: str) -> tuple[BaseException, bool] | None:
        self.retries.append((provider_id, retry))
        if self.down:
            raise SinkUnavailable(outage)
        queued = self._faults.get(provider_id)
        fault = queued.pop(0) if queued else None
        if fault is not None and not fault[1]:
            raise fault[0]
        return fault


class FakeNotifier(_Faults):
    """Like the Slack adapter: a ping is posted on every call; with retry=True an earlier post of it is kept."""

    def __init__(self, name: str = "fake") -> None:
        super().__init__()
        self.name = name
        self.sent: list[dict[str, Any]] = []

    def notify(self, payload: dict[str, Any], retry: bool) -> str:
        lost = self._fault(payload["provider_id"], retry, "chat is down")
        if retry and any(p["provider_id"] == payload["provider_id"] for p in self.sent):
            return "already sent"
        self.sent.append(dict(payload))
        if lost:
            raise lost[0]
        return f"sent to {payload['assignee_email']}"


class FakeCrm(_Faults):
    """Like the HubSpot adapter: one contact per address (any case); every call adds the mail's note, except that
    with retry=True a note the mail already has is not added again."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "fake"
        self.contacts: dict[str, dict[str, Any]] = {}

    def upsert_lead(self, payload: dict[str, Any], retry: bool) -> str:
        email = str(payload.get("email") or "").strip().lower()
        if "@" not in email:
            raise ValueError("a CRM lead needs the sender's email address")
        lost = self._fault(payload["provider_id"], retry, "crm is down")
        contact = self.contacts.setdefault(email, {"id": f"c{len(self.contacts) + 1}", "notes": [], "mails": [],
                                                   "note_texts": []})
        if not (retry and payload["provider_id"] in contact["mails"]):
            contact["mails"].append(payload["provider_id"])
            contact["notes"].append(payload["message_id"])
            contact["note_texts"].append(payload["note"])
        if lost:
            raise lost[0]
        return str(contact["id"])


class Clock:
    """A settable clock for Services.clock: tests move time forward by assigning to .now."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> Any:
        return self.now


class KeywordClassifier:
    """A deterministic stand-in classifier: the category is named in the subject as [category:lang:conf]."""

    name = "keyword"

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        self.calls += 1
        import re

        m = re.search(r"\[(\w+):(\w*):([\d.]+)(:rfq)?\]", email.subject)
        if not m:
            return Classification("other", 0.5, None, self.name)
        return Classification(m.group(1), float(m.group(3)), m.group(2) or None, self.name,
                              person_name=email.from_name or None, person_email=email.from_addr,
                              technical_rfq=bool(m.group(4)))


def make_config(tmp_path: Any, patch: dict[str, Any] | None = None) -> Any:
    """The shipped config.yaml with state under tmp_path and `patch` merged in (nested dicts merge)."""
    from pathlib import Path

    import yaml

    from bot.config import parse_config

    root = Path(__file__).resolve().parent.parent
    data = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8"))
    data["state_dir"] = str(tmp_path / "state")
    data["audit"]["csv_path"] = str(tmp_path / "state" / "audit.csv")
    data["mail"]["maildir"]["path"] = str(tmp_path / "state" / "maildir")
    data["classify"]["model_path"] = str(tmp_path / "state" / "model.json")
    data["replies"]["templates_dir"] = str(root / "bot" / "templates")

    def merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v

    merge(data, patch or {})
    return parse_config(data, root / "config.yaml")


def raw_mail(subject: str, sender: str = "Jane Prospect <jane@prospect.example>", body: str = "Hello there.",
             msgid: str | None = None, extra: str = "", date: str = "Mon, 23 Nov 2026 09:00:00 +0000") -> bytes:
    import hashlib

    msgid = msgid or f"<{hashlib.sha1(subject.encode() + sender.encode()).hexdigest()[:12]}@prospect.example>"
    head = (f"From: {sender}\r\nTo: sales@acme-pumps.example\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: {msgid}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}")
    return (head + "\r\n" + body + "\r\n").encode("utf-8")
