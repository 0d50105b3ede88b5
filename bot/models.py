"""Plain data passed between the pipeline stages; no service types in here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CATEGORIES: tuple[str, ...] = (
    "lead",
    "support",
    "accounting",
    "vendor",
    "job_applicant",
    "newsletter",
    "spam",
    "other",
)
# Categories whose mail may be trashed after the grace period.
DISPOSABLE: frozenset[str] = frozenset({"spam", "newsletter"})


@dataclass(frozen=True)
class MessageRef:
    """A message as the mail provider lists it, before its content is read."""

    provider_id: str
    thread_id: str
    labels: frozenset[str] = frozenset()
    internal_date: datetime | None = None


class HeadersOnly(bytes):
    """What a mail provider hands out instead of a message too large to read (mail.max_message_bytes): its header
    block, with `size`, the size of the whole message in bytes."""

    size: int

    def __new__(cls, header_block: bytes, size: int) -> HeadersOnly:
        made = super().__new__(cls, header_block)
        made.size = size
        return made


@dataclass(frozen=True)
class Attachment:
    filename: str  # sanitized display name; never used as a path
    content_type: str
    size: int


@dataclass(frozen=True)
class Email:
    """One inbound message, parsed and cleaned. Every text field is untrusted data."""

    provider_id: str
    thread_id: str
    message_id: str  # RFC 5322 Message-ID with angle brackets; synthesized if missing
    from_addr: str  # lower-cased address, "" if unparseable
    from_name: str
    reply_to: str  # lower-cased address or ""
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None  # timezone-aware UTC
    in_reply_to: str
    references: tuple[str, ...]
    headers: dict[str, str]  # lower-case name -> decoded value (first occurrence), for rules
    body: str  # cleaned text: quotes, signatures and legal footers removed
    text: str  # subject + first N characters of body, what classifiers read
    quoted: str  # the quoted previous message(s), kept for minimal thread context
    signature: str = ""  # the sender's signature block (names, company, phone), cut from body
    bulk_footer: str = ""  # an unsubscribe line at the end of the sender's own text: sign of mail sent to a list
    html_only: bool = False
    attachments: tuple[Attachment, ...] = ()
    raw_size: int = 0
    links: tuple[tuple[str, str], ...] = ()  # (visible text, target) of links in the mail, for the phishing rules
    defects: tuple[str, ...] = ()  # parse problems; non-empty and no usable text -> review
    subject_header: str = ""  # the Subject as written (decoded, unfolded, nothing else changed): what a reply repeats
    headers_only: bool = False  # too large to read: only its headers were (raw_size is the whole message's size)


@dataclass(frozen=True)
class PrefilterResult:
    """What the ordered sender/header rules concluded.

    outcome:
      "skip"     - not triaged at all (our own mail, our own drafts); recorded and labelled processed
      "category" - the rule decides the category on its own (blocked sender -> spam, bounce -> other, ...)
      "hint"     - bulk/list mail: the classifier still runs, but only to tell spam from newsletter
                   or to flag a business mail that arrived through a list (-> review)
      "classify" - no rule matched (or the sender is allow-listed): classify normally
    """

    outcome: str
    rule: str | None = None
    category: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Usage:
    """LLM usage of one classification (zero for offline classifiers)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    failed: int = 0  # calls that got no answer (timeout, connection or HTTP error), so no token count


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float  # 0..1
    language: str | None  # ISO 639-1, None when unsure
    classifier: str  # "offline", "llm:<model>", "prefilter", "cache:<classifier>"
    person_name: str | None = None
    person_email: str | None = None
    company: str | None = None
    company_domain: str | None = None
    technical_rfq: bool = False
    summary: str | None = None
    reasons: tuple[str, ...] = ()
    review_reason: str | None = None  # set -> review regardless of confidence
    review_doubt: bool = False  # the review reason is the classifier's own doubt: a second opinion (LLM) may settle it
    fields: dict[str, Any] = field(default_factory=dict)  # product_interest, budget, timeline, ...
    usage: Usage = Usage()
    phishing: str | None = None  # the phishing signals that fired, in words; set -> never handled as business mail


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    slack_id: str | None = None
    crm_owner_id: str | None = None


@dataclass(frozen=True)
class Assignment:
    assignee: Person | None
    cc: tuple[str, ...]
    pool: str | None
    reason: str


@dataclass(frozen=True)
class Decision:
    """Everything the bot will do with one message; pure data, computed before any side effect."""

    category: str
    review: bool
    action: str  # short summary: draft+assign, assign, label, trash_later, review, skip
    labels: tuple[str, ...]  # label names to add (processed label included)
    archive: bool
    draft: bool
    trash_after_hours: float | None
    notify: bool
    crm: bool
    assignee: Person | None = None
    cc: tuple[str, ...] = ()
    pool: str | None = None
    reasons: tuple[str, ...] = ()
    reply_to: str = ""  # where the draft goes: an outside address (never one of ours), "" without a draft


# Columns of the audit record (CSV and sheet), in order. One row per message.
AUDIT_FIELDS: tuple[str, ...] = (
    "processed_at",  # ISO 8601 UTC
    "received_at",  # ISO 8601 UTC
    "message_id",
    "thread_id",
    "provider_id",
    "from",
    "from_name",
    "company",
    "subject",
    "language",
    "category",
    "confidence",
    "classifier",
    "prefilter",  # rule name or ""
    "review",  # "yes" / ""
    "actions",  # e.g. "draft, assign, label Triage/Lead, archive"
    "assignee",
    "cc",
    "pool",
    "draft_id",
    "notification",
    "crm_id",
    "summary",
    "details",  # what the LLM extracted: product interest, budget, timeline, region, required action
    "reasons",
    "error",
    "llm_tokens",
    "llm_cost_usd",
    "link",  # web link to the thread (Gmail) or the file (Maildir)
    "correction",  # left empty by the bot; a person may write a category here
    # Filled in later on the same row (bot.followup): the first answer from our side, and the follow-up.
    "answered_at",  # ISO 8601 UTC
    "answered_by",  # the address that answered
    "response_hours",  # business hours from arrival to the answer (followup.business_hours)
    "response_hours_wall",  # wall-clock hours from arrival to the answer
    "followup",  # reminders, escalation, reassignment, promotion from review, "no answer within N days"
)
# The columns of the first layout: an audit tab made before the later columns existed gets those appended.
AUDIT_FIELDS_V1: tuple[str, ...] = AUDIT_FIELDS[: AUDIT_FIELDS.index("correction") + 1]
