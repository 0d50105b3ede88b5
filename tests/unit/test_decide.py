"""decide() on its own: who owns a conversation, forms without an address, requests that must never be trashed."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from bot.decide import decide, describe_actions, prefilter_classification
from bot.mime import parse_email
from bot.models import Classification, Decision, Person, PrefilterResult
from bot.ports import ThreadMessage
from tests.fakes import make_config

TODAY = date(2026, 11, 23)
PRE = PrefilterResult("classify", reason="no pre-filter rule matched")
LEAD = Classification("lead", 0.95, "en", "offline", person_email="anna@northwind.example")


def email(body: str = "Please quote 3 pumps.", sender: str = "Anna Clarke <anna@northwind.example>",
          subject: str = "Pumps") -> object:
    return parse_email((f"From: {sender}\nTo: sales@acme-pumps.example\nSubject: {subject}\n"
                        f"Message-ID: <m1@northwind.example>\nDate: Mon, 23 Nov 2026 09:00:00 +0000\n"
                        f"Content-Type: text/plain; charset=utf-8\n\n{body}\n").encode())


@pytest.fixture
def cfg(tmp_path: Path) -> object:
    return make_config(tmp_path)


def test_a_new_lead_goes_round_robin(cfg: object) -> None:
    d, turn = decide(cfg, email(), PRE, LEAD, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert d.action == "draft+assign" and d.draft and d.assignee is not None
    assert turn is not None and turn.member == d.assignee.email


def test_the_contacts_owner_keeps_the_lead_and_it_is_their_turn(cfg: object) -> None:
    owner = ("carla@acme-pumps.example", "contact")
    d, turn = decide(cfg, email(), PRE, LEAD, {}, TODAY, lambda: [], lambda: owner)  # type: ignore[arg-type]
    assert d.assignee is not None and d.assignee.email == "carla@acme-pumps.example"
    assert d.draft and any("they had this contact's last lead" in r for r in d.reasons)
    assert turn is not None and (turn.pool, turn.member) == ("inside_sales", "carla@acme-pumps.example")


def test_an_owner_who_left_the_team_does_not_keep_the_lead(cfg: object) -> None:
    d, _ = decide(cfg, email(), PRE, LEAD, {}, TODAY, lambda: [],  # type: ignore[arg-type]
                  lambda: ("gone@acme-pumps.example", "thread"))
    assert d.assignee is not None and d.assignee.email != "gone@acme-pumps.example"
    assert not any("stays with" in r for r in d.reasons)


def test_a_follow_up_to_our_quote_goes_to_the_salesperson_who_sent_it(cfg: object) -> None:
    thread = [ThreadMessage("1", "anna@northwind.example", None, False),
              ThreadMessage("2", "bob@acme-pumps.example", None, False),
              ThreadMessage("3", "anna@northwind.example", None, False)]
    d, turn = decide(cfg, email("Thanks for the quote, can you do 5 instead of 3?"), PRE, LEAD, {}, TODAY,  # type: ignore[arg-type]
                     lambda: thread, lambda: None)
    assert (d.action, d.draft, d.notify) == ("assign", False, True)
    assert d.assignee is not None and d.assignee.email == "bob@acme-pumps.example"
    assert turn is not None and (turn.pool, turn.member) == ("inside_sales", "bob@acme-pumps.example")
    assert d.pool == "inside_sales"  # the audit row names the pool whose turn it took


def test_a_lead_with_drafting_switched_off_is_assigned_without_a_draft(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"actions": {"lead": {"draft": False}}})
    d, turn = decide(cfg, email(), PRE, LEAD, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert (d.action, d.draft, d.review) == ("assign", False, False)
    assert d.assignee is not None and turn is not None and turn.member == d.assignee.email


def test_a_reply_by_someone_outside_the_pools_leaves_the_thread_alone(cfg: object) -> None:
    thread = [ThreadMessage("1", "anna@northwind.example", None, False),
              ThreadMessage("2", "boss@acme-pumps.example", None, False)]
    d, turn = decide(cfg, email(), PRE, LEAD, {}, TODAY, lambda: thread, lambda: None)  # type: ignore[arg-type]
    assert (d.action, d.assignee, turn) == ("colleague_replied", None, None)


def test_a_web_form_without_the_customers_address_is_reviewed_not_drafted_to_the_service(cfg: object) -> None:
    form = email("You have a new submission.\n\nName: Lotte Janssens\nCompany: DataHarbor BV\nPhone: 555 0101\n"
                 "Message: Please call me about 3 pumps.", sender="Webflow <no-reply-forms@webflow.example>",
                 subject="New form submission on Acme Pumps")
    d, turn = decide(cfg, form, PRE, LEAD, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert (d.review, d.draft, turn) == (True, False, None)
    assert any("web form without the customer's address" in r for r in d.reasons)


@pytest.mark.parametrize("category", ["spam", "newsletter"])
def test_a_person_asking_to_be_unsubscribed_is_never_trashed(cfg: object, category: str) -> None:
    c = Classification(category, 0.99, "en", "offline")
    d, _ = decide(cfg, email("Please remove me from your mailing list."), PRE, c, {}, TODAY,  # type: ignore[arg-type]
                  lambda: [], lambda: None)
    assert d.review and d.trash_after_hours is None


# ---------------------------------------------------------------- the edges: threshold, away days, empty pools

def test_confidence_exactly_at_the_threshold_is_acted_on_and_just_below_is_reviewed(cfg: object) -> None:
    threshold = cfg.classify.threshold  # type: ignore[attr-defined]
    at = Classification("lead", threshold, "en", "offline", person_email="anna@northwind.example")
    d, turn = decide(cfg, email(), PRE, at, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert (d.review, d.action) == (False, "draft+assign") and turn is not None
    below = Classification("lead", threshold - 0.001, "en", "offline", person_email="anna@northwind.example")
    d, turn = decide(cfg, email(), PRE, below, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert (d.review, d.action, d.draft, d.assignee, turn) == (True, "review", False, None, None)
    assert d.notify is False and d.crm is False and d.trash_after_hours is None  # recorded as a plain no
    assert any("below threshold" in r for r in d.reasons)


AWAY = {"from": "2026-11-20", "to": "2026-11-23"}  # Alice, first in line, is away Friday to Monday


def alice_away(tmp_path: Path) -> object:
    members = [{"name": "Alice Carter", "email": "alice@acme-pumps.example", "away": [AWAY]},
               {"name": "Bob Nguyen", "email": "bob@acme-pumps.example"}]
    return make_config(tmp_path, {"routing": {"pools": {"inside_sales": {"members": members}}}})


@pytest.mark.parametrize(("day", "assignee"), [
    (date(2026, 11, 19), "alice@acme-pumps.example"),   # the day before she leaves
    (date(2026, 11, 20), "bob@acme-pumps.example"),     # her first day away
    (date(2026, 11, 23), "bob@acme-pumps.example"),     # her last day away
    (date(2026, 11, 24), "alice@acme-pumps.example"),   # back
])
def test_away_periods_count_their_first_and_last_day(tmp_path: Path, day: date, assignee: str) -> None:
    d, turn = decide(alice_away(tmp_path), email(), PRE, LEAD, {}, day,  # type: ignore[arg-type]
                     lambda: [], lambda: None)
    assert d.assignee is not None and d.assignee.email == assignee
    assert turn is not None and turn.member == assignee


def test_the_owner_of_a_thread_who_is_away_on_their_last_day_does_not_keep_it(tmp_path: Path) -> None:
    d, _ = decide(alice_away(tmp_path), email(), PRE, LEAD, {}, date(2026, 11, 23),  # type: ignore[arg-type]
                  lambda: [], lambda: ("alice@acme-pumps.example", "thread"))
    assert d.assignee is not None and d.assignee.email == "bob@acme-pumps.example"
    assert not any("stays with" in r for r in d.reasons)


def test_a_language_pool_all_away_falls_back_to_the_default_pool(tmp_path: Path) -> None:
    away = [{"name": n, "email": f"{n.lower()}@acme-pumps.example", "away": [AWAY]} for n in ("Dieter", "Eva")]
    cfg = make_config(tmp_path, {"routing": {"pools": {"dach": {"members": away}}}})
    german = Classification("lead", 0.95, "de", "offline", person_email="anna@northwind.example")
    d, turn = decide(cfg, email(), PRE, german, {}, TODAY, lambda: [], lambda: None)
    assert (d.action, d.pool) == ("draft+assign", "inside_sales")
    assert d.assignee is not None and d.assignee.email == "alice@acme-pumps.example"
    assert turn is not None and turn.pool == "inside_sales"
    assert any("dach all away" in r for r in d.reasons)


def test_with_every_pool_it_could_go_to_away_the_lead_is_reviewed_not_dropped(tmp_path: Path) -> None:
    away = [{"name": "Alice Carter", "email": "alice@acme-pumps.example", "away": [AWAY]}]
    cfg = make_config(tmp_path, {"routing": {"pools": {"inside_sales": {"members": away}}}})
    d, turn = decide(cfg, email(), PRE, LEAD, {}, TODAY, lambda: [], lambda: None)
    assert (d.review, d.action, d.draft, d.assignee, turn) == (True, "review", False, None, None)
    assert any("nobody available to assign" in r for r in d.reasons)
    assert any("everyone in inside_sales is away" in r for r in d.reasons)


def test_a_deciding_prefilter_rule_stands_for_a_certain_classification_that_names_it() -> None:
    c = prefilter_classification(PrefilterResult("category", "marketing_domain", "newsletter", "mailchimp.example"))
    assert (c.category, c.confidence, c.language, c.classifier, c.reasons) == (
        "newsletter", 1.0, None, "prefilter:marketing_domain", ("mailchimp.example",))
    assert prefilter_classification(PrefilterResult("category", "odd", None, "no category")).category == "other"


# ---------------------------------------------------------------- the actions as the audit row and dry runs list them

DRAFTED = Decision("lead", False, "draft+assign", ("Triage/Processed", "Triage/Lead"), archive=True, draft=True,
                   trash_after_hours=None, notify=True, crm=True, assignee=Person("alice@acme-pumps.example", "Alice"))
TRASHED = Decision("spam", False, "trash_later", ("Triage/Processed", "Triage/Spam"), archive=True, draft=False,
                   trash_after_hours=72.0, notify=False, crm=False)


def test_the_actions_of_a_decision_are_listed_in_the_order_they_happen() -> None:
    assert describe_actions(DRAFTED, ["slack", "console"], ["hubspot"]) == [
        "draft reply", "assign alice@acme-pumps.example", "label Triage/Processed + Triage/Lead", "archive",
        "notify slack, console", "crm upsert hubspot"]
    assert describe_actions(DRAFTED)[-2:] == ["notify", "crm upsert"]  # sinks unknown: said without names
    assert describe_actions(TRASHED, ["slack"], ["hubspot"]) == ["label Triage/Processed + Triage/Spam", "archive",
                                                                "trash after 72h"]


def test_a_ping_or_upsert_no_sink_would_make_is_left_out() -> None:
    assert describe_actions(DRAFTED, [], []) == ["draft reply", "assign alice@acme-pumps.example",
                                                 "label Triage/Processed + Triage/Lead", "archive"]
    kept_in_inbox = Decision("lead", True, "review", ("Triage/Processed", "Triage/Review"), archive=False,
                             draft=False, trash_after_hours=None, notify=False, crm=False)
    assert describe_actions(kept_in_inbox, ["slack"], ["hubspot"]) == ["label Triage/Processed + Triage/Review"]


# ---------------------------------------------------------------- the decision itself, field by field

def test_our_own_mail_is_only_labelled_processed_and_says_which_rule_skipped_it(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"actions": {"skip": {"archive": True}}})
    pre = PrefilterResult("skip", rule="internal", reason="sender is one of our domains")
    d, turn = decide(cfg, email(sender="bob@acme-pumps.example"), pre, LEAD, {}, TODAY,  # type: ignore[arg-type]
                     lambda: [], lambda: None)
    assert turn is None
    assert d == Decision(category="other", review=False, action="skip", labels=("Triage/Processed",), archive=True,
                         draft=False, trash_after_hours=None, notify=False, crm=False,
                         reasons=("prefilter internal: sender is one of our domains",))
    assert decide(cfg, email(), PrefilterResult("skip", "own_draft", "lead", "a draft of ours"), LEAD, {}, TODAY,
                  lambda: [], lambda: None)[0].category == "lead"  # type: ignore[arg-type]


def test_the_reasons_name_the_rule_the_classifier_its_figure_and_its_first_three_reasons(cfg: object) -> None:
    c = Classification("lead", 0.876, "en", "offline", person_email="anna@northwind.example",
                       reasons=("asks for a quote", "names a product", "gives a quantity", "fourth reason"))
    pre = PrefilterResult("classify", rule="allow_sender", reason="northwind.example is allow-listed")
    d, _ = decide(cfg, email(), pre, c, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert d.reasons[:5] == ("prefilter allow_sender: northwind.example is allow-listed", "offline: lead 0.88",
                             "asks for a quote", "names a product", "gives a quantity")
    assert d.reasons[5].startswith("routing: pool inside_sales") and len(d.reasons) == 6
    d, _ = decide(cfg, email(), PRE, c, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert d.reasons[0] == "offline: lead 0.88"  # no rule matched: no pre-filter line


def test_a_review_says_why_after_the_classifiers_reasons(cfg: object) -> None:
    low = Classification("support", 0.3, "en", "offline", reasons=("mentions an order",))
    d, _ = decide(cfg, email(), PRE, low, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert d == Decision(category="support", review=True, action="review",
                         labels=("Triage/Processed", "Triage/Review"), archive=False, draft=False,
                         trash_after_hours=None, notify=False, crm=False,
                         reasons=("offline: support 0.30", "mentions an order",
                                  "review: confidence 0.30 below threshold 0.70"))
    flagged = Classification("lead", 0.99, "en", "offline", review_reason="asks to change bank details")
    d, _ = decide(cfg, email(), PRE, flagged, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert (d.review, d.reasons[-1]) == (True, "review: asks to change bank details")


def test_only_spam_and_newsletters_are_ever_scheduled_for_the_trash_whatever_the_actions_say(cfg: object) -> None:
    # The config refuses trash hours on other categories; the decision holds the rule on its own as well.
    actions = {**cfg.actions, "accounting": replace(cfg.actions["accounting"], trash_after_hours=1.0)}  # type: ignore[attr-defined]
    risky = replace(cfg, actions=actions)  # type: ignore[type-var]
    invoice = Classification("accounting", 0.95, "en", "offline")
    d, _ = decide(risky, email(), PRE, invoice, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert (d.action, d.trash_after_hours, d.archive, d.labels) == (
        "label", None, True, ("Triage/Processed", "Triage/Accounting"))
    assert d.reasons == ("offline: accounting 0.95",)  # a labelled message says why, as an assigned one does
    spam = Classification("spam", 0.95, "en", "offline")
    d, _ = decide(risky, email(), PRE, spam, {}, TODAY, lambda: [], lambda: None)  # type: ignore[arg-type]
    assert (d.action, d.trash_after_hours, d.notify, d.crm) == ("trash_later", 72.0, False, False)
    assert d.reasons == ("offline: spam 0.95",)
