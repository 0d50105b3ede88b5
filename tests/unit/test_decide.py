"""decide() on its own: who owns a conversation, forms without an address, requests that must never be trashed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.decide import decide
from bot.mime import parse_email
from bot.models import Classification, PrefilterResult
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
    assert turn is not None and turn.member == "bob@acme-pumps.example"


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
