"""What the ledger keeps about a message, and the rows and payloads rendered from it for the sinks.

Rows and payloads are rendered when the outbox delivers them, from the ledger, so they carry the draft id,
the CRM id and the notification status known at that moment, and a replay renders the same content.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bot.decide import describe_actions
from bot.followup.audit import answer_fields
from bot.models import Classification, Decision, Email, PrefilterResult
from bot.state import Ledger, MessageRow, classification_to_dict, iso, now_utc

SNIPPET_CHARS = 1500


def message_record(email: Email | None, pre: PrefilterResult | None, c: Classification | None,
                   d: Decision, link: str, error: str = "") -> dict[str, Any]:
    rec: dict[str, Any] = {
        "prefilter": asdict(pre) if pre else None,
        "classification": classification_to_dict(c) if c else None,
        "decision": asdict(d),
        "actions": describe_actions(d),
        "link": link,
        "error": error,
    }
    if email is not None:
        rec["email"] = {
            "from": email.from_addr, "from_name": email.from_name, "reply_to": email.reply_to,
            "subject": email.subject, "date": iso(email.date), "message_id": email.message_id,
            "references": list(email.references), "to": list(email.to), "cc": list(email.cc),
            "body": email.body[:SNIPPET_CHARS], "defects": list(email.defects),
        }
    return rec


def _first_last(name: str | None) -> tuple[str, str]:
    parts = (name or "").split()
    if not parts:
        return "", ""
    return parts[0], " ".join(parts[1:])


_DETAIL_LABELS = {"product_interest": "product", "budget": "budget USD/year", "timeline": "timeline",
                  "region": "region", "required_action": "action"}


def details(classification: dict[str, Any]) -> str:
    """The extracted lead details in one line, leaving out what the mail did not say."""
    fields = classification.get("fields") or {}
    return "; ".join(f"{label}: {fields[key]}" for key, label in _DETAIL_LABELS.items()
                     if fields.get(key) not in (None, "", "unknown"))


SUMMARY_CHARS = 140


def summary_of(rec: dict[str, Any]) -> str:
    """The LLM's summary when there is one, else the start of the mail's own text, on one line."""
    c = rec.get("classification") or {}
    if c.get("summary"):
        return str(c["summary"])
    text = " ".join(str((rec.get("email") or {}).get("body", "")).split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def audit_row(ledger: Ledger, row: MessageRow) -> dict[str, Any]:
    rec = row.record
    em = rec.get("email") or {}
    c = rec.get("classification") or {}
    d = rec.get("decision") or {}
    pre = rec.get("prefilter") or {}
    usage = c.get("usage") or {}
    assignee = (d.get("assignee") or {}).get("email", "")
    return {
        "processed_at": row.decided_at,
        "received_at": em.get("date", "") or row.received_at,
        "message_id": row.message_id or em.get("message_id", ""),
        "thread_id": row.thread_id,
        "provider_id": row.provider_id,
        "from": em.get("from", ""),
        "from_name": em.get("from_name", ""),
        "company": c.get("company") or "",
        "subject": em.get("subject", ""),
        "language": c.get("language") or "",
        "category": row.category,
        "confidence": f"{c['confidence']:.2f}" if "confidence" in c else "",
        "classifier": c.get("classifier", ""),
        "prefilter": pre.get("rule") or "",
        "review": "yes" if row.review else "",
        "actions": "; ".join(rec.get("actions", ())),
        "assignee": assignee,
        "cc": ", ".join(d.get("cc", ())),
        "pool": d.get("pool") or "",
        "draft_id": ledger.effect_result(row.provider_id, "draft"),
        "notification": ledger.outbox_result(row.provider_id, "notify:"),
        "crm_id": ledger.outbox_result(row.provider_id, "crm:"),
        "summary": summary_of(rec),
        "details": details(c),
        "reasons": " | ".join(d.get("reasons", ())),
        "error": rec.get("error", "") or row.last_error,
        "llm_tokens": str(int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))),
        "llm_cost_usd": f"{float(usage.get('cost_usd', 0.0)):.6f}",
        "link": rec.get("link", ""),
        "correction": "",
        **answer_fields(ledger, row.provider_id),
    }


def _reply_to(rec: dict[str, Any]) -> str:
    """The lead's address: where the draft went; before decisions named it, Reply-To or From."""
    em = rec.get("email") or {}
    return str((rec.get("decision") or {}).get("reply_to") or em.get("reply_to") or em.get("from", ""))


def notify_payload(ledger: Ledger, row: MessageRow) -> dict[str, Any]:
    rec = row.record
    em = rec.get("email") or {}
    c = rec.get("classification") or {}
    assignee = (rec.get("decision") or {}).get("assignee") or {}
    return {
        "provider_id": row.provider_id,
        "message_id": row.message_id,
        "assignee_email": assignee.get("email", ""),
        "assignee_name": assignee.get("name", ""),
        "slack_id": assignee.get("slack_id"),
        "from_name": c.get("person_name") or em.get("from_name", ""),
        "from_addr": c.get("person_email") or _reply_to(rec),
        "company": c.get("company") or "",
        "subject": em.get("subject", ""),
        "language": c.get("language") or "",
        "summary": summary_of(rec),
        "category": row.category,
        "thread_link": rec.get("link", ""),
        # The draft lives in the thread (Gmail shows it there), so the thread is where "open the draft" leads.
        "draft_link": rec.get("link", "") if ledger.effect_result(row.provider_id, "draft") else "",
    }


def crm_payload(row: MessageRow) -> dict[str, Any]:
    rec = row.record
    em = rec.get("email") or {}
    c = rec.get("classification") or {}
    assignee = (rec.get("decision") or {}).get("assignee") or {}
    first, last = _first_last(c.get("person_name") or em.get("from_name"))
    return {
        "provider_id": row.provider_id,
        "message_id": row.message_id,
        "email": c.get("person_email") or _reply_to(rec),
        "first_name": first,
        "last_name": last,
        "company": c.get("company") or "",
        "company_domain": c.get("company_domain") or "",
        "language": c.get("language") or "",
        "subject": em.get("subject", ""),
        "note": "\n\n".join(p for p in (em.get("subject", ""), c.get("summary") or "", details(c),
                                          em.get("body", "")) if p)[:4000],
        "owner_id": assignee.get("crm_owner_id"),
        "lead_source": "shared inbox",
        "received_at": em.get("date", "") or iso(now_utc()),
    }
