from collections import Counter
from datetime import date

from bot.config import Away, Member, Pool, RoutingConfig
from bot.models import Classification, Person
from bot.ports import ThreadMessage
from bot.routing import Turn, assign, colleague_replied, next_member, pick_pool


def member(name: str, away: tuple[Away, ...] = ()) -> Member:
    return Member(Person(f"{name}@acme-pumps.example", name.title()), away)


def rotate(pool: Pool, n: int, rotation: dict[str, int] | None = None, today: date = date(2026, 11, 23)) -> Counter:
    rotation = {} if rotation is None else rotation
    counts: Counter = Counter()
    for _ in range(n):
        turn = next_member(pool, rotation, today)
        assert turn is not None
        base = max(rotation.values(), default=0)
        for i, j in enumerate(turn.joined, start=1):
            rotation.setdefault(j, base + i)
        rotation[turn.member] = turn.turn
        counts[turn.member] += 1
    return counts


def test_thousand_leads_are_spread_within_one() -> None:
    pool = Pool("p", (member("a"), member("b"), member("c")), ())
    counts = rotate(pool, 1000)
    assert sum(counts.values()) == 1000
    assert max(counts.values()) - min(counts.values()) <= 1


def test_reordering_a_pool_neither_resets_nor_skips() -> None:
    rotation: dict[str, int] = {}
    pool = Pool("p", (member("a"), member("b"), member("c")), ())
    first = [next(iter(rotate(pool, 1, rotation))) for _ in range(2)]  # a, b got one each
    assert first == ["a@acme-pumps.example", "b@acme-pumps.example"]
    reordered = Pool("p", (member("c"), member("b"), member("a")), ())
    # c has waited longest, whatever the new order says
    assert next(iter(rotate(reordered, 1, rotation))) == "c@acme-pumps.example"
    counts = rotate(reordered, 300, rotation)
    assert max(counts.values()) - min(counts.values()) <= 1


def test_a_new_member_joins_at_the_back_and_is_not_flooded() -> None:
    rotation: dict[str, int] = {}
    rotate(Pool("p", (member("a"), member("b")), ()), 10, rotation)
    grown = Pool("p", (member("a"), member("b"), member("d")), ())
    order = [next(iter(rotate(grown, 1, rotation))) for _ in range(3)]
    assert order == ["a@acme-pumps.example", "b@acme-pumps.example", "d@acme-pumps.example"]
    counts = rotate(grown, 99, rotation)
    assert counts == Counter({m: 33 for m in ["a@acme-pumps.example", "b@acme-pumps.example",
                                               "d@acme-pumps.example"]})


def test_removed_member_drops_out() -> None:
    rotation: dict[str, int] = {}
    rotate(Pool("p", (member("a"), member("b"), member("c")), ()), 7, rotation)
    counts = rotate(Pool("p", (member("a"), member("c")), ()), 100, rotation)
    assert set(counts) == {"a@acme-pumps.example", "c@acme-pumps.example"}
    assert abs(counts["a@acme-pumps.example"] - counts["c@acme-pumps.example"]) <= 1


def test_away_member_is_skipped_then_resumes_without_backlog() -> None:
    holiday = (Away(date(2026, 12, 20), date(2027, 1, 2)),)
    pool = Pool("p", (member("a"), member("b", holiday)), ())
    rotation: dict[str, int] = {}
    during = rotate(pool, 10, rotation, today=date(2026, 12, 24))
    assert during == Counter({"a@acme-pumps.example": 10})
    after = rotate(pool, 10, rotation, today=date(2027, 1, 5))
    assert after == Counter({"a@acme-pumps.example": 5, "b@acme-pumps.example": 5})


def test_everyone_away_gives_none() -> None:
    away = (Away(date(2026, 1, 1), date(2027, 1, 1)),)
    assert next_member(Pool("p", (member("a", away),), ()), {}, date(2026, 6, 1)) is None


def routing_cfg() -> RoutingConfig:
    pools = {
        "inside": Pool("inside", (member("a"), member("b")), ()),
        "dach": Pool("dach", (member("d"),), ("field@acme-pumps.example",)),
        "tech": Pool("tech", (member("t"),), ()),
    }
    return RoutingConfig("inside", "tech", {"de": "dach"}, pools, ())


def test_pool_choice_rfq_then_language_then_default() -> None:
    cfg = routing_cfg()
    assert pick_pool(cfg, Classification("lead", 0.9, "de", "x", technical_rfq=True))[0] == "tech"
    assert pick_pool(cfg, Classification("lead", 0.9, "de", "x"))[0] == "dach"
    assert pick_pool(cfg, Classification("lead", 0.9, "fr", "x"))[0] == "inside"
    assert pick_pool(cfg, Classification("lead", 0.9, None, "x")) == ("inside", "language unsure")


