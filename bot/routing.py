"""Who gets a lead: pure functions over the pool config and the persisted rotation.

The rotation is least-recently-assigned: every pool has a turn counter, each member remembers the turn at
which they last got a lead, and the next lead goes to the available member who has waited longest (config
order breaks ties). Because state is kept per person, not per list position, editing a pool neither resets
the rotation nor overloads anyone: a reordered list changes nothing, a removed person simply drops out, and a
new person joins at the back of the queue. Someone who is away is skipped and, on return, gets the next lead
once and then rotates normally. Over any run of leads, counts within a pool differ by at most one (for the
people present throughout).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from bot.config import Pool, RoutingConfig
from bot.models import Assignment, Classification
from bot.ports import ThreadMessage


@dataclass(frozen=True)
class Turn:
    """The rotation change to persist with the decision."""

    pool: str
    member: str
    turn: int
    joined: tuple[str, ...]  # members seen for the first time, who get recorded at the back of the queue


def pick_pool(cfg: RoutingConfig, c: Classification) -> tuple[str, str]:
    """(pool name, reason). Technical RFQs first, then the language pool, else the default pool."""
    if c.technical_rfq and cfg.rfq_pool:
        return cfg.rfq_pool, "technical RFQ"
    if c.language and c.language in cfg.language_pools:
        return cfg.language_pools[c.language], f"language {c.language}"
    if c.language:
        return cfg.default_pool, f"language {c.language} has no pool"
    return cfg.default_pool, "language unsure"


def next_member(pool: Pool, rotation: Mapping[str, int], today: date) -> Turn | None:
    """The member who waited longest and is not away; None when everyone is away."""
    base = max(rotation.values(), default=0)
    joined = tuple(m.person.email for m in pool.members if m.person.email not in rotation)
    # Newcomers queue behind everyone already rotating, in config order.
    waited = {**rotation, **{email: base + i for i, email in enumerate(joined, start=1)}}
    present = [m for m in pool.members if not m.is_away(today)]
    if not present:
        return None
    order = {m.person.email: i for i, m in enumerate(pool.members)}
    chosen = min(present, key=lambda m: (waited[m.person.email], order[m.person.email]))
    turn = max(waited.values(), default=0) + 1
    return Turn(pool.name, chosen.person.email, turn, joined)


def assign(cfg: RoutingConfig, c: Classification, rotation_of: Mapping[str, Mapping[str, int]],
           today: date) -> tuple[Assignment, Turn | None]:
    pool_name, why = pick_pool(cfg, c)
    tried: list[str] = []
    for name in dict.fromkeys([pool_name, cfg.default_pool]):
        pool = cfg.pools[name]
        turn = next_member(pool, rotation_of.get(name, {}), today)
        if turn is not None:
            person = next(m.person for m in pool.members if m.person.email == turn.member)
            reason = f"pool {name} ({why})" + (f"; {', '.join(tried)} all away" if tried else "")
            return Assignment(person, pool.cc, name, reason), turn
        tried.append(name)
    return Assignment(None, (), pool_name, f"everyone in {', '.join(tried)} is away"), None


def stay_with(cfg: RoutingConfig, member: str, c: Classification, rotation_of: Mapping[str, Mapping[str, int]],
              today: date, why: str) -> tuple[Assignment, Turn] | None:
    """The lead goes to `member`, who already owns the conversation, if they are in a pool and not away. It counts
    as their turn in that pool (the pool the lead would have gone to, if they are in it), so the rotation stays fair.
    """
    preferred, _ = pick_pool(cfg, c)
    pools = sorted(cfg.pools.values(), key=lambda p: p.name != preferred)
    for pool in pools:
        found = next((m for m in pool.members if m.person.email == member), None)
        if found is None:
            continue
        if found.is_away(today):
            return None
        rotation = rotation_of.get(pool.name, {})
        base = max(rotation.values(), default=0)
        joined = tuple(m.person.email for m in pool.members if m.person.email not in rotation)
        turn = base + len(joined) + 1
        return Assignment(found.person, pool.cc, pool.name, f"pool {pool.name} ({why})"), \
            Turn(pool.name, member, turn, joined)
    return None


def colleague_replied(thread: Iterable[ThreadMessage], our_domains: Iterable[str],
                      our_people: Iterable[str]) -> str | None:
    """The address of one of our people who answered in this thread after the first inbound message, if any."""
    domains = tuple(d.lower() for d in our_domains)
    people = {p.lower() for p in our_people}

    def ours(addr: str) -> bool:
        addr = addr.lower()
        dom = addr.rpartition("@")[2]
        return addr in people or any(dom == d or dom.endswith("." + d) for d in domains)

    seen_inbound = False
    for m in thread:
        if m.is_draft:
            continue
        if not ours(m.from_addr):
            seen_inbound = True
        elif seen_inbound:
            return m.from_addr
    return None
