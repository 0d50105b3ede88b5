"""The report's figures, from the ledger alone (no mailbox, no network): a period's decisions and follow-up."""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.config import Config
from bot.state import Ledger


@dataclass
class Figures:
    title: str
    start: str  # ISO 8601 UTC, inclusive
    end: str  # exclusive
    timezone: str
    messages: int = 0
    review: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    by_day: dict[str, Counter[str]] = field(default_factory=dict)  # local day -> category -> messages
    leads_by_person: Counter[str] = field(default_factory=Counter)
    leads_by_pool: Counter[str] = field(default_factory=Counter)
    response: dict[str, dict[str, float]] = field(default_factory=dict)  # person -> n, median, p90 (business h)
    answered: int = 0
    tracked_leads: int = 0
    unanswered: list[dict[str, Any]] = field(default_factory=list)
    escalated: list[dict[str, Any]] = field(default_factory=list)
    corrections: int = 0
    correction_pairs: Counter[str] = field(default_factory=Counter)
    llm_calls: int = 0
    llm_tokens: int = 0
    llm_cost_usd: float = 0.0
    sources: Counter[str] = field(default_factory=Counter)

    @property
    def review_rate(self) -> float | None:
        return self.review / self.messages if self.messages else None


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (linear between neighbours, as spreadsheets do)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = share * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def source_of(email: dict[str, Any]) -> str:
    """Where a message came from: the sender's domain, or the form service when a form relays the prospect."""
    sender, reply_to = str(email.get("from", "")), str(email.get("reply_to", ""))
    domain = sender.rpartition("@")[2] or "unknown"
    if reply_to and reply_to.rpartition("@")[2] != domain:
        return f"form: {domain}"
    return domain


def collect(cfg: Config, ledger: Ledger, start: str, end: str, title: str) -> Figures:
    zone = cfg.followup.business_hours.zone
    f = Figures(title, start, end, cfg.followup.business_hours.timezone)
    rows = ledger.db.execute("SELECT * FROM messages WHERE decided_at >= ? AND decided_at < ? AND decided_at != '' "
                             "ORDER BY decided_at", (start, end)).fetchall()
    in_period = set()
    for r in rows:
        in_period.add(r["provider_id"])
        rec = json.loads(r["record"])
        f.messages += 1
        f.review += r["review"]
        category = "review" if r["review"] else r["category"] or "other"
        f.categories[category] += 1
        day = datetime.fromisoformat(r["decided_at"]).astimezone(zone).strftime("%Y-%m-%d")
        f.by_day.setdefault(day, Counter())[category] += 1
        f.llm_calls += r["llm_calls"]
        f.llm_tokens += r["llm_tokens"]
        f.llm_cost_usd += r["llm_cost_usd"]
        if r["category"] == "lead" and not r["review"]:
            f.sources[source_of(rec.get("email") or {})] += 1
            if r["assignee"]:
                f.leads_by_person[r["assignee"]] += 1
                f.leads_by_pool[str((rec.get("decision") or {}).get("pool") or "?")] += 1
    _follow_up(f, ledger, in_period)
    corrections = [c for c in ledger.corrections() if start <= c["at"] < end]
    f.corrections = len(corrections)
    f.correction_pairs = Counter(f"{c['old_category'] or '?'} -> {c['new_category']}" for c in corrections)
    f.llm_cost_usd = round(f.llm_cost_usd, 6)
    return f


def _follow_up(f: Figures, ledger: Ledger, in_period: set[str]) -> None:
    try:
        tracked = ledger.db.execute("SELECT * FROM followup WHERE kind='lead'").fetchall()
        events = ledger.db.execute("SELECT * FROM followup_events ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # nothing was ever tracked
        return
    times: dict[str, list[float]] = defaultdict(list)
    escalations = {e["provider_id"]: e for e in events if e["kind"] in ("escalation", "reassigned")}
    for t in tracked:
        if t["provider_id"] not in in_period:
            continue
        f.tracked_leads += 1
        row = ledger.get(t["provider_id"])
        em = (row.record.get("email") or {}) if row else {}
        item = {"arrived_at": t["arrived_at"], "from": em.get("from", ""), "subject": em.get("subject", ""),
                "assignee": t["assignee"], "status": t["status"]}
        if t["status"] == "answered" and t["response_hours"] is not None:
            f.answered += 1
            times[t["assignee"] or t["answered_by"]].append(float(t["response_hours"]))
        elif t["status"] in ("open", "expired"):
            f.unanswered.append(item)
        if t["provider_id"] in escalations:
            e = escalations[t["provider_id"]]
            f.escalated.append(item | {"escalation": e["kind"], "escalated_at": e["at"], "previous": e["previous"]})
    f.response = {person: {"n": len(v), "median": round(statistics.median(v), 2),
                           "p90": round(percentile(v, 0.9), 2)} for person, v in sorted(times.items())}
