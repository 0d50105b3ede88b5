"""The persisted round-robin through the pipeline: fairness counted from the recorded decisions, across restarts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bot.state import Ledger
from tests.fakes import raw_mail
from tests.unit.test_pipeline import Bot


def test_leads_over_many_cycles_are_spread_within_one_per_pool_counted_from_the_decisions(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    n = 0
    for cycle in range(4):  # each cycle is a new Pipeline on the same ledger: a restart of the bot
        for _ in range(7 + cycle):
            lang = "de" if n % 3 == 0 else "en"
            bot.mail.add(raw_mail(f"Quote {n} [lead:{lang}:0.9]", sender=f"P{n} <p{n}@prospect{n}.example>"))
            n += 1
        bot.cycle()
    by_pool: dict[str, Counter[str]] = {}
    for row in bot.audit.rows:
        by_pool.setdefault(row["pool"], Counter())[row["assignee"]] += 1
    assert sum(sum(c.values()) for c in by_pool.values()) == n
    assert set(by_pool) == {"inside_sales", "dach"}
    pools = bot.cfg.routing.pools
    for pool, counts in by_pool.items():
        everyone = [counts[m.person.email] for m in pools[pool].members]  # a member with no lead counts as 0
        assert max(everyone) - min(everyone) <= 1, (pool, counts)


def test_the_ledger_counts_every_turn_a_member_takes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.set_rotation("p", "a@x.example", 1, assigned=True)
    ledger.set_rotation("p", "b@x.example", 2, assigned=False)  # joined the queue, no lead yet
    ledger.set_rotation("p", "a@x.example", 3, assigned=True)
    ledger.set_rotation("p", "b@x.example", 4, assigned=True)
    assert ledger.assignment_counts("p") == {"a@x.example": 2, "b@x.example": 1}
    assert ledger.rotation("p") == {"a@x.example": 3, "b@x.example": 4}
