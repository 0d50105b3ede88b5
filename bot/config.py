"""config.yaml -> frozen, validated settings.

Every problem is collected with its YAML path and reported in one ConfigError, so an operator fixes the file
in one go. Secrets are never read from the YAML itself: the YAML names an environment variable or a file.
Relative paths are resolved against the directory of the config file.
"""

from __future__ import annotations

import os
import re
import reprlib
from dataclasses import dataclass, field
from datetime import UTC, date, time, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.models import CATEGORIES, Person

_MISSING = object()
MAX_CONFIG_BYTES = 1 << 20  # a config is a few KB; this also bounds every value read from it
MAX_DEPTH = 32  # levels of nesting; the deepest key (routing.pools.<pool>.members[i].away[j].from) has 9
MAX_EXPANDED = 2_000_000  # values plus characters the document holds once its YAML aliases are expanded
_SHOW = reprlib.Repr()
_SHOW.maxstring, _SHOW.maxother, _SHOW.maxlevel = 120, 120, 3
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 6


def show(value: Any) -> str:
    """A value for an error message: bounded however large or deeply nested it is."""
    return _SHOW.repr(value)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANG_RE = re.compile(r"^[a-z]{2}$")


class ConfigError(Exception):
    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = [p if len(p) <= 600 else p[:599] + "…" for p in problems]  # one screen, whatever the input
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


class Reader:
    """Typed access to a YAML mapping that records problems instead of raising on the first one."""

    def __init__(self, data: Any, base_dir: Path, path: str = "", problems: list[str] | None = None) -> None:
        self.data = data if isinstance(data, dict) else {}
        self.base_dir = base_dir
        self.path = path
        self.problems: list[str] = problems if problems is not None else []
        self._known: set[str] = set()
        if data is not None and not isinstance(data, dict):
            self.problem("", f"expected a mapping, got {type(data).__name__}")

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else (self.path or key)

    @staticmethod
    def key_text(key: Any) -> str:
        """A mapping key as a path element (YAML allows any value as a key)."""
        return key if isinstance(key, str) and len(key) <= 120 else show(key)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self._p(key) or '(top level)'}: {message}")

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self._known.add(key)
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is _MISSING:
            self.problem(key, "is required")
            return None
        return default

    def section(self, key: str) -> Reader:
        value = self.raw(key, {})
        return Reader(value, self.base_dir, self._p(key), self.problems)

    def string(self, key: str, default: Any = _MISSING, choices: tuple[str, ...] | None = None) -> str:
        value = self.raw(key, default)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.problem(key, f"expected a string, got {show(value)}")
            return str(default) if isinstance(default, str) else ""
        if choices is not None and value not in choices:
            self.problem(key, f"expected one of {', '.join(choices)}, got {show(value)}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {show(value)}")
            return bool(default) if isinstance(default, bool) else False
        return value

    def number(self, key: str, default: Any = _MISSING, minimum: float | None = None,
               maximum: float | None = None, integer: bool = False) -> float:
        value = self.raw(key, default)
        kind = "a whole number" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.problem(key, f"expected {kind}, got {show(value)}")
            return float(default) if isinstance(default, (int, float)) else 0.0
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"{minimum if minimum is not None else '-inf'}..{maximum if maximum is not None else 'inf'}"
            self.problem(key, f"expected {kind} in {bounds}, got {show(value)}")
        return float(value)

    def integer(self, key: str, default: Any = _MISSING, minimum: int | None = None, maximum: int | None = None) -> int:
        return int(self.number(key, default, minimum, maximum, integer=True))

    def str_list(self, key: str, default: Any = _MISSING, pattern: re.Pattern[str] | None = None,
                 what: str = "") -> tuple[str, ...]:
        value = self.raw(key, default)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, f"expected a list of strings, got {show(value)}")
            return ()
        if pattern is not None:
            for i, v in enumerate(value):
                if not pattern.match(v):
                    self.problem(f"{key}[{i}]",
                                 f"expected {what or 'a value matching ' + pattern.pattern}, got {show(v)}")
        return tuple(value)

    def path_value(self, key: str, default: Any = _MISSING) -> Path:
        value = self.string(key, default)
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def optional_path(self, key: str) -> Path | None:
        value = self.string(key, "")
        return self.path_value(key) if value else None

    def secret(self, key: str) -> str | None:
        """A secret named by `<key>_env` (environment variable) or `<key>_file` (a file); never inline."""
        if key in self.data:
            self._known.add(key)
            self.problem(key, f"secrets are not read from the YAML: use {key}_env or {key}_file")
        env_name = self.string(f"{key}_env", "")
        file_name = self.string(f"{key}_file", "")
        if env_name and os.environ.get(env_name):
            return os.environ[env_name]
        if file_name:
            p = Path(file_name).expanduser()
            p = p if p.is_absolute() else self.base_dir / p
            try:
                return p.read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.problem(f"{key}_file", f"cannot read {p}: {exc.strerror}")
        return None

    def check_unknown(self) -> None:
        """Report keys nobody read: usually a typo that would otherwise be silently ignored."""
        for key in self.data:
            if key not in self._known:
                self.problem(self.key_text(key), "unknown key")


