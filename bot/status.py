"""`python run.py status`: how the bot is doing and whose turn is next, from the ledger alone (no mail, no network)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot import health
from bot.alerts import ALERTS_KEY
from bot.config import Config
from bot.routing import next_member
from bot.state import Ledger, iso


def collect(cfg: Config, ledger: Ledger, now: datetime) -> dict[str, Any]:
    hb = health.read_heartbeat(cfg, ledger)
    queues = ledger.outbox_queues()
    ok, verdict = health.verdict(cfg, hb, queues, now)
    failing, unfinished = ledger.backlog(cfg.poll.max_attempts)
    week = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=now.weekday())
    this_week = ledger.assignments_since(iso(week))
    today = now.date()
    pools = []
    for name, pool in cfg.routing.pools.items():
        turn = next_member(pool, ledger.rotation(name), today)
        total = ledger.assignment_counts(name)
        pools.append({"pool": name, "next": turn.member if turn else None, "people": [
            {"name": m.person.name, "email": m.person.email, "away": m.is_away(today),
             "this_week": this_week.get(m.person.email, 0), "total": total.get(m.person.email, 0)}
            for m in pool.members]})
    alerts = json.loads(ledger.get_cursor(ALERTS_KEY) or "{}")
    llm = cfg.classify.llm
    return {
        "healthy": ok, "health": verdict,
        "last_cycle": hb.last_cycle if hb else None, "last_outcome": hb.outcome if hb else None,
        "last_success": hb.last_success if hb else None, "last_summary": hb.summary if hb else None,
        "backlog": {"failing": failing, "unfinished": unfinished},
        "outbox": {sink: {"queued": n, "oldest": oldest, "failing_since": failing_since or None}
                   for sink, (n, oldest, failing_since) in sorted(queues.items())},
        "llm_today": {"enabled": llm.enabled, "spent_usd": round(ledger.llm_spent_usd(today.isoformat()), 6),
                      "budget_usd": llm.daily_budget_usd},
        "away": sorted({m.person.name for p in cfg.routing.pools.values() for m in p.members if m.is_away(today)}),
        "alerts": {key: a["text"] for key, a in alerts.items()},
        "pools": pools, "week_start": iso(week),
    }


def render(s: dict[str, Any], now: datetime) -> str:
    def when(stamp: str | None) -> str:
        if not stamp:
            return "never"
        age = health.ago((now - datetime.fromisoformat(stamp)).total_seconds())
        return f"{stamp[:16].replace('T', ' ')} UTC ({age} ago)"

    out = [s["health"]]
    if s["last_cycle"]:
        out.append(f"last cycle: {when(s['last_cycle'])}, {s['last_outcome']}")
        if s["last_outcome"] != "ok":
            out.append(f"last success: {when(s['last_success'])}")
        if s["last_summary"]:
            out.append(f"  {s['last_summary']}")
    b = s["backlog"]
    out.append(f"backlog: {b['failing']} message(s) failing, retried each cycle; {b['unfinished']} decided with "
               "mail actions still to do")
    out.append("outbox: " + (", ".join(f"{sink} {q['queued']} queued (oldest {when(q['oldest'])}"
                                       + (", failing" if q["failing_since"] else "") + ")"
                                       for sink, q in s["outbox"].items()) or "empty"))
    llm = s["llm_today"]
    out.append(f"LLM today: ${llm['spent_usd']:.4f} of ${llm['budget_usd']:.2f}" if llm["enabled"]
               else "LLM: off")
    out.append("away today: " + (", ".join(s["away"]) or "nobody"))
    out.append("alerts: " + ("; ".join(s["alerts"].values()) or "none"))
    for p in s["pools"]:
        out += ["", f"pool {p['pool']}: next lead goes to {p['next'] or 'nobody (everyone is away)'}",
                f"  {'':2}{'person':<28}{'this week':>10}{'total':>8}"]
        for person in p["people"]:
            mark = ">" if person["email"] == p["next"] else " "
            who = person["name"] + (" (away)" if person["away"] else "")
            out.append(f"  {mark:2}{who:<28}{person['this_week']:>10}{person['total']:>8}")
    return "\n".join(out)
