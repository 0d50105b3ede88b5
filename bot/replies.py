"""Reply drafts: a template per category and language, rendered into a properly threaded RFC 5322 reply.

Templates live in `replies.templates_dir` as `<category>.<language>.txt` (string.Template syntax) and fall
back to English. Values from the mail are substituted into the template, never the other way round, so mail
text cannot inject template syntax. The draft is never sent: the bot only stores it.
"""

from __future__ import annotations

import re
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


def reply_subject(subject: str) -> str:
    """"Re: " + the original Subject, unchanged: Gmail threads a draft only when its subject matches the thread's.

    A subject that already starts with a reply prefix (Re:, RE:, AW:, SV:, Antw:, Rif:, R:) is kept as it is,
    as mail clients do, rather than doubled into "Re: Re:".
    """
    return subject if re.match(r"(?i)^\s*(re|aw|sv|antw|rif|r)\s*:", subject) else f"Re: {subject}"


def reply_address(cfg: Config, email: Email) -> str | None:
    """Where a reply goes: the person who filled in a web form (never the form service or our own website), else
    Reply-To or From; None when there is nobody to answer (a no-reply sender, a form without an address)."""
    if is_form_notification(email, cfg.company.domains):
        return form_contact(email, cfg.company.domains)
    address = email.reply_to or email.from_addr
    return None if not address or is_automated_sender(address) else address  # a no-reply address reads nothing


def build_reply(cfg: Config, email: Email, d: Decision, person_name: str | None = None,
                language: str | None = None) -> bytes:
    """The raw MIME of the reply draft: To = reply_address(), CC from the pool, threaded headers."""
    msg = EmailMessage()
    msg["From"] = formataddr((cfg.replies.from_name or cfg.company.name, cfg.company.mailbox))
    msg["To"] = reply_address(cfg, email) or ""
    if d.cc:
        msg["Cc"] = ", ".join(d.cc)
    msg["Subject"] = reply_subject(email.subject_header or email.subject)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=cfg.company.mailbox.rpartition("@")[2] or None)
    msg["In-Reply-To"] = email.message_id
    refs = [r for r in email.references if r != email.message_id]
    if len(refs) > MAX_REFERENCES - 1:
        # Keep the thread's root (mail clients thread on it) and the most recent ancestors.
        refs = [refs[0], *refs[-(MAX_REFERENCES - 2):]]
    msg["References"] = " ".join([*refs, email.message_id])
    msg[SOURCE_HEADER] = email.message_id
    msg.set_content(render_body(cfg, email, d, person_name, language))
    # At the default 78 columns the email package folds a Message-ID longer than a line (Outlook's often are)
    # into RFC 2047 encoded-words: the reply no longer threads, and X-Triage-Source no longer matches the
    # source, so a retry after a crash would not find this draft. 998 is RFC 5322's hard line limit.
    return msg.as_bytes(policy=msg.policy.clone(max_line_length=998))