# ---------------------------------------------------------------- sections


@dataclass(frozen=True)
class CompanyConfig:
    name: str
    domains: tuple[str, ...]
    mailbox: str


@dataclass(frozen=True)
class MaildirConfig:
    path: Path
    seed: Path | None  # a folder of .eml copied into a new, empty maildir (the demo inbox)


@dataclass(frozen=True)
class GmailConfig:
    auth: str  # oauth | service_account
    token_file: Path
    client_secrets_file: Path | None
    service_account_file: Path | None
    subject: str
    api_endpoint: str
    batch_uri: str
    token_uri: str
    lookback_days: int
    batch_size: int
    timeout_seconds: float


@dataclass(frozen=True)
class MailConfig:
    provider: str
    maildir: MaildirConfig
    gmail: GmailConfig
    max_message_bytes: int = 25 * 1024 * 1024  # what is read of one message; a larger one goes to review


@dataclass(frozen=True)
class PollConfig:
    interval_seconds: int
    max_messages_per_cycle: int
    max_attempts: int


@dataclass(frozen=True)
class LabelsConfig:
    processed: str
    review: str
    categories: dict[str, str]

    def all(self) -> tuple[str, ...]:
        return (self.processed, self.review, *self.categories.values())


@dataclass(frozen=True)
class PrefilterConfig:
    own_domains: tuple[str, ...]
    block_senders: tuple[str, ...]
    allow_senders: tuple[str, ...]
    marketing_domains: tuple[str, ...]
    auto_reply_subjects: tuple[str, ...]


@dataclass(frozen=True)
class LlmConfig:
    enabled: bool
    base_url: str
    model: str
    api_key: str | None
    mode: str  # auto | json_schema | json_object
    timeout_seconds: float
    max_retries: int
    daily_budget_usd: float
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    call_below_confidence: float
    call_for_categories: tuple[str, ...]
    redact: bool
    thread_cache_hours: float
    system_role: bool = True  # False: the instructions open the user message (chat templates with no system role)
    max_timeout_seconds: float = 300.0  # the first call's limit; later limits follow the server's measured speed


@dataclass(frozen=True)
class ClassifyConfig:
    threshold: float
    text_chars: int
    default_language: str
    languages: tuple[str, ...]
    model_path: Path
    llm: LlmConfig


@dataclass(frozen=True)
class Away:
    start: date
    end: date


@dataclass(frozen=True)
class Member:
    person: Person
    away: tuple[Away, ...] = ()

    def is_away(self, day: date) -> bool:
        return any(a.start <= day <= a.end for a in self.away)


@dataclass(frozen=True)
class Pool:
    name: str
    members: tuple[Member, ...]
    cc: tuple[str, ...]


@dataclass(frozen=True)
class RoutingConfig:
    default_pool: str
    rfq_pool: str | None
    language_pools: dict[str, str]
    pools: dict[str, Pool]
    colleagues: tuple[str, ...]  # extra addresses that count as "one of our people" (outside our domains)
    sticky_days: int = 90  # a contact assigned within this many days goes to the same person again (0: off)

    def people(self) -> dict[str, Person]:
        return {m.person.email: m.person for p in self.pools.values() for m in p.members}


@dataclass(frozen=True)
class CategoryAction:
    archive: bool
    draft: bool
    assign: bool
    notify: bool
    crm: bool
    trash_after_hours: float | None


@dataclass(frozen=True)
class RepliesConfig:
    templates_dir: Path
    from_name: str


@dataclass(frozen=True)
class SheetsConfig:
    enabled: bool
    spreadsheet_key: str
    worksheet: str
    credentials_file: Path | None  # service-account JSON; empty -> the Gmail OAuth token
    base_url: str
    timeout_seconds: float


@dataclass(frozen=True)
class AuditConfig:
    csv_path: Path
    sheets: SheetsConfig


@dataclass(frozen=True)
class SlackConfig:
    enabled: bool
    token: str | None
    base_url: str
    fallback_channel: str
    timeout_seconds: float


