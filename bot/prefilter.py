"""Ordered sender and header rules that run before any classifier; the first rule that matches decides.

Every result names its rule and gives a short sentence that quotes the evidence, for the audit record. Quoted
evidence comes from the message itself, so it is truncated; the sinks escape it for their medium.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from email.utils import parseaddr

from bot.classify import shapes
from bot.classify.extract import is_form_notification
from bot.config import PrefilterConfig
from bot.models import Email, PrefilterResult

SOURCE_HEADER = "x-triage-source"  # set on every draft the bot writes (see MailProvider.create_draft)
EVIDENCE_CHARS = 80

_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})
_BOUNCE_NAME = re.compile(r"\bmail delivery (?:subsystem|system|service)\b", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliver(?:ed|able)\b|delivery status notification|(?:mail )?delivery (?:has )?failed"
    r"|mail delivery (?:failure|failed|problem)|delivery failure|returned mail\b|failure notice\b"
    r"|(?:warning: )?could not send message|unzustellbar|nicht zustellbar|non remis|non distribu[ée]"
    r"|[ée]chec de (?:la )?remise|no se puede entregar|mensaje no entregado|non recapitabile|impossibile recapitare"
    r"|n[ãa]o (?:foi )?entregue|onbestelbaar|niet afgeleverd|non consegnat[oa]|mancato recapito|entrega fallida"
    r"|no entregado|message non d[ée]livr[ée]|falha na entrega|n[ãa]o foi poss[íi]vel entregar|niet bezorgd"
    r"|zustellung fehlgeschlagen|r[üu]ckl[äa]ufer)", re.I)
_OUT_OF_OFFICE = re.compile(
    r"^\W*(?:(?:re|aw|antw|r|sv|fw|fwd|wg|tr|rv)\s*:\s*)*[\[(]?\s*(?:"
    r"out of (?:the )?office|auto(?:matic|matische)?[ -]?(?:reply|response|antwort|respuesta|risposta|resposta)"
    r"|autoreply|abwesenheit(?:snotiz)?|automatische antwort|abwesend|r[ée]ponse automatique|absence\b|absent\b"
    r"|respuesta autom[áa]tica|fuera de (?:la )?oficina|risposta automatica|fuori (?:ufficio|sede)"
    r"|resposta autom[áa]tica|ausente\b|fora do escrit[óo]rio|afwezig|automatisch antwoord|niet aanwezig)", re.I)
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
_NEGATIVE = frozenset({"", "no", "false", "0", "off"})
_LIST_PRECEDENCE = frozenset({"bulk", "list", "junk"})


def _short(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= EVIDENCE_CHARS else value[: EVIDENCE_CHARS - 1] + "…"


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower() if "@" in address else ""


def _in_domains(domain: str, domains: Iterable[str]) -> str | None:
    """The configured domain that `domain` is, or is a subdomain of."""
    return next((d for d in domains if domain == d or domain.endswith("." + d)), None) if domain else None


def _matching_sender(address: str, entries: Iterable[str]) -> str | None:
    """The entry ("someone@x.com" or "@x.com", which also covers subdomains) that the address matches."""
    domain = _domain(address)
    for entry in entries:
        entry = entry.strip().lower()
        if entry.startswith("@") and _in_domains(domain, [entry[1:]]):
            return entry
        if entry and entry == address:
            return entry
    return None


def _header_address(value: str) -> str:
    address = parseaddr(value)[1].lower()
    return address if "@" in address else ""


Rule = Callable[[Email, PrefilterConfig, frozenset[str], str], PrefilterResult | None]


def _ours(address: str, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> str | None:
    """Why an address is one of ours (our domain, a colleague, the shared mailbox), or None."""
    domain = _in_domains(_domain(address), cfg.own_domains)
    if domain:
        return f"is in our domain {domain}"
    if address and (address in {c.lower() for c in colleagues} or address == mailbox.lower()):
        return "is one of our people"
    return None


def own_draft(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> PrefilterResult | None:
    # Anyone can write the header; only mail from one of our addresses is taken at its word.
    if SOURCE_HEADER not in email.headers or _ours(email.from_addr, cfg, colleagues, mailbox) is None:
        return None
    reason = f"header X-Triage-Source: {_short(email.headers[SOURCE_HEADER])}: a draft written by this bot"
    return PrefilterResult("skip", "own_draft", reason=reason)


def internal(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> PrefilterResult | None:
    why = _ours(email.from_addr, cfg, colleagues, mailbox)
    # Website forms send from our own domain with the customer in Reply-To or only in the form's fields: that is
    # mail from a customer, not our own.
    if why is None or (email.reply_to and _ours(email.reply_to, cfg, colleagues, mailbox) is None) \
            or is_form_notification(email, cfg.own_domains):
        return None
    return PrefilterResult("skip", "internal", reason=f"sender {_short(email.from_addr)} {why}")


def allow_list(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> PrefilterResult | None:
    entry = _matching_sender(email.from_addr, cfg.allow_senders)
    if entry is None:
        return None
    return PrefilterResult("classify", "allow_list", reason=f"sender {_short(email.from_addr)} is allowed ({entry})")


def block_list(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> PrefilterResult | None:
    entry = _matching_sender(email.from_addr, cfg.block_senders)
    if entry is None:
        return None
    reason = f"sender {_short(email.from_addr)} is blocked ({entry})"
    return PrefilterResult("category", "block_list", "spam", reason)


def bounce(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> PrefilterResult | None:
    ctype = email.headers.get("content-type", "").lower()
    local = email.from_addr.partition("@")[0]
    if "multipart/report" in ctype and "delivery-status" in ctype:
        reason = f"header Content-Type: {_short(email.headers['content-type'])}"
    elif local in _BOUNCE_SENDERS or _BOUNCE_NAME.search(email.from_name):
        reason = f"sender {_short(email.from_name + ' <' + email.from_addr + '>')} is a mail system"
    elif _BOUNCE_SUBJECT.search(email.subject):
        reason = f'subject "{_short(email.subject)}" is a delivery failure notice'
    else:
        return None
    return PrefilterResult("category", "bounce", "other", reason)


def auto_reply(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> PrefilterResult | None:
    headers = email.headers
    submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    auto_header = next((h for h in _AUTO_HEADERS if headers.get(h, "").strip().lower() not in _NEGATIVE), None)
    # X-Auto-Response-Suppress is not evidence: Outlook puts it on ordinary mail too.
    # RFC 3834: "auto-replied" answers a message (absence notices, vacation replies); "auto-generated" is any
    # machine-made mail, a website form or a procurement portal relaying a buyer's request among them: that one
    # is for the classifier to judge.
    if submitted and submitted not in ("no", "auto-generated"):
        reason = f"header Auto-Submitted: {_short(headers['auto-submitted'])}"
    elif auto_header:
        reason = f"header {auto_header.title()}: {_short(headers[auto_header])}"
    elif headers.get("precedence", "").strip().lower() == "auto_reply":
        reason = "header Precedence: auto_reply"
    elif _OUT_OF_OFFICE.search(email.subject) or _custom_subject(email.subject, cfg.auto_reply_subjects):
        reason = f'subject "{_short(email.subject)}" is an automatic reply'
    elif (body := shapes.out_of_office(email)) is not None:
        reason = body
    else:
        return None
    return PrefilterResult("category", "auto_reply", "other", reason)


def read_receipt(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str],
                 mailbox: str) -> PrefilterResult | None:
    why = shapes.read_receipt(email)
    return PrefilterResult("category", "read_receipt", "other", _short(why)) if why else None


def _custom_subject(subject: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        try:
            if re.search(pattern, subject, re.I):
                return True
        except re.error:  # config validation rejects bad patterns; a rule must still never raise
            continue
    return False


def marketing_domain(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str],
                     mailbox: str) -> PrefilterResult | None:
    candidates = (("sender", email.from_addr), ("Return-Path", _header_address(email.headers.get("return-path", ""))),
                  ("Sender", _header_address(email.headers.get("sender", ""))))
    for what, address in candidates:
        domain = _in_domains(_domain(address), cfg.marketing_domains)
        if domain:
            reason = f"{what} {_short(address)} is in the marketing domain {domain}"
            return PrefilterResult("category", "marketing_domain", "newsletter", reason)
    return None


def list_mail(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str], mailbox: str) -> PrefilterResult | None:
    headers = email.headers
    for name, label in (("list-id", "List-Id"), ("list-unsubscribe", "List-Unsubscribe")):
        if name in headers:
            return PrefilterResult("hint", "list_mail", "newsletter", f"header {label}: {_short(headers[name])}")
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in _LIST_PRECEDENCE:
        return PrefilterResult("hint", "list_mail", "newsletter", f"header Precedence: {precedence}")
    if email.bulk_footer:
        return PrefilterResult("hint", "bulk_footer", "newsletter", f"unsubscribe footer: {_short(email.bulk_footer)}")
    return None


RULES: tuple[Rule, ...] = (own_draft, internal, allow_list, block_list, bounce, read_receipt, auto_reply,
                           marketing_domain, list_mail)
# An allow-listed sender is classified normally: the rules after allow_list never see it.


def prefilter(email: Email, cfg: PrefilterConfig, colleagues: frozenset[str] = frozenset(),
              mailbox: str = "") -> PrefilterResult:
    """The first matching rule's result, or outcome "classify" when none matches."""
    for rule in RULES:
        result = rule(email, cfg, colleagues, mailbox)
        if result is not None:
            return result
    return PrefilterResult("classify", reason="no pre-filter rule matched")
