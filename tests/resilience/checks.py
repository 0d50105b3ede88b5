"""What "nothing lost, nothing repeated" means, checked on the fakes' own state after a run."""

from __future__ import annotations

import json
from collections import Counter

from tests.resilience.harness import Outcome, Stack

DISPOSABLE = {"spam", "newsletter"}
STAYS = {"skip", "review", "colleague_replied"}  # decisions that leave the mail in the inbox for a person


def drain(stack: Stack, config: object, max_runs: int = 8) -> int:
    """Run the bot until it has nothing left to do; returns the runs it took."""
    for runs in range(1, max_runs + 1):
        result = stack.run(config)  # type: ignore[arg-type]
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        if not any(stack.backlog().values()):
            return runs
    raise AssertionError(f"still busy after {max_runs} clean runs: {stack.backlog()}")


def assert_invariants(stack: Stack, o: Outcome) -> None:
    """Every promise that holds for one run on its own, read from the fakes and the ledger."""
    assert stack.backlog() == {"unfinished": 0, "effects": 0, "outbox": 0, "unlisted": 0}
    actions = {mid: (json.loads(rec).get("decision") or {}) for mid, rec in
               stack.ledger("SELECT message_id, record FROM messages")}
    delivered = {m.message_id for m in stack.delivered}
    assert set(o.decisions) == delivered, "every delivered mail has exactly one decision"
    assert set(o.labels) == delivered
    assert all("Triage/Processed" in names for names in o.labels.values())
    # one draft per lead at most, and only where the decision asked for one
    assert max(o.drafts.values(), default=0) <= 1, [k for k, v in o.drafts.items() if v > 1]
    assert set(o.drafts) == {mid for mid, d in actions.items() if d.get("draft")}
    # one audit row per message, in the CSV and the sheet, in the same order
    sheet_ids = [r["message_id"] for r in o.sheet_rows]
    csv_ids = [r["message_id"] for r in o.csv_rows]
    assert len(sheet_ids) == len(set(sheet_ids)) == len(delivered), Counter(sheet_ids).most_common(3)
    assert set(sheet_ids) == delivered and csv_ids == sheet_ids
    # one ping per lead, one CRM contact per person, one note per lead
    notified = {mid for mid, d in actions.items() if d.get("notify")}
    assert max(o.slack.values(), default=0) <= 1 and set(o.slack) == notified
    assert max(o.contacts.values(), default=0) <= 1, o.contacts.most_common(3)
    assert max(o.companies.values(), default=0) <= 1, o.companies.most_common(3)
    crm = {mid for mid, d in actions.items() if d.get("crm")}
    assert max(o.notes.values(), default=0) <= 1
    assert {mid.replace("&lt;", "<").replace("&gt;", ">") for mid in o.notes} == crm
    # what stays in the inbox is exactly what a person has to see; only spam and newsletters were trashed
    for mid in o.inbox():
        d = actions[mid]  # left on purpose: review, our own mail, a thread a colleague answered (theirs or nobody's)
        assert d.get("review") or d.get("action") in STAYS or not d.get("archive"), (mid, d.get("action"))
    for mid, d in actions.items():
        if not d.get("archive") and not o.labels[mid] & {"TRASH"}:
            assert "INBOX" in o.labels[mid], mid
    for mid in o.trashed():
        assert o.decisions[mid][0] in DISPOSABLE and not o.decisions[mid][1], (mid, o.decisions[mid])
    # the round-robin is fair, counted from the recorded decisions: within one lead per pool, plus one for each
    # lead that stayed with the person who owns the conversation (it counts as their turn: the others catch up)
    by_pool: dict[str, Counter[str]] = {}
    sticky: Counter[str] = Counter()
    for d in actions.values():
        person = (d.get("assignee") or {}).get("email")
        if person and d.get("pool"):
            by_pool.setdefault(d["pool"], Counter())[person] += 1
            sticky[d["pool"]] += any("stays with" in r or "answered in this thread" in r for r in d.get("reasons", ()))
    for pool, counts in by_pool.items():
        everyone = {m: counts.get(m, 0) for m in o.rotation.get(pool, {})} | dict(counts)
        assert max(everyone.values()) - min(everyone.values()) <= 1 + sticky[pool], (pool, everyone)


def assert_same_outcome(got: Outcome, want: Outcome, same_order: bool = True) -> None:
    """A run with faults ends where a run without faults ends. same_order=False: mail that had to wait
    was decided later, so the rows are compared per message rather than in sequence, and the round-robin met the
    leads in another order: each lead went to the same pool, and each pool gave the same number of leads to each
    person, but which lead went to whom may differ."""
    key = ("message_id", "category", "review", "assignee", "pool", "cc", "actions")
    rows_got = [[r[k] for k in key] for r in got.sheet_rows]
    rows_want = [[r[k] for k in key] for r in want.sheet_rows]
    if same_order:
        assert got.decisions == want.decisions
        assert rows_got == rows_want
    else:
        who = key.index("assignee")

        def turns(rows: list[list[object]]) -> Counter[tuple[object, object]]:
            return Counter((r[key.index("pool")], r[who]) for r in rows)

        def without_who(rows: list[list[object]]) -> list[list[object]]:  # the actions name the assignee too
            return sorted([*r[:who], *r[who + 1:-1], str(r[-1]).replace(f"assign {r[who]}", "assign ?")]
                          for r in rows)

        assert {m: d[:2] for m, d in got.decisions.items()} == {m: d[:2] for m, d in want.decisions.items()}
        assert without_who(rows_got) == without_who(rows_want) and len(rows_got) == len(set(map(tuple, rows_got)))
        assert turns(rows_got) == turns(rows_want)
    assert got.labels == want.labels
    assert set(got.drafts) == set(want.drafts) and got.draft_to == want.draft_to
    assert got.slack == want.slack and got.notes == want.notes and got.contacts == want.contacts
    assert got.rotation == want.rotation