@dataclass(frozen=True)
class NotifyConfig:
    console: bool
    slack: SlackConfig


@dataclass(frozen=True)
class HubspotConfig:
    enabled: bool
    token: str | None
    base_url: str
    timeout_seconds: float


@dataclass(frozen=True)
class CrmConfig:
    hubspot: HubspotConfig


@dataclass(frozen=True)
class BusinessHours:
    timezone: str  # IANA name, e.g. Europe/Berlin
    days: tuple[int, ...]  # weekday numbers, Monday = 0
    start: time
    end: time
    holidays: tuple[date, ...] = ()

    @property
    def zone(self) -> tzinfo:
        return _zone(self.timezone) or UTC


@dataclass(frozen=True)
class FollowupConfig:
    enabled: bool
    business_hours: BusinessHours
    track_days: float  # stop looking for an answer this long after the bot first saw the mail
    remind_after_hours: float  # business hours
    escalate_after_hours: float  # business hours
    escalate_to: str  # channel | reassign
    escalation_channel: str  # Slack channel id; "" -> notify.slack.fallback_channel


@dataclass(frozen=True)
class WeeklyReport:
    day: int  # Monday = 0
    at: time


@dataclass(frozen=True)
class ReportConfig:
    dir: Path
    weekly: WeeklyReport | None
    slack_channel: str
    link_base: str


DEFAULT_HOURS = BusinessHours("UTC", (0, 1, 2, 3, 4), time(9), time(17))
DEFAULT_FOLLOWUP = FollowupConfig(True, DEFAULT_HOURS, 14, 4, 24, "channel", "")


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool
    address: str  # 127.0.0.1 unless the operator opens it up
    port: int


@dataclass(frozen=True)
class HealthConfig:
    max_outbox_age_minutes: float  # a sink queue older than this makes `health` fail


@dataclass(frozen=True)
class AlertsConfig:
    stuck_after_intervals: int  # no successful cycle for this many poll intervals
    sink_failing_minutes: float  # a sink failing for longer than this
    review_pile_up: int  # messages sent to review in the last 24 hours
    repeat_minutes: float  # an alert that still holds is repeated at most this often


@dataclass(frozen=True)
class OperationsConfig:
    metrics: MetricsConfig = MetricsConfig(False, "127.0.0.1", 9464)
    health: HealthConfig = HealthConfig(60)
    alerts: AlertsConfig = AlertsConfig(3, 30, 25, 60)


@dataclass(frozen=True)
class Config:
    source: Path
    company: CompanyConfig
    mail: MailConfig
    poll: PollConfig
    labels: LabelsConfig
    prefilter: PrefilterConfig
    classify: ClassifyConfig
    routing: RoutingConfig
    actions: dict[str, CategoryAction]  # categories + "review" + "skip"
    replies: RepliesConfig
    audit: AuditConfig
    notify: NotifyConfig
    crm: CrmConfig
    state_dir: Path
    log_level: str = "INFO"
    log_format: str = "text"  # text | json (one object per line, for log shippers)
    operations: OperationsConfig = OperationsConfig()
    extra: dict[str, Any] = field(default_factory=dict)
    followup: FollowupConfig = DEFAULT_FOLLOWUP
    report: ReportConfig = field(default_factory=lambda: ReportConfig(Path("state/reports"), None, "", ""))

    def secrets(self) -> list[str]:
        """The secret values in use, long enough to mask wherever text may quote them (logs, state, alerts)."""
        return [s for s in (self.classify.llm.api_key, self.notify.slack.token, self.crm.hubspot.token)
                if s and len(s) >= 6]


# ---------------------------------------------------------------- section readers

_DOMAIN_RE = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}$")
_SENDER_RE = re.compile(r"^([^@\s]+@)?@?[a-z0-9.-]+\.[a-z]{2,}$")
PACKAGE_DIR = Path(__file__).resolve().parent

DEFAULT_ACTIONS: dict[str, dict[str, Any]] = {
    "lead": {"archive": True, "draft": True, "assign": True, "notify": True, "crm": True},
    "support": {"archive": True},
    "accounting": {"archive": True},
    "vendor": {"archive": True},
    "job_applicant": {"archive": True},
    "newsletter": {"archive": True, "trash_after_hours": 72},
    "spam": {"archive": True, "trash_after_hours": 72},
    "other": {"archive": True},
    "review": {"archive": False},
    "skip": {"archive": False},
}


