"""The reply draft as built on its own: whom it goes to, how it threads, and lines mail software accepts."""

from __future__ import annotations

import email
from dataclasses import replace
from email import policy
from pathlib import Path

import pytest

from bot.mime import parse_email
from bot.models import Decision, Email, Person
from bot.replies import MAX_REFERENCES, build_reply, is_ours, reply_address, usable_address
from tests.fakes import make_config

LEAD = Decision("lead", False, "draft+assign", ("Triage/Processed", "Triage/Lead"), archive=True, draft=True,
                trash_after_hours=None, notify=True, crm=True,
                assignee=Person("alice@acme-pumps.example", "Alice Carter"))


def mail(references: list[str] | None = None, extra: str = "") -> Email:
    refs = f"References: {' '.join(references)}\n" if references else ""
    return parse_email((f"From: Anna Clarke <anna@northwind.example>\nTo: sales@acme-pumps.example\n"
                        f"Subject: Pumps\nMessage-ID: <m1@northwind.example>\n{refs}{extra}"
                        "Date: Mon, 23 Nov 2026 09:00:00 +0000\nContent-Type: text/plain; charset=utf-8\n\n"
                        "Please quote 3 pumps.\n").encode(), "prov-1")


@pytest.fixture
def cfg(tmp_path: Path) -> object:
    return make_config(tmp_path)


def draft(cfg: object, e: Email, d: Decision = LEAD) -> email.message.EmailMessage:
    return email.message_from_bytes(build_reply(cfg, e, d), policy=policy.default)  # type: ignore[arg-type,return-value]


def test_without_an_address_from_the_decision_the_draft_answers_the_mails_own_reply_address(cfg: object) -> None:
    m = draft(cfg, mail(extra="Reply-To: Buying <buying@northwind.example>\n"))
    assert m["To"] == "buying@northwind.example"
    assert m["Message-ID"].endswith("@acme-pumps.example>")  # made in the shared mailbox's domain
    assert m["In-Reply-To"] == "<m1@northwind.example>" and m["X-Triage-Source"] == "prov-1"
    assert "Hello Anna," in m.get_content()


def test_a_draft_with_nobody_to_answer_is_refused_with_the_reason(cfg: object) -> None:
    ours = replace(mail(), from_addr="sales@acme-pumps.example", reply_to="")
    assert reply_address(cfg, ours) == (  # type: ignore[arg-type]
        "", "the only reply address is one of ours (From sales@acme-pumps.example)")
    with pytest.raises(ValueError, match="^no address to reply to$"):
        build_reply(cfg, ours, LEAD)  # type: ignore[arg-type]


@pytest.mark.parametrize(("ancestors", "kept"), [
    (MAX_REFERENCES - 1, list(range(MAX_REFERENCES - 1))),  # all fit beside the mail itself
    (MAX_REFERENCES, [0, *range(2, MAX_REFERENCES)]),  # the root and the most recent ancestors
    (MAX_REFERENCES + 5, [0, *range(7, MAX_REFERENCES + 5)]),
])
def test_the_references_keep_the_threads_root_and_its_latest_ancestors(cfg: object, ancestors: int,
                                                                       kept: list[int]) -> None:
    ids = [f"<a{i}.{'x' * 50}@northwind.example>" for i in range(ancestors)]
    raw = build_reply(cfg, mail(ids), LEAD)  # type: ignore[arg-type]
    refs = email.message_from_bytes(raw, policy=policy.default)["References"].split()
    assert refs == [ids[i] for i in kept] + ["<m1@northwind.example>"]
    assert len(refs) <= MAX_REFERENCES
    assert max(len(line) for line in raw.splitlines()) <= 998  # RFC 5322's line limit, long chains folded


def test_our_addresses_are_recognised_in_any_case_with_a_trailing_dot_or_spaces(cfg: object) -> None:
    for ours in ("nobody@acme-pumps.example", " Nobody@EU.Acme-Pumps.Example. ", "sales@acme-pumps.example"):
        assert is_ours(cfg, ours), ours  # type: ignore[arg-type]
    for theirs in ("bob@acme-pumps.example.org", "acme-pumps.example@northwind.example", "bob@notacme-pumps.example"):
        assert not is_ours(cfg, theirs), theirs  # type: ignore[arg-type]


@pytest.mark.parametrize(("address", "usable"), [
    ("Anna@Northwind.Example", "anna@northwind.example"),
    ("anna@bücher.example", "anna@xn--bcher-kva.example"),  # the domain in IDNA
    ("anna@northwind.example", "anna@northwind.example"),
    ("jürgen@northwind.example", ""),  # no plain ASCII way to write it
    ('"ann a"@northwind.example', ""),  # quoted, but still a space a mail client would split on
    ("ann a@northwind.example", ""),
    ("anna@north\x1fwind.example", ""),
    ("anna", ""),
])
def test_a_draft_carries_one_plain_ascii_address_or_none(address: str, usable: str) -> None:
    assert usable_address(address) == usable


def test_a_web_form_is_answered_to_the_address_the_customer_typed(cfg: object) -> None:
    form = parse_email((b"From: Website <forms@acme-pumps.example>\nTo: sales@acme-pumps.example\n"
                        b"Subject: New contact form submission\nMessage-ID: <f1@acme-pumps.example>\n"
                        b"Date: Mon, 23 Nov 2026 09:00:00 +0000\nContent-Type: text/plain; charset=utf-8\n\n"
                        b"Name: Anna Clarke\nEmail: anna@northwind.example\nMessage: Please quote 3 pumps.\n")
, "prov-2")
    assert reply_address(cfg, form) == ("anna@northwind.example", "")  # type: ignore[arg-type]
    assert reply_address(cfg, mail(extra="Reply-To: noreply@northwind.example\n")) == (  # type: ignore[arg-type]
        "anna@northwind.example", "")
