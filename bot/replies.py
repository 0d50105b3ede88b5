"""Reply drafts: a template per category and language, rendered into a properly threaded RFC 5322 reply.

Templates live in `replies.templates_dir` as `<category>.<language>.txt` (string.Template syntax) and fall
back to English. Values from the mail are substituted into the template, never the other way round, so mail
text cannot inject template syntax. The draft is never sent: the bot only stores it.
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from string import Template

from bot.classify.extract import form_contact, is_automated_sender, is_form_notification
from bot.config import Config
from bot.models import Decision, Email

SOURCE_HEADER = "X-Triage-Source"
MAX_REFERENCES = 20

# (with a first name, without one) per language.
GREETINGS: dict[str, tuple[str, str]] = {
    "en": ("Hello {name},", "Hello,"),
    "de": ("Hallo {name},", "Guten Tag,"),
    "fr": ("Bonjour {name},", "Bonjour,"),
    "es": ("Hola {name}:", "Hola:"),
    "it": ("Buongiorno {name},", "Buongiorno,"),
    "pt": ("Olá {name},", "Olá,"),
    "nl": ("Beste {name},", "Goedendag,"),
}
_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "herr", "frau", "mme", "m", "mlle", "sr", "sra", "srta", "dott",
           "dottssa", "ing", "eng", "dipl", "mag", "sig", "sigra", "don", "doña", "dona", "dhr", "mevr"}
_NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'\-]*$")
_NOT_A_PERSON = re.compile(r"(?i)\b(gmbh|ltd|inc|llc|ag|sarl|sas|s\.?l\.?|s\.?p\.?a|team|sales|info|support|"
                           r"service|noreply|no-reply|office|admin|newsletter|kontakt|contact)\b")


def first_name(name: str | None) -> str | None:
    """The first name to greet, or None when the display name is not clearly a person's."""
    if not name or "@" in name or _NOT_A_PERSON.search(name):
        return None
    if "," in name:  # "Weber, Jürgen"
        last, _, rest = name.partition(",")
        name = f"{rest} {last}"
    words = [w for w in name.replace(".", " ").split() if w.lower() not in _TITLES]
    if len(words) < 1 or not _NAME_WORD.match(words[0]) or len(words[0]) < 2:
        return None
    word = words[0]
    return word if not word.isupper() else word.capitalize()


@lru_cache(maxsize=64)
def _template(path: Path) -> Template | None:
    try:
        return Template(path.read_text(encoding="utf-8"))
    except OSError:
        return None


def template_for(templates_dir: Path, category: str, language: str | None) -> tuple[Template, str]:
    """(template, language used): the mail's language when a template exists, else English."""
    for lang in dict.fromkeys([language or "en", "en"]):
        t = _template(templates_dir / f"{category}.{lang}.txt")
        if t is not None:
            return t, lang
    raise FileNotFoundError(f"no reply template {category}.en.txt in {templates_dir}")


def render_body(cfg: Config, email: Email, d: Decision, person_name: str | None, language: str | None) -> str:
    t, lang = template_for(cfg.replies.templates_dir, d.category, language)
    name = first_name(person_name) or first_name(email.from_name)
    with_name, without = GREETINGS.get(lang, GREETINGS["en"])
    greeting = with_name.format(name=name) if name else without
    assignee = d.assignee
    return t.safe_substitute(
        greeting=greeting, first_name=name or "", assignee_name=assignee.name if assignee else "",
        assignee_email=assignee.email if assignee else "", company_name=cfg.company.name,
        subject=email.subject)


def is_ours(cfg: Config, address: str) -> bool:
    """One of our own addresses: our domains and their subdomains, the shared mailbox, our people, colleagues."""
    address = address.strip().lower()
    domain = address.rpartition("@")[2].rstrip(".")
    if any(domain == d or domain.endswith("." + d) for d in cfg.company.domains):
        return True
    return address in {cfg.company.mailbox, *cfg.routing.colleagues, *cfg.routing.people()}