def _company(r: Reader) -> CompanyConfig:
    domains = tuple(d.lower() for d in r.str_list("domains", pattern=_DOMAIN_RE, what="a domain like example.com"))
    if not domains:
        r.problem("domains", "list at least one of our own domains")
    mailbox = r.string("mailbox")
    if mailbox and not _EMAIL_RE.match(mailbox):
        r.problem("mailbox", f"expected an email address, got {show(mailbox)}")
    cfg = CompanyConfig(name=r.string("name"), domains=domains, mailbox=mailbox.lower())
    r.check_unknown()
    return cfg


def _mail(r: Reader) -> MailConfig:
    provider = r.string("provider", "maildir", choices=("maildir", "gmail"))
    md = r.section("maildir")
    seed = md.optional_path("seed")
    maildir = MaildirConfig(path=md.path_value("path", "state/maildir"), seed=seed)
    md.check_unknown()
    g = r.section("gmail")
    gmail = GmailConfig(
        auth=g.string("auth", "oauth", choices=("oauth", "service_account")),
        token_file=g.path_value("token_file", "state/gmail-token.json"),
        client_secrets_file=g.optional_path("client_secrets_file"),
        service_account_file=g.optional_path("service_account_file"),
        subject=g.string("subject", ""),
        api_endpoint=g.string("api_endpoint", "https://gmail.googleapis.com/"),
        batch_uri=g.string("batch_uri", "https://gmail.googleapis.com/batch/gmail/v1"),
        token_uri=g.string("token_uri", "https://oauth2.googleapis.com/token"),
        lookback_days=g.integer("lookback_days", 7, minimum=1, maximum=365),
        batch_size=g.integer("batch_size", 50, minimum=1, maximum=50),
        timeout_seconds=g.number("timeout_seconds", 60, minimum=1),
    )
    if provider == "gmail" and gmail.auth == "service_account" and not gmail.service_account_file:
        g.problem("service_account_file", "is required when auth is service_account")
    if provider == "gmail" and gmail.auth == "service_account" and not gmail.subject:
        g.problem("subject", "is required for a service account (the mailbox to act for)")
    g.check_unknown()
    cfg = MailConfig(provider=provider, maildir=maildir, gmail=gmail,
                     max_message_bytes=r.integer("max_message_bytes", 25 * 1024 * 1024, minimum=64 * 1024))
    r.check_unknown()
    return cfg


def _poll(r: Reader) -> PollConfig:
    cfg = PollConfig(
        interval_seconds=r.integer("interval_seconds", 60, minimum=5, maximum=86400),
        max_messages_per_cycle=r.integer("max_messages_per_cycle", 500, minimum=1),
        max_attempts=r.integer("max_attempts", 5, minimum=1, maximum=100),
    )
    r.check_unknown()
    return cfg


def _labels(r: Reader) -> LabelsConfig:
    cats = r.section("categories")
    categories = {c: cats.string(c, f"Triage/{c.replace('_', ' ').title().replace(' ', '')}") for c in CATEGORIES}
    cats.check_unknown()
    cfg = LabelsConfig(processed=r.string("processed", "Triage/Processed"), review=r.string("review", "Triage/Review"),
                       categories=categories)
    names = cfg.all()
    for name in names:
        if not name.strip() or name.upper() in {"INBOX", "TRASH", "SPAM", "DRAFT", "SENT", "UNREAD"}:
            r.problem("", f"label name {show(name)} is empty or a Gmail system label")
    if len(set(names)) != len(names):
        r.problem("", "label names must be distinct")
    r.check_unknown()
    return cfg


def _prefilter(r: Reader, company: CompanyConfig) -> PrefilterConfig:
    cfg = PrefilterConfig(
        own_domains=company.domains,
        block_senders=tuple(s.lower() for s in r.str_list("block_senders", [], _SENDER_RE, "an address or @domain")),
        allow_senders=tuple(s.lower() for s in r.str_list("allow_senders", [], _SENDER_RE, "an address or @domain")),
        marketing_domains=tuple(d.lower() for d in r.str_list("marketing_domains", [], _DOMAIN_RE, "a domain")),
        auto_reply_subjects=r.str_list("auto_reply_subjects", []),
    )
    for i, pat in enumerate(cfg.auto_reply_subjects):
        try:
            re.compile(pat)
        except re.error as exc:
            r.problem(f"auto_reply_subjects[{i}]", f"not a valid regular expression: {exc}")
    r.check_unknown()
    return cfg


