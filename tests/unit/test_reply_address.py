"""A reply draft never goes to one of our own addresses: Reply-To of ours falls back to an outside From, else review."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from tests.fakes import raw_mail
from tests.unit.test_pipeline import LEAD, Bot

OUTSIDE = "Jane Prospect <jane@prospect.example>"
PATCH = {"routing": {"colleagues": ["agency@partner-agency.example"]}}


@pytest.mark.parametrize("reply_to", [
    "sales@acme-pumps.example",  # the shared mailbox itself
    "SALES@Acme-Pumps.EXAMPLE",
    "Sales Team <sales@ACME-PUMPS.example>",
    "=?utf-8?q?Acme_Sales?= <sales@acme-pumps.example>",
    "=?utf-8?b?QWNtZSBTYWxlcw==?= <Sales@Acme-Pumps.Example>",
    "alice@acme-pumps.example",  # a salesperson
    "someone@eu.acme-pumps.example",  # a subdomain of ours
    "agency@partner-agency.example",  # a colleague outside our domains
    "=?utf-8?q?sales=40acme-pumps=2Eexample?=",  # an address hidden in an encoded word
    "=?utf-8?q?sales?=@acme-pumps.example",
    "sales@=?utf-8?q?acme-pumps.example?=",
])
def test_a_reply_to_of_ours_is_never_the_drafts_to(tmp_path: Path, reply_to: str) -> None:
    bot = Bot(tmp_path, PATCH)
    bot.mail.add(raw_mail(LEAD, sender=OUTSIDE, extra=f"Reply-To: {reply_to}\r\n"))
    bot.cycle()
    [draft] = bot.drafts()
    assert email.message_from_bytes(draft.raw, policy=policy.default)["To"] == "jane@prospect.example"
    assert list(bot.crm.contacts) == ["jane@prospect.example"]
    assert bot.notifier.sent[0]["from_addr"] == "jane@prospect.example"


def test_an_outside_reply_to_is_used_even_when_the_sender_is_ours(tmp_path: Path) -> None:
    """A web form sends from our domain with the customer in Reply-To: the draft answers the customer."""
    bot = Bot(tmp_path)
    bot.mail.add(raw_mail(LEAD, sender="Web Form <forms@acme-pumps.example>",
                          extra="Reply-To: Jane Prospect <Jane@Prospect.example>\r\n"))
    bot.cycle()
    [draft] = bot.drafts()
    assert email.message_from_bytes(draft.raw, policy=policy.default)["To"] == "jane@prospect.example"


@pytest.mark.parametrize(("sender", "reply_to"), [
    ("undisclosed-recipients:;", "sales@acme-pumps.example"),
    ("Odd <=?utf-8?q?x?=@prospect.example>", "bob@acme-pumps.example"),
])
def test_a_lead_whose_only_reply_address_is_ours_goes_to_review(tmp_path: Path, sender: str, reply_to: str) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail(LEAD, sender=sender, extra=f"Reply-To: {reply_to}\r\n"))
    bot.cycle()
    assert bot.drafts() == [] and bot.crm.contacts == {} and bot.notifier.sent == []
    assert "Triage/Review" in bot.labels(pid) and "INBOX" in bot.labels(pid)
    assert f"the only reply address is one of ours (Reply-To {reply_to})" in bot.audit.rows[0]["reasons"]


def test_an_extracted_contact_address_of_ours_is_not_the_leads(tmp_path: Path) -> None:
    """Whatever a classifier read out of the mail, the CRM contact is never our own mailbox."""
    bot = Bot(tmp_path)

    class Extracts(type(bot.classifier)):  # type: ignore[misc]
        def classify(self, em, hint=None):  # type: ignore[no-untyped-def]
            from dataclasses import replace
            return replace(super().classify(em, hint), person_email="sales@acme-pumps.example")

    bot.classifier = Extracts()
    bot.mail.add(raw_mail(LEAD, sender=OUTSIDE))
    bot.cycle()
    assert list(bot.crm.contacts) == ["jane@prospect.example"]
