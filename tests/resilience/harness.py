"""The whole bot against every fake at once: Gmail, Sheets, Slack, HubSpot and OpenAI on 127.0.0.1.

`Stack` starts the fakes in the test process and writes a config that points the real bot at them (the LLM
enabled, so that step runs too); `Stack.run()` starts the real bot process (`python run.py --config ...`);
`Stack.outcome()` reads back what the bot did, from the fakes' own state, keyed by Message-ID so two stacks
(a crash run and a crash-free reference) can be compared.

The fake LLM is an oracle: it answers with the category each test mail was written to be, so decisions do
not depend on the offline model and a crash run must end exactly where a crash-free run ends.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import yaml

from tests.contract.fake_gmail import FakeGmail, wall_clock
from tests.contract.fake_hubspot import FakeHubspot
from tests.contract.fake_openai import FakeOpenAI, answer_json, ok
from tests.contract.fake_sheets import FakeSheets
from tests.contract.fake_slack import FakeSlack
from tests.httpfake import FakeServer, Request, Response

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "inbox"
GMAIL_SCOPE = "https://www.googleapis.com/auth/gmail.modify"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"

# Secrets handed to the bot for a run; tests check that none of them leaks anywhere.
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-RESILIENCE-slack-7f3a9c0d41",
    "HUBSPOT_TOKEN": "pat-RESILIENCE-hubspot-51d2e8aa",
    "OPENAI_API_KEY": "sk-RESILIENCE-openai-88e1f0c2b7",
}
REFRESH_TOKEN = "1//RESILIENCE-refresh-4c0d9e7f"
CLIENT_SECRET = "RESILIENCE-client-secret-2b91"
SLACK_USERS = {"alice@acme-pumps.example": "UALICE", "bob@acme-pumps.example": "UBOB",
               "dieter@acme-pumps.example": "UDIETER", "eva@acme-pumps.example": "UEVA",
               "fanny@acme-pumps.example": "UFANNY", "gustav@acme-pumps.example": "UGUSTAV"}
FALLBACK_CHANNEL = "C0FALLBACK"  # carla and hannah have no Slack account: their pings go here

UNSURE = {"25-vendor-castings-pitch", "35-other-road-closure"}  # the oracle is unsure: review
_TOKEN_WORDS = {"rfq": "lead", "thread": "lead", "job": "job_applicant", "auto": "other", "bounce": "other",
                "internal": "other"}


# ---------------------------------------------------------------- the inbox


@dataclass(frozen=True)
class Mail:
    name: str
    raw: bytes
    sender: str  # lower-cased From address: what the oracle keys on
    category: str  # what the mail was written to be
    language: str
    rfq: bool = False
    confidence: float = 0.95  # what the oracle answers; below the threshold the mail goes to review

    @property
    def message_id(self) -> str:
        return str(BytesHeaderParser(policy=compat32).parsebytes(self.raw).get("Message-ID", "")).strip()


def _sender(raw: bytes) -> str:
    return parseaddr(str(BytesHeaderParser(policy=compat32).parsebytes(raw).get("From", "")))[1].lower()


def demo_mail() -> list[Mail]:
    """The 35 demo messages; category and language come from the file names (01-lead-en-..., 05-rfq-en-...)."""
    out = []
    for path in sorted(DEMO.glob("*.eml")):
        parts = path.stem.split("-")
        kind = parts[1]
        category = _TOKEN_WORDS.get(kind, kind)
        language = parts[2] if len(parts[2]) == 2 else "en"
        raw = path.read_bytes()
        out.append(Mail(path.stem, raw, _sender(raw), category, language, rfq=kind == "rfq",
                        confidence=0.55 if path.stem in UNSURE else 0.95))
    return out


def compose(name: str, sender: str, subject: str, body: str, category: str, language: str, *,
            headers: dict[str, str] | None = None, msgid: str | None = None,
            date: str = "Tue, 01 Dec 2026 09:00:00 +0000") -> Mail:
    em = EmailMessage()
    em["From"] = sender
    em["To"] = "sales@acme-pumps.example"
    em["Subject"] = subject
    em["Date"] = date
    em["Message-ID"] = msgid or f"<{name}@resilience.example>"
    for k, v in (headers or {}).items():
        em[k] = v
    em.set_content(body)
    raw = em.as_bytes()
    return Mail(name, raw, _sender(raw), category, language)


def extra_mail() -> list[Mail]:
    """Five more, to make ~40: leads in three languages, a spam and a marketing newsletter."""
    return [
        compose("x1-lead-en", "Tom Hughes <tom.hughes@westfarm.example>", "Quote for three borehole pumps",
                "Hello,\n\nwe need a quote for three submersible borehole pumps, 40 m head, 12 m3/h each.\n"
                "Delivery to Leeds in March.\n\nRegards,\nTom Hughes\nWestfarm Ltd", "lead", "en"),
        compose("x2-lead-de", "Katrin Weber <k.weber@brauerei-weber.example>", "Anfrage: Angebot Kreiselpumpen",
                "Guten Tag,\n\nbitte senden Sie uns ein Angebot fuer zwei Kreiselpumpen fuer Wuerze, 15 m3/h.\n\n"
                "Mit freundlichen Gruessen\nKatrin Weber\nBrauerei Weber", "lead", "de"),
        compose("x3-lead-it", "Luca Bianchi <l.bianchi@vinicola-toscana.example>", "Richiesta di offerta pompe",
                "Buongiorno,\n\nvorremmo un preventivo per due pompe per il travaso del vino.\n\n"
                "Cordiali saluti\nLuca Bianchi", "lead", "it"),
        compose("x4-spam", "Prize Desk <promo@win-big-now.example>", "You WON a FREE phone!!! Claim now",
                "Congratulations!!! Click here to claim your free phone. Limited offer, act now!!!", "spam", "en"),
        compose("x5-newsletter", "Pump Digest <news@mailchimp.com>", "Monthly pump digest: December",
                "This month: five ways to cut energy use in pumping systems. Unsubscribe at any time.",
                "newsletter", "en", headers={"List-Unsubscribe": "<https://mailchimp.com/unsub/x5>"}),
    ]


def inbox40() -> list[Mail]:
    return demo_mail() + extra_mail()


_STANDALONE = re.compile(r"^(0[1-9]|1[0-8]|2[2-9]|3[0-5])-|^x")  # not part of the demo thread 19-21


def variants(mails: list[Mail]) -> Iterator[Mail]:
    """An endless stream of fresh copies of the standalone mails (new Message-ID and sender), as mail keeps
    arriving while the bot runs."""
    pool = [m for m in mails if _STANDALONE.match(m.name)]
    for k in itertools.count(1):
        for m in pool:
            yield variant(m, k)


def variant(m: Mail, k: int) -> Mail:
    head, sep, body = m.raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in m.raw else m.raw.partition(b"\n\n")
    text = head.decode("latin-1")
    local, _, domain = m.sender.partition("@")
    new_sender = f"{local}+v{k}@{domain}"
    text = re.sub(r"(?im)^(message-id:\s*)<", rf"\g<1><v{k}.", text, count=1)
    text = re.sub(r"(?i)" + re.escape(m.sender), new_sender, text)
    text = re.sub(r"(?im)^(in-reply-to|references):.*(\r?\n[ \t].*)*\r?\n?", "", text)
    return Mail(f"{m.name}~v{k}", text.encode("latin-1") + sep + body, new_sender, m.category, m.language, m.rfq,
                m.confidence)


# ---------------------------------------------------------------- the LLM oracle


class Oracle:
    """Answers each prompt with the category its mail was written to be (keyed by the From line)."""

    def __init__(self) -> None:
        self.known: dict[str, Mail] = {}
        self.unknown = 0

    def learn(self, mails: list[Mail]) -> None:
        for m in mails:
            self.known[m.sender] = m

    def __call__(self, req: Request) -> Response:
        content = "\n".join(str(msg.get("content", "")) for msg in req.json().get("messages", []))
        found = re.search(r"^From: (?:(.*?) )?<?([^<>\s]+@[^<>\s]+?)>?$", content, re.M)
        addr = found.group(2).lower() if found else ""
        mail = self.known.get(addr)
        if mail is None:
            self.unknown += 1
            return ok(answer_json(category="other", confidence=0.8, language="en", person_name=None,
                                  person_email=None, company_name=None, company_domain=None, technical_rfq=False))
        reply_to = re.search(r"^Reply-To: (\S+@\S+)$", content, re.M)
        person = reply_to.group(1).lower() if reply_to else addr
        return ok(answer_json(category=mail.category, confidence=mail.confidence, language=mail.language,
                              person_name=((found.group(1) or "").strip().strip('"') or None) if found else None,
                              person_email=person, company_name=person.partition("@")[2].split(".")[0].title(),
                              company_domain=person.partition("@")[2], technical_rfq=mail.rfq,
                              summary=f"{mail.category} mail from {person}"))


# ---------------------------------------------------------------- the stack of fakes


@dataclass
class Stack:
    """All fakes, started in this process; use as a context manager."""

    tmp: Path
    model: Path | None = None  # a saved offline model (saves training it in every bot process)
    gmail: FakeGmail = field(init=False)
    sheets_srv: FakeServer = field(init=False)
    slack_srv: FakeServer = field(init=False)
    hubspot_srv: FakeServer = field(init=False)
    openai_srv: FakeServer = field(init=False)
    oracle: Oracle = field(default_factory=Oracle)
    delivered: list[Mail] = field(default_factory=list)
    csv_path: Path | None = None  # where the config last written puts the audit CSV

    def __enter__(self) -> Stack:
        self.gmail = FakeGmail(refresh_token=REFRESH_TOKEN, clock=wall_clock).__enter__()
        self.sheets_srv, self.slack_srv = FakeServer().start(), FakeServer().start()
        self.hubspot_srv, self.openai_srv = FakeServer().start(), FakeServer().start()
        self.sheets = FakeSheets(self.sheets_srv)
        self.slack = FakeSlack(self.slack_srv, token=SECRETS["SLACK_BOT_TOKEN"], users=dict(SLACK_USERS),
                               channels={FALLBACK_CHANNEL})
        self.hubspot = FakeHubspot(self.hubspot_srv, token=SECRETS["HUBSPOT_TOKEN"])
        self.openai = FakeOpenAI(self.openai_srv, default=self.oracle)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.gmail.__exit__()
        for srv in (self.sheets_srv, self.slack_srv, self.hubspot_srv, self.openai_srv):
            srv.stop()

    # ------------------------------------------------------------ mail and config

    def deliver(self, mails: list[Mail]) -> list[str]:
        """Put mail into the fake inbox (oldest first, as it arrives) and teach the oracle about it."""
        self.oracle.learn(mails)
        self.delivered += mails
        return [self.gmail.add_message(m.raw) for m in mails]

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    def write_config(self, token: Path | None = None, **changes: Any) -> Path:
        """The shipped config pointed at the fakes; `changes` are dotted keys: poll__max_attempts=3.

        The Gmail token (with the spreadsheets scope: the sheet is written with it) goes to `token`, by default
        outside the state directory.
        """
        token = token or self.tmp / "secrets" / "gmail-token.json"
        token.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        token.write_text(json.dumps({"refresh_token": REFRESH_TOKEN, "client_id": "fake.apps.googleusercontent.com",
                                     "client_secret": CLIENT_SECRET, "token_uri": self.gmail.token_uri,
                                     "scopes": [GMAIL_SCOPE, SHEETS_SCOPE]}))
        token.chmod(0o600)
        data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        data["mail"] = {"provider": "gmail", "maildir": {"seed": ""}, "gmail": {
            "token_file": str(token), "api_endpoint": self.gmail.api_endpoint, "batch_uri": self.gmail.batch_uri,
            "token_uri": self.gmail.token_uri, "timeout_seconds": 10}}
        data["poll"]["max_messages_per_cycle"] = 500
        data["classify"]["model_path"] = str(self.model or self.tmp / "model.json")
        data["classify"]["llm"].update(enabled=True, base_url=self.openai.url, model="oracle", timeout_seconds=5,
                                       max_timeout_seconds=5, max_retries=1)
        for category in ("spam", "newsletter"):
            data["actions"][category]["trash_after_hours"] = 0  # trashed in the same cycle: that step runs too
        data["replies"]["templates_dir"] = str(ROOT / "bot" / "templates")
        data["audit"] = {"csv_path": str(self.state_dir / "audit.csv"), "sheets": {
            "enabled": True, "spreadsheet_key": self.sheets.spreadsheet_id, "base_url": self.sheets_srv.url,
            "timeout_seconds": 5}}
        data["notify"] = {"console": True, "slack": {"enabled": True, "token_env": "SLACK_BOT_TOKEN",
                                                     "base_url": self.slack_srv.url + "/api/",
                                                     "fallback_channel": FALLBACK_CHANNEL, "timeout_seconds": 5}}
        data["crm"] = {"hubspot": {"enabled": True, "token_env": "HUBSPOT_TOKEN", "base_url": self.hubspot_srv.url,
                                   "timeout_seconds": 5}}
        data["state_dir"] = str(self.state_dir)
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split("__")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        self.csv_path = Path(data["audit"]["csv_path"])
        path = self.tmp / "config.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    # ------------------------------------------------------------ the bot process

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.endswith(("_TOKEN", "_API_KEY")) and not k.startswith("TRIAGE_")}
        env.update(SECRETS)
        if crash_at:
            env["TRIAGE_CRASH_AT"] = crash_at
        return env

    def command(self, config: Path, *args: str) -> list[str]:
        return [sys.executable, str(ROOT / "run.py"), "--config", str(config), *args]

    def run(self, config: Path, *args: str, crash_at: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.command(config, *(args or ("--once",))), cwd=ROOT, env=self.env(crash_at),
                              capture_output=True, timeout=timeout)

    def popen(self, config: Path, *args: str, crash_at: str | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(config, *args), cwd=ROOT, env=self.env(crash_at),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # ------------------------------------------------------------ reading back

    def ledger(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(f"file:{self.state_dir / 'ledger.sqlite3'}?mode=ro", uri=True)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def backlog(self) -> dict[str, int]:
        """What the ledger still has to do: unfinished messages, pending effects, queued sink items."""
        return {
            "unfinished": self.ledger("SELECT COUNT(*) FROM messages WHERE status != 'done'")[0][0],
            "effects": self.ledger("SELECT COUNT(*) FROM effects WHERE status = 'pending'")[0][0],
            "outbox": self.ledger("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")[0][0],
            "unlisted": len(self.unprocessed()),
        }

    def unprocessed(self) -> list[str]:
        """Inbound inbox mail without the processed label."""
        with self.gmail.lock:
            return [mid for mid, m in self.gmail.messages.items()
                    if "INBOX" in m.labels and "DRAFT" not in m.labels
                    and "Triage/Processed" not in self.gmail.label_names(mid)]

    def outcome(self) -> Outcome:
        return Outcome.of(self)


@dataclass
class Outcome:
    """What the bot did, as the services saw it, keyed by the inbound mail's Message-ID."""

    labels: dict[str, frozenset[str]]  # inbound mail -> label names (UNREAD left out)
    drafts: Counter[str]  # Message-ID of the mail answered -> drafts for it
    draft_to: dict[str, str]  # Message-ID answered -> the draft's To
    sheet_rows: list[dict[str, str]]  # in sheet order
    csv_rows: list[dict[str, str]]
    slack: Counter[str]  # Message-ID -> pings
    slack_order: list[str]
    contacts: Counter[str]  # email -> contacts
    notes: Counter[str]  # Message-ID -> CRM notes
    companies: Counter[str]  # domain -> companies
    rotation: dict[str, dict[str, int]]  # pool -> member -> leads assigned
    decisions: dict[str, tuple[str, bool, str]]  # Message-ID -> (category, review, assignee)

    @classmethod
    def of(cls, stack: Stack) -> Outcome:
        import csv

        gm = stack.gmail
        with gm.lock:
            labels, drafts, draft_to = {}, Counter[str](), {}
            for mid, m in gm.messages.items():
                if "DRAFT" in m.labels:
                    source = (m.header("X-Triage-Source") or "").strip()  # the provider id of the mail answered
                    answered = gm.messages.get(source)
                    source = ((answered.header("Message-ID") or "").strip() if answered else "") or source
                    drafts[source] += 1
                    draft_to[source] = m.header("To") or ""
                else:
                    labels[(m.header("Message-ID") or mid).strip()] = frozenset(gm.label_names(mid) - {"UNREAD"})
        sheet = stack.sheets.values("Decisions") if stack.sheets.sheets else []
        header = sheet[0] if sheet else []
        sheet_rows = [dict(zip(header, line + [""] * (len(header) - len(line)), strict=True)) for line in sheet[1:]]
        csv_path = stack.csv_path or stack.state_dir / "audit.csv"
        csv_rows = list(csv.DictReader(csv_path.open(encoding="utf-8-sig"))) if csv_path.exists() else []
        posted = [str(((p.args.get("metadata") or {}).get("event_payload") or {}).get("message_id", ""))
                  for p in stack.slack.posted]
        contacts = Counter(c.get("email", "").lower() for c in stack.hubspot.of("contacts").values())
        notes = Counter(m.group(1) for n in stack.hubspot.of("notes").values()
                        for m in [re.search(r"Message-ID: (&lt;.*?&gt;)", n.get("hs_note_body", ""))] if m)
        companies = Counter(c.get("domain", "") for c in stack.hubspot.of("companies").values())
        rotation: dict[str, dict[str, int]] = {}
        for pool, member, assigned in stack.ledger("SELECT pool, member, assigned FROM rotation"):
            rotation.setdefault(pool, {})[member] = assigned
        decisions = {mid: (cat, bool(review), assignee) for mid, cat, review, assignee in stack.ledger(
            "SELECT message_id, category, review, assignee FROM messages WHERE status='done'")}
        return cls(labels, drafts, draft_to, sheet_rows, csv_rows, Counter(posted), posted, contacts,
                   Counter(notes), companies, rotation, decisions)

    def inbox(self) -> set[str]:
        return {mid for mid, names in self.labels.items() if "INBOX" in names}

    def trashed(self) -> set[str]:
        return {mid for mid, names in self.labels.items() if "TRASH" in names}



class EveryNth:
    """Every n-th request whose path matches `pattern` is answered with `response` before the fake sees it.

    Installed on a FakeServer's fault lookup, so it also applies to the items inside a Gmail batch.
    """

    def __init__(self, server: FakeServer, pattern: str, n: int, response: Response) -> None:
        self.server, self.rx, self.n, self.response = server, re.compile(pattern), n, response
        self.seen = self.failed = 0
        self._lookup = server._fault_for
        server._fault_for = self  # type: ignore[method-assign]

    def __call__(self, path: str) -> Response | None:
        queued = self._lookup(path)
        if queued is not None or not self.rx.search(path) or self._inside_batch():
            return queued
        self.seen += 1
        if self.seen % self.n:
            return None
        self.failed += 1
        return self.response

    @staticmethod
    def _inside_batch() -> bool:
        """Items of a batch request are not counted, the batch request is: a failed item is retried after a
        backoff of seconds (the contract tests cover that), a failed request at once when Retry-After says so."""
        return sys._getframe(2).f_code.co_name == "_batch"

    def remove(self) -> None:
        self.server._fault_for = self._lookup  # type: ignore[method-assign]