def test_assign_uses_pool_cc_and_falls_back_when_pool_is_away() -> None:
    cfg = routing_cfg()
    a, turn = assign(cfg, Classification("lead", 0.9, "de", "x"), {}, date(2026, 11, 23))
    assert a.assignee and a.assignee.email == "d@acme-pumps.example" and a.cc == ("field@acme-pumps.example",)
    assert turn and turn.pool == "dach"
    away = (Away(date(2026, 1, 1), date(2027, 1, 1)),)
    cfg.pools["dach"] = Pool("dach", (member("d", away),), ())
    a, turn = assign(cfg, Classification("lead", 0.9, "de", "x"), {}, date(2026, 11, 23))
    assert a.pool == "inside" and "all away" in a.reason


def tm(addr: str, draft: bool = False) -> ThreadMessage:
    return ThreadMessage("id", addr, None, draft)


def test_colleague_replied_only_after_an_inbound_message() -> None:
    ours = ["acme-pumps.example"]
    assert colleague_replied([tm("x@c.example"), tm("bob@acme-pumps.example"), tm("x@c.example")], ours, []) \
        == "bob@acme-pumps.example"
    assert colleague_replied([tm("bob@acme-pumps.example"), tm("x@c.example")], ours, []) is None
    assert colleague_replied([tm("x@c.example"), tm("sales@acme-pumps.example", draft=True)], ours, []) is None
    assert colleague_replied([tm("x@c.example"), tm("agent@partner.example")], ours, ["agent@partner.example"]) \
        == "agent@partner.example"


def _routing(*pools: Pool) -> RoutingConfig:
    return RoutingConfig(default_pool=pools[0].name, rfq_pool=None, language_pools={"de": "dach"},
                         pools={p.name: p for p in pools}, colleagues=())


def test_a_lead_stays_with_its_owner_and_counts_as_their_turn() -> None:
    from bot.routing import stay_with

    sales = Pool("sales", (member("a"), member("b"), member("c")), ("field@acme-pumps.example",))
    cfg = _routing(sales)
    rotation = {"sales": {"a@acme-pumps.example": 1, "b@acme-pumps.example": 2, "c@acme-pumps.example": 3}}
    lead = Classification("lead", 0.9, "en", "offline")
    got = stay_with(cfg, "a@acme-pumps.example", lead, rotation, date(2026, 11, 23), "this thread is theirs")
    assert got is not None
    assignment, turn = got
    assert assignment.assignee is not None and assignment.assignee.email == "a@acme-pumps.example"
    assert assignment.cc == ("field@acme-pumps.example",) and "this thread is theirs" in assignment.reason
    assert (turn.member, turn.turn) == ("a@acme-pumps.example", 4)  # to the back of the queue: fair
    rotation["sales"]["a@acme-pumps.example"] = turn.turn
    assert next_member(sales, rotation["sales"], date(2026, 11, 23)).member == "b@acme-pumps.example"


def test_an_owner_who_is_away_or_gone_does_not_keep_the_lead() -> None:
    from bot.config import Away
    from bot.routing import stay_with

    away = Away(date(2026, 11, 20), date(2026, 11, 23))
    cfg = _routing(Pool("sales", (member("a", (away,)), member("b")), ()))
    lead = Classification("lead", 0.9, "en", "offline")
    assert stay_with(cfg, "a@acme-pumps.example", lead, {}, date(2026, 11, 23), "x") is None  # last day away
    assert stay_with(cfg, "a@acme-pumps.example", lead, {}, date(2026, 11, 24), "x") is not None
    assert stay_with(cfg, "left@acme-pumps.example", lead, {}, date(2026, 11, 24), "x") is None


def test_an_owner_in_two_pools_takes_the_turn_in_the_pool_the_lead_would_go_to() -> None:
    from bot.routing import stay_with

    cfg = _routing(Pool("sales", (member("a"), member("b")), ()), Pool("dach", (member("b"), member("d")), ()))
    german = Classification("lead", 0.9, "de", "offline")
    got = stay_with(cfg, "b@acme-pumps.example", german, {}, date(2026, 11, 23), "x")
    assert got is not None and got[1].pool == "dach"


