"""`python run.py stats`: what the bot did, from the ledger alone (no mail, no network).

Messages per category and per classifier, review rate, LLM calls, tokens and cost per UTC day, corrections
(with the most common changes), and the outbox backlog and the items given up, per sink.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bot.state import Ledger

TOP_PAIRS = 10


def _day(row_time: str) -> str:
    return row_time[:10] or "unknown"


def collect(ledger: Ledger, since: str = "") -> dict[str, Any]:
    """The figures for decisions made at or after `since` (ISO 8601 UTC; "" for all)."""
    categories: Counter[str] = Counter()
    classifiers: Counter[str] = Counter()
    days: dict[str, dict[str, Any]] = {}
    review = total = 0
    for row in ledger.iter_messages(since):
        c = row.record.get("classification") or {}
        usage = c.get("usage") or {}
        total += 1
        review += row.review
        categories[row.category or "unknown"] += 1
        classifiers[c.get("classifier") or "none (failed)"] += 1
        day = days.setdefault(_day(row.decided_at), {"messages": 0, "review": 0, "llm_calls": 0, "input_tokens": 0,
                                                     "output_tokens": 0, "cost_usd": 0.0})
        day["messages"] += 1
        day["review"] += row.review
        day["llm_calls"] += int(usage.get("calls", 0))
        day["input_tokens"] += int(usage.get("prompt_tokens", 0))
        day["output_tokens"] += int(usage.get("completion_tokens", 0))
        day["cost_usd"] += float(usage.get("cost_usd", 0.0))
    corrections = [c for c in ledger.corrections() if c["at"] >= since]
    # old == new only when a person confirmed the category of a message the bot had sent to review
    pairs = Counter(f"{c['old_category'] or '?'} -> {c['new_category']}" if c["old_category"] != c["new_category"]
                    else f"review -> {c['new_category']} (confirmed)" for c in corrections)
    for day in days.values():
        day["cost_usd"] = round(day["cost_usd"], 6)
    return {
        "since": since, "messages": total, "review": review, "review_rate": round(review / total, 4) if total else None,
        "categories": dict(categories.most_common()), "classifiers": dict(classifiers.most_common()),
        "llm": {k: sum(d[k] for d in days.values()) for k in ("llm_calls", "input_tokens", "output_tokens")}
        | {"cost_usd": round(sum(d["cost_usd"] for d in days.values()), 6)},
        "days": dict(sorted(days.items())),
        "corrections": {"count": len(corrections), "by_source": dict(Counter(c["source"] for c in corrections)),
                        "changed": sum(1 for c in corrections if c["old_category"] != c["new_category"]),
                        "top": dict(pairs.most_common(TOP_PAIRS))},
        "outbox_backlog": ledger.outbox_backlog(),
        "outbox_given_up": ledger.outbox_given_up(since),  # each one's reason is its result in the ledger's outbox
    }


def render(stats: dict[str, Any]) -> str:
    s = stats
    rate = "n/a" if s["review_rate"] is None else f"{100 * s['review_rate']:.1f}%"
    out = [f"{s['messages']} decision(s) since {s['since'] or 'the start'}; review {s['review']} ({rate})"]
    if s["messages"]:
        out.append("categories: " + ", ".join(f"{k} {v}" for k, v in s["categories"].items()))
        out.append("classifiers: " + ", ".join(f"{k} {v}" for k, v in s["classifiers"].items()))
        llm = s["llm"]
        out.append(f"LLM: {llm['llm_calls']} calls, {llm['input_tokens']} input + {llm['output_tokens']} output "
                   f"tokens, ${llm['cost_usd']:.4f}")
        out += ["", f"{'day (UTC)':<12}{'messages':>9}{'review':>8}{'LLM calls':>10}{'in tokens':>11}"
                    f"{'out tokens':>11}{'cost USD':>11}"]
        for day, d in s["days"].items():
            out.append(f"{day:<12}{d['messages']:>9}{d['review']:>8}{d['llm_calls']:>10}{d['input_tokens']:>11}"
                       f"{d['output_tokens']:>11}{d['cost_usd']:>11.4f}")
    corr = s["corrections"]
    out += ["", f"corrections: {corr['count']} ({corr['changed']} changed the category, the rest confirmed a review)"
            + (" by " + ", ".join(f"{k} {v}" for k, v in corr["by_source"].items()) if corr["count"] else "")]
    out += [f"  {pair}: {n}" for pair, n in corr["top"].items()]
    backlog = s["outbox_backlog"]
    out.append("outbox backlog: " + (", ".join(f"{k} {v}" for k, v in sorted(backlog.items())) or "empty"))
    if s["outbox_given_up"]:  # rows, pings or CRM upserts that failed every time, each with its reason
        out.append("outbox given up: " + ", ".join(f"{k} {v}" for k, v in sorted(s["outbox_given_up"].items())))
    return "\n".join(out)