def _llm(r: Reader) -> LlmConfig:
    cfg = LlmConfig(
        enabled=r.boolean("enabled", False),
        base_url=r.string("base_url", "https://api.openai.com/v1"),
        model=r.string("model", "gpt-4o-mini"),
        api_key=r.secret("api_key"),
        mode=r.string("mode", "auto", choices=("auto", "json_schema", "json_object")),
        timeout_seconds=r.number("timeout_seconds", 30, minimum=1, maximum=600),
        max_retries=r.integer("max_retries", 2, minimum=0, maximum=10),
        daily_budget_usd=r.number("daily_budget_usd", 1.0, minimum=0),
        input_usd_per_mtok=r.number("input_usd_per_mtok", 0.15, minimum=0),
        output_usd_per_mtok=r.number("output_usd_per_mtok", 0.60, minimum=0),
        call_below_confidence=r.number("call_below_confidence", 0.8, minimum=0, maximum=1),
        call_for_categories=r.str_list(
            "call_for_categories", ["lead", "support", "accounting", "vendor", "job_applicant", "other"]),
        redact=r.boolean("redact", True),
        thread_cache_hours=r.number("thread_cache_hours", 24, minimum=0),
        system_role=r.boolean("system_role", True),
        max_timeout_seconds=r.number("max_timeout_seconds", 300, minimum=1, maximum=3600),
    )
    if cfg.max_timeout_seconds < cfg.timeout_seconds:
        r.problem("max_timeout_seconds", f"must be at least timeout_seconds ({cfg.timeout_seconds:g})")
    for i, c in enumerate(cfg.call_for_categories):
        if c not in CATEGORIES:
            r.problem(f"call_for_categories[{i}]", f"unknown category {show(c)}")
    r.check_unknown()
    return cfg


def _classify(r: Reader) -> ClassifyConfig:
    llm_r = r.section("llm")
    cfg = ClassifyConfig(
        threshold=r.number("threshold", 0.7, minimum=0, maximum=1),
        text_chars=r.integer("text_chars", 1500, minimum=100, maximum=100_000),
        default_language=r.string("default_language", "en"),
        languages=r.str_list("languages", ["en", "de", "fr", "es", "it", "pt", "nl"], _LANG_RE, "an ISO 639-1 code"),
        model_path=r.path_value("model_path", "state/model.json"),
        llm=_llm(llm_r),
    )
    if not _LANG_RE.match(cfg.default_language):
        r.problem("default_language", f"expected an ISO 639-1 code like en, got {show(cfg.default_language)}")
    r.check_unknown()
    return cfg


def _date(r: Reader, key: str) -> date | None:
    value = r.raw(key)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    r.problem(key, f"expected a date like 2026-12-24, got {show(value)}")
    return None


def _member(r: Reader) -> Member | None:
    email = r.string("email").lower()
    if email and not _EMAIL_RE.match(email):
        r.problem("email", f"expected an email address, got {show(email)}")
    name = r.string("name")
    for key, value in (("email", email), ("name", name)):
        if key in r.data and not value.strip():  # a missing key is reported by r.string
            r.problem(key, "must not be empty: a member without it cannot be assigned a lead")
    away: list[Away] = []
    raw_away = r.raw("away", [])
    if not isinstance(raw_away, list):
        r.problem("away", "expected a list of {from: DATE, to: DATE}")
        raw_away = []
    for i, item in enumerate(raw_away):
        ar = Reader(item, r.base_dir, f"{r.path}.away[{i}]", r.problems)
        start, end = _date(ar, "from"), _date(ar, "to")
        if start and end:
            if end < start:
                ar.problem("to", "is before from")
            away.append(Away(start, end))
        ar.check_unknown()
    person = Person(email=email, name=name, slack_id=r.string("slack_id", "") or None,
                    crm_owner_id=str(r.raw("crm_owner_id", "")) or None)
    r.check_unknown()
    return Member(person, tuple(away)) if email and name else None