def test_an_owners_turn_queues_behind_everyone_in_their_pool_even_outside_the_pool_the_lead_would_go_to() -> None:
    from bot.routing import stay_with

    cfg = _routing(Pool("sales", (member("a"), member("b"), member("c")), ()), Pool("dach", (member("d"),), ()))
    english = Classification("lead", 0.9, "en", "offline")
    got = stay_with(cfg, "b@acme-pumps.example", english, {"sales": {"a@acme-pumps.example": 5,
                                                                     "b@acme-pumps.example": 6}},
                    date(2026, 11, 23), "x")
    assert got is not None
    assert (got[1].pool, got[1].turn, got[1].joined) == ("sales", 8, ("c@acme-pumps.example",))  # c queues at 7
    got = stay_with(cfg, "d@acme-pumps.example", english, {}, date(2026, 11, 23), "x")  # only in dach
    assert got is not None and got[0].assignee is not None and got[0].assignee.email == "d@acme-pumps.example"
    assert got[0].pool == "dach" and got[0].reason == "pool dach (x)"
    assert (got[1].pool, got[1].turn, got[1].joined) == ("dach", 2, ("d@acme-pumps.example",))


def test_the_pool_choice_says_why() -> None:
    cfg = routing_cfg()
    assert pick_pool(cfg, Classification("lead", 0.9, "de", "x", technical_rfq=True)) == ("tech", "technical RFQ")
    assert pick_pool(cfg, Classification("lead", 0.9, "de", "x")) == ("dach", "language de")
    assert pick_pool(cfg, Classification("lead", 0.9, "fr", "x")) == ("inside", "language fr has no pool")
    no_rfq_pool = RoutingConfig("inside", None, {"de": "dach"}, cfg.pools, ())
    assert pick_pool(no_rfq_pool, Classification("lead", 0.9, "de", "x", technical_rfq=True)) == ("dach", "language de")


def test_the_assignment_says_which_pool_why_and_which_pools_were_all_away() -> None:
    cfg = routing_cfg()
    day = date(2026, 11, 23)
    a, _ = assign(cfg, Classification("lead", 0.9, "de", "x"), {}, day)
    assert (a.pool, a.reason) == ("dach", "pool dach (language de)")
    away = (Away(date(2026, 1, 1), date(2027, 1, 1)),)
    cfg.pools["dach"] = Pool("dach", (member("d", away),), ("field@acme-pumps.example",))
    a, turn = assign(cfg, Classification("lead", 0.9, "de", "x"), {}, day)
    assert (a.pool, a.reason, a.cc) == ("inside", "pool inside (language de); dach all away", ())
    assert turn is not None and (turn.pool, turn.member) == ("inside", "a@acme-pumps.example")
    cfg.pools["inside"] = Pool("inside", (member("a", away), member("b", away)), ())
    a, turn = assign(cfg, Classification("lead", 0.9, "de", "x"), {}, day)
    assert (a.assignee, a.cc, a.pool, a.reason, turn) == (None, (), "dach", "everyone in dach, inside is away", None)


def test_the_turn_numbers_queue_newcomers_in_config_order_behind_everyone_rotating() -> None:
    pool = Pool("p", (member("a"), member("b"), member("c")), ())
    first = next_member(pool, {}, date(2026, 11, 23))
    assert first == Turn("p", "a@acme-pumps.example", 4, ("a@acme-pumps.example", "b@acme-pumps.example",
                                                          "c@acme-pumps.example"))
    # b and c are new: they queue behind a (last turn 7) at 8 and 9, so a goes first, then b
    later = next_member(pool, {"a@acme-pumps.example": 7}, date(2026, 11, 23))
    assert later == Turn("p", "a@acme-pumps.example", 10, ("b@acme-pumps.example", "c@acme-pumps.example"))
    after = next_member(pool, {"a@acme-pumps.example": 10, "b@acme-pumps.example": 8, "c@acme-pumps.example": 9},
                        date(2026, 11, 23))
    assert after == Turn("p", "b@acme-pumps.example", 11, ())
    # equal waits: the config order decides
    tie = next_member(pool, {m.person.email: 5 for m in pool.members}, date(2026, 11, 23))
    assert tie == Turn("p", "a@acme-pumps.example", 6, ())


def test_our_people_are_recognised_by_domain_subdomain_and_address_in_any_case() -> None:
    ours = ["Acme-Pumps.example"]
    assert colleague_replied([tm("x@c.example"), tm("Bob@EU.acme-pumps.EXAMPLE")], ours, []) \
        == "Bob@EU.acme-pumps.EXAMPLE"
    assert colleague_replied([tm("x@c.example"), tm("bob@notacme-pumps.example")], ours, []) is None
    assert colleague_replied([tm("x@c.example"), tm("Agent@Partner.example")], ours, ["agent@partner.EXAMPLE"]) \
        == "Agent@Partner.example"
    # a draft of ours is no answer, and an answer before any inbound mail does not count
    assert colleague_replied([tm("bob@acme-pumps.example"), tm("x@c.example"), tm("eve@acme-pumps.example", True)],
                             ours, []) is None
