"""`python run.py audit search`: find decisions in the local record, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from bot.config import Config
from bot.health import ago
from bot.models import AUDIT_FIELDS, CATEGORIES
from bot.records import audit_row
from bot.state import Ledger, now_utc

TABLE_WIDTH = 100
# column -> (minimum, maximum) width in the table; the subject takes what is left of TABLE_WIDTH
TABLE_COLUMNS: dict[str, tuple[int, int]] = {
    "received": (16, 16), "from": (12, 24), "category": (8, 13), "assignee": (8, 16), "subject": (10, 200)}
# --unanswered: how long each has waited instead of the category (a lead or review mail), and room for the address
UNANSWERED_COLUMNS: dict[str, tuple[int, int]] = {
    "received": (16, 16), "waiting": (7, 8), "from": (12, 34), "assignee": (8, 16), "subject": (10, 200)}


class SearchError(ValueError):
    """A filter that cannot match anything as written (an unknown category, a person not in the pools)."""


@dataclass(frozen=True)
class Filters:
    sender: str = ""
    category: str = ""
    assignee: str = ""  # a name or an address; matched against the assignee's address
    since: datetime | None = None  # on the received time
    text: str = ""
    unanswered: bool = False  # leads and review mail nobody of ours has answered yet
    arrived_before: datetime | None = None  # with unanswered: waiting since before this


def category_of(text: str) -> str:
    """A category name as typed (any case, "Job applicant" too) -> its canonical form; SearchError if unknown."""
    name = "_".join(text.strip().lower().replace("-", " ").split())
    if name in CATEGORIES or name == "review":
        return name
    raise SearchError(f"unknown category {text!r}; choose one of {', '.join(CATEGORIES)} (or review)")


def assignee_addresses(cfg: Config, text: str) -> set[str]:
    """The addresses of everyone in the pools whose name or address contains `text` (any case)."""
    needle = text.strip().lower()
    found = {email for email, person in cfg.routing.people().items()
             if needle in email.lower() or needle in person.name.lower()}
    if not found:
        raise SearchError(f"nobody in routing.pools is called or addressed {text!r}")
    return found


def search(cfg: Config, ledger: Ledger, f: Filters) -> Iterator[dict[str, Any]]:
    """Audit rows of the decisions that match every given filter, oldest received first."""
    category = category_of(f.category) if f.category else ""
    people = assignee_addresses(cfg, f.assignee) if f.assignee else set()
    since = f.since.isoformat(timespec="seconds") if f.since else ""
    waiting = _waiting(ledger, f.arrived_before) if f.unanswered else None
    rows = []
    for m in ledger.iter_messages():
        if waiting is not None and m.provider_id not in waiting:
            continue
        r = audit_row(ledger, m)
        if waiting is not None:
            r["waiting"] = ago(waiting[m.provider_id]["age_hours"] * 3600)
        if since and (r["received_at"] or r["processed_at"]) < since:
            continue
        if f.sender and f.sender.lower() not in f"{r['from']} {r['from_name']}".lower():
            continue
        if (category == "review" and r["review"] != "yes") or (category not in ("", "review") \
                                                               and r["category"] != category):
            continue
        if people and r["assignee"].lower() not in people:
            continue
        if f.text:
            hay = " ".join([r["from"], r["from_name"], r["company"], r["subject"], r["summary"],
                            (m.record.get("email") or {}).get("body", "")]).lower()
            if f.text.lower() not in hay:
                continue
        rows.append(r)
    yield from sorted(rows, key=lambda r: r["received_at"] or r["processed_at"])


def _waiting(ledger: Ledger, arrived_before: datetime | None) -> dict[str, dict[str, Any]]:
    """provider id -> follow-up row (with its age) of the unanswered mail, arrived before the limit if given."""
    from bot.followup.story import unanswered

    now = now_utc()
    return unanswered(ledger, now, (now - arrived_before).total_seconds() / 3600 if arrived_before else 0.0)


def write(rows: list[dict[str, Any]], fmt: str, out: TextIO | None = None, unanswered: bool = False) -> None:
    out = out or sys.stdout  # looked up at call time: a redirected stdout is honoured
    if fmt == "json":
        for r in rows:
            out.write(json.dumps({k: r.get(k, "") for k in AUDIT_FIELDS}, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=AUDIT_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        out.write(table(rows, columns=UNANSWERED_COLUMNS if unanswered else TABLE_COLUMNS) + "\n")
        out.write(f"{len(rows)} decision(s)\n")


def table(rows: list[dict[str, Any]], width: int = TABLE_WIDTH,
          columns: dict[str, tuple[int, int]] = TABLE_COLUMNS) -> str:
    """A table that fits `width` columns: the subject gets what the other columns leave."""
    def cells(r: dict[str, Any]) -> dict[str, str]:
        category = r["category"] + ("*" if r["review"] == "yes" else "")
        received = (r["received_at"] or r["processed_at"])[:16].replace("T", " ")
        return {"received": received, "from": r["from"], "category": category, "assignee": r["assignee"],
                "subject": r["subject"], "waiting": r.get("waiting", "")}

    data = [cells(r) for r in rows]
    widths = {c: max(lo, min(hi, max([len(c)] + [len(_one_line(d[c])) for d in data])))
              for c, (lo, hi) in columns.items()}
    widths["subject"] = max(columns["subject"][0],
                            width - sum(w for c, w in widths.items() if c != "subject") - 2 * (len(widths) - 1))
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    for d in data:
        lines.append("  ".join(_fit(d[c], widths[c]).ljust(widths[c]) for c in columns).rstrip())
    if "category" in columns and any(r["review"] == "yes" for r in rows):
        lines.append("* sent to review")
    return "\n".join(lines)


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _fit(value: Any, width: int) -> str:
    text = _one_line(value)
    return text if len(text) <= width else text[: width - 1] + "…"