def _routing(r: Reader) -> RoutingConfig:
    pools: dict[str, Pool] = {}
    pools_r = r.section("pools")
    for name in pools_r.data:
        pr = pools_r.section(str(name))
        raw_members = pr.raw("members")
        members: list[Member] = []
        if not isinstance(raw_members, list) or not raw_members:
            pr.problem("members", "expected a non-empty list of {name, email}")
            raw_members = []
        for i, item in enumerate(raw_members):
            m = _member(Reader(item, r.base_dir, f"{pr.path}.members[{i}]", r.problems))
            if m:
                members.append(m)
        emails = [m.person.email for m in members]
        if len(set(emails)) != len(emails):
            pr.problem("members", "the same person is listed twice")
        cc = tuple(c.lower() for c in pr.str_list("cc", [], _EMAIL_RE, "an email address"))
        pools[str(name)] = Pool(str(name), tuple(members), cc)
        pr.check_unknown()
    if not pools:
        r.problem("pools", "define at least one pool")
    default_pool = r.string("default_pool")
    rfq_pool = r.string("rfq_pool", "") or None
    language_pools = r.raw("language_pools", {})
    if not isinstance(language_pools, dict):
        r.problem("language_pools", "expected a mapping of language code -> pool name")
        language_pools = {}
    for key, pool_name in [("default_pool", default_pool), ("rfq_pool", rfq_pool)] + [
            (f"language_pools.{k}", v) for k, v in language_pools.items()]:
        if pool_name and pool_name not in pools:
            r.problem(key, f"names pool {show(pool_name)}, which is not defined under routing.pools")
    for lang in language_pools:
        if not _LANG_RE.match(str(lang)):
            r.problem(f"language_pools.{lang}", "expected an ISO 639-1 code as key")
    cfg = RoutingConfig(default_pool=default_pool, rfq_pool=rfq_pool,
                        language_pools={str(k): str(v) for k, v in language_pools.items()}, pools=pools,
                        colleagues=tuple(c.lower() for c in r.str_list("colleagues", [], _EMAIL_RE, "an address")),
                        sticky_days=r.integer("sticky_days", 90, 0, 3650))
    r.check_unknown()
    return cfg


def _actions(r: Reader) -> dict[str, CategoryAction]:
    out: dict[str, CategoryAction] = {}
    for cat, defaults in DEFAULT_ACTIONS.items():
        cr = r.section(cat)
        trash = cr.raw("trash_after_hours", defaults.get("trash_after_hours"))
        if trash is not None and (isinstance(trash, bool) or not isinstance(trash, (int, float)) or trash < 0):
            cr.problem("trash_after_hours", f"expected a number of hours >= 0 or null, got {show(trash)}")
            trash = None
        if trash is not None and cat not in {"spam", "newsletter"}:
            cr.problem("trash_after_hours", "only spam and newsletter mail may be trashed")
            trash = None
        out[cat] = CategoryAction(
            archive=cr.boolean("archive", defaults.get("archive", False)),
            draft=cr.boolean("draft", defaults.get("draft", False)),
            assign=cr.boolean("assign", defaults.get("assign", False)),
            notify=cr.boolean("notify", defaults.get("notify", False)),
            crm=cr.boolean("crm", defaults.get("crm", False)),
            trash_after_hours=float(trash) if trash is not None else None,
        )
        if out[cat].draft and not out[cat].assign:
            cr.problem("draft", "a draft is signed by the assignee: set assign: true too")
        cr.check_unknown()
    r.check_unknown()
    return out


def _audit(r: Reader) -> AuditConfig:
    s = r.section("sheets")
    sheets = SheetsConfig(
        enabled=s.boolean("enabled", False),
        spreadsheet_key=s.string("spreadsheet_key", ""),
        worksheet=s.string("worksheet", "Decisions"),
        credentials_file=s.optional_path("credentials_file"),
        base_url=s.string("base_url", "https://sheets.googleapis.com"),
        timeout_seconds=s.number("timeout_seconds", 30, minimum=1),
    )
    if sheets.enabled and not sheets.spreadsheet_key:
        s.problem("spreadsheet_key", "is required when sheets is enabled")
    s.check_unknown()
    cfg = AuditConfig(csv_path=r.path_value("csv_path", "state/audit.csv"), sheets=sheets)
    r.check_unknown()
    return cfg


def _notify(r: Reader) -> NotifyConfig:
    s = r.section("slack")
    slack = SlackConfig(
        enabled=s.boolean("enabled", False),
        token=s.secret("token"),
        base_url=s.string("base_url", "https://slack.com/api/"),
        fallback_channel=s.string("fallback_channel", ""),
        timeout_seconds=s.number("timeout_seconds", 10, minimum=1),
    )
    if slack.enabled and not slack.token:
        s.problem("token_env", f"slack is enabled but no token was found: set the environment variable "
                  f"{s.string('token_env', '') or '(none named)'}")
    s.check_unknown()
    cfg = NotifyConfig(console=r.boolean("console", True), slack=slack)
    r.check_unknown()
    return cfg


