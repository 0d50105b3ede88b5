"""The composition root: the only module that picks concrete adapters from the config."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from bot.config import PACKAGE_DIR, Config
from bot.pipeline import Services
from bot.ports import AuditSink, Classifier, Crm, MailProvider, Notifier
from bot.state import Ledger, StateError, prepare_state_dir

GOLD_DIR = PACKAGE_DIR / "data" / "gold"

log = logging.getLogger("bot.bootstrap")


def open_ledger(cfg: Config) -> Ledger:
    """The ledger under state/, checked for damage first (StateError: the bot must not act without it)."""
    prepare_state_dir(cfg.state_dir)
    ledger = Ledger(cfg.state_dir / "ledger.sqlite3")
    ledger.verify()
    return ledger


def build_classifier(cfg: Config, ledger: Ledger | None) -> Classifier:
    from bot.classify.cascade import CascadeClassifier
    from bot.classify.offline import load_or_train

    offline = load_or_train(cfg.classify.model_path, GOLD_DIR, languages=cfg.classify.languages,
                            default_language=cfg.classify.default_language, text_chars=cfg.classify.text_chars,
                            own_names=(cfg.company.name,), own_domains=cfg.company.domains)
    llm = None
    if cfg.classify.llm.enabled:
        from bot.adapters.openai_llm import LlmClassifier

        llm = LlmClassifier(cfg.classify.llm, company=cfg.company.name, text_chars=cfg.classify.text_chars)
    return CascadeClassifier(offline, llm, ledger if ledger is not None else _NoMemory(), cfg.classify.llm,
                             threshold=cfg.classify.threshold)


class _NoMemory:
    """For stateless commands (classify, eval): no spend recorded, no thread cache."""

    def llm_spent_usd(self, day: str) -> float:
        return 0.0

    def recent_thread_classification(self, thread_id: str, hours: float) -> None:
        return None


def google_scopes(cfg: Config) -> list[str]:
    from bot.adapters.gmail_auth import scopes

    return scopes(sheets=cfg.audit.sheets.enabled and not cfg.audit.sheets.credentials_file)


def build_mail(cfg: Config, ledger: Ledger) -> MailProvider:
    if cfg.mail.provider == "gmail":
        from bot.adapters.gmail import GmailProvider
        from bot.adapters.gmail_auth import load_credentials

        creds = load_credentials(cfg.mail.gmail, google_scopes(cfg))
        return GmailProvider(cfg.mail.gmail, creds, cfg.labels, ledger, max_message_bytes=cfg.mail.max_message_bytes)
    from bot.adapters.maildir import MaildirProvider, seed_maildir

    if cfg.mail.maildir.seed and not cfg.mail.maildir.path.exists():
        try:
            n = seed_maildir(cfg.mail.maildir.path, cfg.mail.maildir.seed)
        except FileNotFoundError:
            raise
        except OSError as exc:  # a full or read-only disk: the state cannot be written, exit 3
            raise StateError(f"cannot create the maildir {cfg.mail.maildir.path} from {cfg.mail.maildir.seed} "
                             f"({exc.strerror or exc}); free disk space or fix permissions, nothing was processed"
                             ) from None
        log.info("created %s with %d demo messages from %s", cfg.mail.maildir.path, n, cfg.mail.maildir.seed)
    return MaildirProvider(cfg.mail.maildir.path, processed_label=cfg.labels.processed,
                           max_message_bytes=cfg.mail.max_message_bytes)


def build_notifiers(cfg: Config) -> list[Notifier]:
    from bot.adapters.console import ConsoleNotifier

    notifiers: list[Notifier] = [ConsoleNotifier()] if cfg.notify.console else []
    if cfg.notify.slack.enabled:
        from bot.adapters.slack import SlackNotifier

        notifiers.append(SlackNotifier(cfg.notify.slack, cfg.routing.people()))
    return notifiers


def build_sinks(cfg: Config) -> tuple[list[AuditSink], list[Notifier], list[Crm]]:
    from bot.adapters.csv_audit import CsvAuditSink

    audit: list[AuditSink] = [CsvAuditSink(cfg.audit.csv_path)]
    notifiers = build_notifiers(cfg)
    crms: list[Crm] = []
    if cfg.audit.sheets.enabled:
        from bot.adapters.sheets import SheetsAuditSink, sheets_credentials

        audit.append(SheetsAuditSink(cfg.audit.sheets, sheets_credentials(cfg)))
    if cfg.crm.hubspot.enabled:
        from bot.adapters.hubspot import HubspotCrm

        crms.append(HubspotCrm(cfg.crm.hubspot))
    return audit, notifiers, crms


def thread_link(cfg: Config) -> object:
    if cfg.mail.provider == "gmail":
        return lambda provider_id, thread_id: f"https://mail.google.com/mail/u/0/#all/{thread_id}"
    root = Path(cfg.mail.maildir.path)
    return lambda provider_id, thread_id: f"maildir:{root}#{provider_id}"


def build_services(cfg: Config) -> Services:
    ledger = open_ledger(cfg)
    audit, notifiers, crms = build_sinks(cfg)
    return Services(cfg=cfg, mail=build_mail(cfg, ledger), classifier=build_classifier(cfg, ledger), ledger=ledger,
                    audit_sinks=audit, notifiers=notifiers, crms=crms, link=thread_link(cfg))  # type: ignore[arg-type]


def build_dry_run_services(cfg: Config, scratch: Path) -> Services:
    """Services for --dry-run, which must create and change nothing under state/: an existing ledger is read
    (every transaction rolls back), a missing one is kept in memory; a demo maildir that does not exist yet is
    seeded into `scratch` (a temporary folder) instead."""
    path = cfg.state_dir / "ledger.sqlite3"
    ledger = Ledger(path) if path.exists() else Ledger(None)
    md = cfg.mail.maildir
    if cfg.mail.provider == "maildir" and not md.path.exists():
        from bot.adapters.maildir import MaildirProvider, seed_maildir

        if md.seed:
            seed_maildir(scratch / "maildir", md.seed)
        mail: MailProvider = MaildirProvider(scratch / "maildir", processed_label=cfg.labels.processed)
    else:
        mail = build_mail(cfg, ledger)
    _, notifiers, crms = build_sinks(cfg)  # named in the actions it prints; a dry run delivers nothing
    return Services(cfg=cfg, mail=mail, classifier=build_classifier(cfg, ledger), ledger=ledger, notifiers=notifiers,
                    crms=crms, link=thread_link(cfg))  # type: ignore[arg-type]


def alert_team(cfg: Config, text: str, notifiers: Sequence[Notifier] | None = None) -> str:
    """Tell the team the bot needs a person, through every notifier that can raise an alert (Slack's fallback
    channel); returns what became of the alert in a few words ("" when no notifier can raise one); never raises.

    The running bot passes its own notifiers. Without them they are built alone, never the audit sinks or the CRM,
    so the alert goes out when the Gmail token (which the sheet may share) is what was lost. The log line is the
    caller's, with `text` and what this returns on it: one line for the person reading the console.
    """
    if notifiers is None:
        try:
            notifiers = build_notifiers(cfg)
        except Exception as exc:  # the config names a notifier that cannot even be built: the log line must do
            return f"no team alert: the notifiers could not be built ({type(exc).__name__})"
    outcome: list[str] = []
    for notifier in notifiers:
        alert = getattr(notifier, "alert", None)
        if alert is None:
            continue
        try:
            where = alert(text)
        except Exception as exc:
            outcome.append(f"the team alert through {notifier.name} failed ({type(exc).__name__})")
            continue
        if where:
            outcome.append(f"the team was alerted in {where}")
    return "; ".join(outcome)