def usable_address(address: str) -> str:
    """The address as a draft can carry it ("" if it cannot): one plain ASCII addr-spec, the domain in IDNA.

    An encoded word is never part of an address (RFC 2047 section 5); one that decodes to an address is refused
    rather than guessed at.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or "=?" in address or len(address) > 254:
        return ""
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
        parsed = Address(addr_spec=f"{local}@{domain}")
    except Exception:  # the email package raises ValueError, IndexError... on malformed addr-specs
        return ""
    spec = parsed.addr_spec.lower()
    return spec if spec.isascii() and not any(c.isspace() or ord(c) < 32 for c in spec) else ""


def reply_address(cfg: Config, email: Email) -> tuple[str, str]:
    """(the address a reply goes to, "") or ("", why there is none).

    A web form (from our own website or a form service) is answered to the address the customer typed into it,
    never to the service. Otherwise Reply-To when it is a usable outside address, else From when that is one. An
    address of ours is never used: a draft to the shared mailbox or a colleague would be a mail loop the moment
    someone presses Send; a no-reply address reads nothing.
    """
    if is_form_notification(email, cfg.company.domains):
        contact = usable_address(form_contact(email, cfg.company.domains) or "")
        return (contact, "") if contact and not is_ours(cfg, contact) else ("", "a web form without the customer's "
                                                                                 "address")
    why = "no usable address to reply to"
    for header, address in (("Reply-To", email.reply_to), ("From", email.from_addr)):
        usable = usable_address(address) if address else ""
        if usable and is_automated_sender(usable):
            why = f"{header} {usable} is a no-reply address"
        elif usable and not is_ours(cfg, usable):
            return usable, ""
        elif usable:
            why = f"the only reply address is one of ours ({header} {usable})"
    return "", why


def reply_subject(subject: str) -> str:
    """"Re: " + the original Subject, unchanged: Gmail threads a draft only when its subject matches the thread's.

    A subject that already starts with a reply prefix (Re:, RE:, AW:, SV:, Antw:, Rif:, R:) is kept as it is,
    as mail clients do, rather than doubled into "Re: Re:".
    """
    return subject if re.match(r"(?i)^\s*(re|aw|sv|antw|rif|r)\s*:", subject) else f"Re: {subject}"


def writable_subject(subject: str) -> str:
    """The subject as given, unless the email package cannot write it: a literal "=?...?=" that reads as a broken
    RFC 2047 encoded word makes it fail. Then a word joiner after each "=" keeps that text from being decoded."""
    try:
        probe = EmailMessage()
        probe["Subject"] = subject
        probe.as_bytes(policy=probe.policy.clone(max_line_length=998))
        return subject
    except Exception:  # IndexError, UnicodeEncodeError... from deep inside the header folder
        return subject.replace("=?", "=\u2060?")


def build_reply(cfg: Config, email: Email, d: Decision, person_name: str | None = None,
                language: str | None = None) -> bytes:
    """The raw MIME of the reply draft: To = the decision's reply address, CC from the pool, threaded headers."""
    msg = EmailMessage()
    msg["From"] = formataddr((cfg.replies.from_name or cfg.company.name, cfg.company.mailbox))
    to = d.reply_to or reply_address(cfg, email)[0]
    if not to:
        raise ValueError("no address to reply to")  # decide() sends such mail to review before any draft
    msg["To"] = to
    if d.cc:
        msg["Cc"] = ", ".join(d.cc)
    msg["Subject"] = writable_subject(reply_subject(email.subject_header or email.subject))
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=cfg.company.mailbox.rpartition("@")[2] or None)
    msg["In-Reply-To"] = email.message_id
    refs = [r for r in email.references if r != email.message_id]
    if len(refs) > MAX_REFERENCES - 1:
        # Keep the thread's root (mail clients thread on it) and the most recent ancestors.
        refs = [refs[0], *refs[-(MAX_REFERENCES - 2):]]
    msg["References"] = " ".join([*refs, email.message_id])
    msg[SOURCE_HEADER] = email.provider_id  # identity: two mails may carry one Message-ID, never one mailbox id
    msg.set_content(render_body(cfg, email, d, person_name, language))
    # At the default 78 columns the email package folds a Message-ID longer than a line (Outlook's often are)
    # into RFC 2047 encoded-words, and the reply no longer threads. 998 is RFC 5322's hard line limit.
    return msg.as_bytes(policy=msg.policy.clone(max_line_length=998))