def _crm(r: Reader) -> CrmConfig:
    h = r.section("hubspot")
    hubspot = HubspotConfig(
        enabled=h.boolean("enabled", False),
        token=h.secret("token"),
        base_url=h.string("base_url", "https://api.hubapi.com"),
        timeout_seconds=h.number("timeout_seconds", 15, minimum=1),
    )
    if hubspot.enabled and not hubspot.token:
        h.problem("token_env", f"hubspot is enabled but no token was found: set the environment variable "
                  f"{h.string('token_env', '') or '(none named)'}")
    h.check_unknown()
    cfg = CrmConfig(hubspot=hubspot)
    r.check_unknown()
    return cfg


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock(r: Reader, key: str, default: str) -> time:
    value = r.raw(key, default)
    text = value if isinstance(value, str) else ""
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads an unquoted 08:00 as 480 minutes
        text = f"{value // 60:02d}:{value % 60:02d}" if 0 <= value < 24 * 60 else ""
    m = _CLOCK_RE.match(text)
    if not m:
        r.problem(key, f"expected a time of day like \"09:00\", got {value!r}")
        return time.fromisoformat(default)
    return time(int(m.group(1)), int(m.group(2)))


def _weekday(r: Reader, key: str, value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower()[:3] in _DAYS:
        return _DAYS.index(value.strip().lower()[:3])
    r.problem(key, f"expected a day of the week like mon, got {value!r}")
    return None


def _business_hours(r: Reader) -> BusinessHours:
    zone = r.string("timezone", "UTC")
    if _zone(zone) is None:
        r.problem("timezone", f"unknown time zone {zone!r} (an IANA name like Europe/Berlin)")
    days = r.raw("days", list(_DAYS[:5]))
    if not isinstance(days, list) or not days:
        r.problem("days", "expected a non-empty list of days like [mon, tue, wed, thu, fri]")
        days = list(_DAYS[:5])
    numbers = [_weekday(r, f"days[{i}]", d) for i, d in enumerate(days)]
    start, end = _clock(r, "start", "09:00"), _clock(r, "end", "17:00")
    if end <= start:
        r.problem("end", f"is not after start ({start:%H:%M})")
    holidays = r.raw("holidays", [])
    if not isinstance(holidays, list):
        r.problem("holidays", "expected a list of dates like 2026-12-24")
        holidays = []
    hr = Reader({f"holidays[{i}]": d for i, d in enumerate(holidays)}, r.base_dir, r.path, r.problems)
    free = tuple(d for i in range(len(holidays)) if (d := _date(hr, f"holidays[{i}]")) is not None)
    r.check_unknown()
    return BusinessHours(zone, tuple(sorted({n for n in numbers if n is not None})), start, end, free)


def _followup(r: Reader) -> FollowupConfig:
    cfg = FollowupConfig(
        enabled=r.boolean("enabled", True),
        business_hours=_business_hours(r.section("business_hours")),
        track_days=r.number("track_days", 14, minimum=1, maximum=365),
        remind_after_hours=r.number("remind_after_hours", 4, minimum=0.25),
        escalate_after_hours=r.number("escalate_after_hours", 24, minimum=0.25),
        escalate_to=r.string("escalate_to", "channel", choices=("channel", "reassign")),
        escalation_channel=r.string("escalation_channel", ""),
    )
    if cfg.escalate_after_hours <= cfg.remind_after_hours:
        r.problem("escalate_after_hours", f"must be more than remind_after_hours ({cfg.remind_after_hours:g})")
    r.check_unknown()
    return cfg


def _report(r: Reader) -> ReportConfig:
    weekly = None
    raw_weekly = r.raw("weekly", None)
    if raw_weekly is not None:
        w = r.section("weekly")
        day = _weekday(w, "day", w.raw("day", "mon"))
        weekly = WeeklyReport(day if day is not None else 0, _clock(w, "time", "08:00"))
        w.check_unknown()
    cfg = ReportConfig(dir=r.path_value("dir", "state/reports"), weekly=weekly,
                       slack_channel=r.string("slack_channel", ""), link_base=r.string("link_base", ""))
    r.check_unknown()
    return cfg


def _operations(metrics_r: Reader, health_r: Reader, alerts_r: Reader) -> OperationsConfig:
    metrics = MetricsConfig(enabled=metrics_r.boolean("enabled", False),
                            address=metrics_r.string("address", "127.0.0.1"),
                            port=metrics_r.integer("port", 9464, minimum=1, maximum=65535))
    health = HealthConfig(max_outbox_age_minutes=health_r.number("max_outbox_age_minutes", 60, minimum=1))
    alerts = AlertsConfig(stuck_after_intervals=alerts_r.integer("stuck_after_intervals", 3, minimum=1),
                          sink_failing_minutes=alerts_r.number("sink_failing_minutes", 30, minimum=1),
                          review_pile_up=alerts_r.integer("review_pile_up", 25, minimum=1),
                          repeat_minutes=alerts_r.number("repeat_minutes", 60, minimum=1))
    for r in (metrics_r, health_r, alerts_r):
        r.check_unknown()
    return OperationsConfig(metrics, health, alerts)


def parse_config(data: Any, source: Path) -> Config:
    """Validate a parsed YAML document; raises ConfigError listing every problem."""
    r = Reader(data, source.parent.resolve())
    company = _company(r.section("company"))
    replies_r = r.section("replies")
    replies = RepliesConfig(templates_dir=replies_r.path_value("templates_dir", str(PACKAGE_DIR / "templates")),
                            from_name=replies_r.string("from_name", ""))
    replies_r.check_unknown()
    cfg = Config(
        source=source,
        company=company,
        mail=_mail(r.section("mail")),
        poll=_poll(r.section("poll")),
        labels=_labels(r.section("labels")),
        prefilter=_prefilter(r.section("prefilter"), company),
        classify=_classify(r.section("classify")),
        routing=_routing(r.section("routing")),
        actions=_actions(r.section("actions")),
        replies=replies,
        audit=_audit(r.section("audit")),
        notify=_notify(r.section("notify")),
        crm=_crm(r.section("crm")),
        state_dir=r.path_value("state_dir", "state"),
        log_level=r.string("log_level", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        log_format=r.string("log_format", "text", choices=("text", "json")),
        operations=_operations(r.section("metrics"), r.section("health"), r.section("alerts")),
        followup=_followup(r.section("followup")),
        report=_report(r.section("report")),
    )
    r.check_unknown()
    if r.problems:
        raise ConfigError(r.problems, str(source))
    return cfg


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents nested deeper than MAX_DEPTH while it composes them (its composer
    recurses per level: 1,000 levels are a RecursionError) and keeping the path it is at, for the message."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.path: list[str] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if len(self.path) >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise ConfigError([f"{_path_text(self.path)}: nested more than {MAX_DEPTH} levels deep "
                               f"(line {mark.line + 1})"])
        self.path.append(f"[{index}]" if isinstance(index, int) else
                         Reader.key_text(index.value) if isinstance(index, yaml.ScalarNode) else "?")
        try:
            return super().compose_node(parent, index)
        finally:
            self.path.pop()


