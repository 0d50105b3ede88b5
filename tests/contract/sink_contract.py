"""What every CRM and every notifier promises the outbox, as reusable pytest suites.

Subclass CrmContract or NotifierContract in a test module (the subclass name must start with "Test"), override the
fixture that builds the sink and the hooks that look inside it. Each suite runs against the real adapter (HubSpot,
Slack, through their client libraries and the local fakes) and against the in-memory fake in tests/fakes.py, so the
fake the pipeline tests use cannot drift from the adapter it stands for: in particular, a repeat is only recognised
when the caller says it is a retry, so a pipeline that forgets the flag shows up as a duplicate.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.ports import Crm, Notifier, SinkUnavailable


def lead(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A CRM payload of mail n from Jane at customer.example."""
    base: dict[str, Any] = {
        "provider_id": f"m{n}", "message_id": f"<lead{n}@customer.example>", "email": "Jane.Buyer@Customer.example",
        "first_name": "Jane", "last_name": "Buyer", "company": "Customer GmbH", "company_domain": "customer.example",
        "language": "de", "subject": "Quote for 40 pumps",
        "note": f"Quote for 40 pumps\n\nHello, we need 40 pumps (mail {n}).",
        "owner_id": "9001", "lead_source": "shared inbox", "received_at": "2026-03-02T09:15:00+00:00",
    }
    return base | fields


def ping(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A notification payload of mail n, for Bob."""
    base: dict[str, Any] = {
        "provider_id": f"m{n}", "message_id": f"<lead{n}@customer.example>", "assignee_email": "bob@acme-pumps.example",
        "assignee_name": "Bob Nguyen", "slack_id": None, "from_name": "Jane Buyer",
        "from_addr": "jane@customer.example",
        "company": "Customer GmbH", "subject": "Quote for 40 pumps", "language": "de",
        "summary": "Wants a quote for 40 centrifugal pumps by May.", "category": "lead",
        "thread_link": "https://mail.google.com/mail/u/0/#all/t1",
        "draft_link": "https://mail.google.com/mail/u/0/#drafts/d1",
    }
    return base | fields


class CrmContract:
    """The CRM port: one contact per address, one note per call, a retry that finds the note already there."""

    @pytest.fixture
    def crm(self) -> Crm:
        raise NotImplementedError

    # Hooks: what the CRM holds, and an outage.
    def notes(self, crm: Crm, contact_id: str) -> list[str]:
        """The note texts of a contact, oldest first."""
        raise NotImplementedError

    def contact_count(self, crm: Crm) -> int:
        raise NotImplementedError

    def outage(self, crm: Crm, down: bool) -> None:
        raise NotImplementedError

    def test_mails_of_one_person_share_a_contact_and_each_adds_its_note(self, crm: Crm) -> None:
        first = crm.upsert_lead(lead(1), retry=False)
        second = crm.upsert_lead(lead(2, email="jane.buyer@customer.example"), retry=False)
        assert first == second and self.contact_count(crm) == 1
        notes = self.notes(crm, first)
        assert len(notes) == 2 and "mail 1" in notes[0] and "mail 2" in notes[1]

    def test_a_retry_of_an_upsert_that_landed_adds_no_note(self, crm: Crm) -> None:
        cid = crm.upsert_lead(lead(1), retry=False)
        assert crm.upsert_lead(lead(1), retry=True) == cid
        assert len(self.notes(crm, cid)) == 1 and self.contact_count(crm) == 1

    def test_a_retry_of_an_upsert_that_never_landed_adds_its_note_once(self, crm: Crm) -> None:
        cid = crm.upsert_lead(lead(1), retry=False)
        crm.upsert_lead(lead(2), retry=True)
        crm.upsert_lead(lead(2), retry=True)
        assert len(self.notes(crm, cid)) == 2

    def test_without_the_retry_flag_a_repeat_is_not_recognised(self, crm: Crm) -> None:
        """Looking for an earlier note costs calls: only a replay, flagged by the caller, does it."""
        cid = crm.upsert_lead(lead(1), retry=False)
        crm.upsert_lead(lead(1), retry=False)
        assert len(self.notes(crm, cid)) == 2

    def test_an_outage_raises_sink_unavailable_and_the_replay_completes(self, crm: Crm) -> None:
        self.outage(crm, True)
        with pytest.raises(SinkUnavailable):
            crm.upsert_lead(lead(1), retry=False)
        assert self.contact_count(crm) == 0
        self.outage(crm, False)
        cid = crm.upsert_lead(lead(1), retry=True)
        assert len(self.notes(crm, cid)) == 1

    def test_a_lead_without_an_address_is_a_caller_error(self, crm: Crm) -> None:
        with pytest.raises(ValueError):
            crm.upsert_lead(lead(1, email=""), retry=False)
        assert self.contact_count(crm) == 0


class NotifierContract:
    """The notifier port: one post per call, a retry that finds the post already there."""

    @pytest.fixture
    def notifier(self) -> Notifier:
        raise NotImplementedError

    # Hooks: what was posted (the provider ids, oldest first), and an outage.
    def posted(self, notifier: Notifier) -> list[str]:
        raise NotImplementedError

    def outage(self, notifier: Notifier, down: bool) -> None:
        raise NotImplementedError

    def test_each_ping_is_posted(self, notifier: Notifier) -> None:
        notifier.notify(ping(1), retry=False)
        notifier.notify(ping(2), retry=False)
        assert self.posted(notifier) == ["m1", "m2"]

    def test_a_retry_of_a_ping_that_landed_posts_nothing(self, notifier: Notifier) -> None:
        notifier.notify(ping(1), retry=False)
        notifier.notify(ping(2), retry=False)
        notifier.notify(ping(1), retry=True)
        assert self.posted(notifier) == ["m1", "m2"]

    def test_a_retry_of_a_ping_that_never_landed_posts_it_once(self, notifier: Notifier) -> None:
        notifier.notify(ping(1), retry=False)
        notifier.notify(ping(2), retry=True)
        notifier.notify(ping(2), retry=True)
        assert self.posted(notifier) == ["m1", "m2"]

    def test_without_the_retry_flag_a_repeat_is_posted_again(self, notifier: Notifier) -> None:
        notifier.notify(ping(1), retry=False)
        notifier.notify(ping(1), retry=False)
        assert self.posted(notifier) == ["m1", "m1"]

    def test_an_outage_raises_sink_unavailable_and_posts_nothing(self, notifier: Notifier) -> None:
        self.outage(notifier, True)
        with pytest.raises(SinkUnavailable):
            notifier.notify(ping(1), retry=False)
        assert self.posted(notifier) == []
        self.outage(notifier, False)
        notifier.notify(ping(1), retry=True)
        assert self.posted(notifier) == ["m1"]