def _path_text(path: list[str]) -> str:
    text = "".join(p if p.startswith("[") else f".{p}" for p in path[1:]).lstrip(".") or "(top level)"
    return text if len(text) <= 200 else text[:199] + "…"


def _expanded(node: yaml.Node, sizes: dict[int, int], open_: set[int]) -> int:
    """Values plus characters under `node` with every alias expanded (each shared node is counted once per use,
    as the parsed data repeats it); an alias that contains itself counts as too large."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_:
        return MAX_EXPANDED + 1
    open_.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded(child, sizes, open_) for child in node.value)
    else:
        size = 1 + sum(_expanded(k, sizes, open_) + _expanded(v, sizes, open_) for k, v in node.value)
    open_.discard(id(node))
    sizes[id(node)] = min(size, MAX_EXPANDED + 1)
    return sizes[id(node)]


def _too_large(node: yaml.Node, path: list[str], sizes: dict[int, int],
               inside: frozenset[int] = frozenset()) -> list[str]:
    """The paths of the mappings' values that expand past MAX_EXPANDED, as deep as a single key holds the excess.
    A mapping that contains itself (through an alias) is named where it starts."""
    if isinstance(node, yaml.MappingNode) and id(node) not in inside:
        inside |= {id(node)}
        found = [p for k, v in node.value if sizes.get(id(v), 0) > MAX_EXPANDED and id(v) not in inside
                 for p in _too_large(v, [*path, Reader.key_text(k.value) if isinstance(k, yaml.ScalarNode) else "?"],
                                     sizes, inside)]
        if found:
            return found
    return [f"{_path_text(['', *path])}: expands to more than {MAX_EXPANDED:,} values and characters through "
            "YAML aliases (&anchor/*alias); write the value out instead"]


def read_yaml(text: str) -> Any:
    """safe_load, bounded: nesting, alias expansion and size are checked before any Python value is built."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        if _expanded(node, sizes, set()) > MAX_EXPANDED:
            raise ConfigError(_too_large(node, [], sizes))
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(path: str | os.PathLike[str]) -> Config:
    source = Path(path)
    try:
        with open(source, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"cannot read the config file: {exc.strerror}"], str(source)) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"the config file is larger than {MAX_CONFIG_BYTES // 1024} KB"], str(source))
    try:
        data = read_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text: {exc.reason} at byte {exc.start}"], str(source)) from None
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(source)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(source)) from None
    return parse_config(data, source)
