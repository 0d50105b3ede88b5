"""The HubSpot CRM adapter: its real HTTP client (requests) against the local HubSpot fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bot.adapters.hubspot import HubspotCrm
from bot.config import HubspotConfig
from bot.ports import SinkUnavailable
from tests.contract.fake_hubspot import FakeHubspot
from tests.contract.sink_contract import CrmContract, lead
from tests.httpfake import FakeServer, Response


class RecordingSession(requests.Session):
    """A real session that also keeps the timeout of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[Any] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.timeouts.append(kwargs.get("timeout"))
        return super().send(request, **kwargs)


class Env:
    def __init__(self, srv: FakeServer) -> None:
        self.srv = srv
        self.fake = FakeHubspot(srv)
        self.sleeps: list[float] = []
        self.session = RecordingSession()
        self.cfg = HubspotConfig(enabled=True, token="pat-test-token", base_url=srv.url, timeout_seconds=7)
        self.crm = self.new_crm()

    def new_crm(self) -> HubspotCrm:
        """A fresh adapter, as after a restart of the process."""
        return HubspotCrm(self.cfg, self.session, sleep=self.sleeps.append)

    def contacts(self) -> dict[str, dict[str, str]]:
        return self.fake.of("contacts")

    def notes_of(self, cid: str) -> list[str]:
        return [self.fake.of("notes")[n]["hs_note_body"] for n in self.fake.linked("contacts", cid, "notes")]


@pytest.fixture()
def env() -> Iterator[Env]:
    with FakeServer() as srv:
        yield Env(srv)


def test_create_then_update_keeps_one_contact_and_fills_only_blanks(env: Env) -> None:
    cid = env.crm.upsert_lead(lead(1, company="", company_domain=""), retry=False)
    props = env.contacts()[cid]
    assert props == {"email": "jane.buyer@customer.example", "firstname": "Jane", "lastname": "Buyer",
                     "hs_language": "de", "hubspot_owner_id": "9001", "lifecyclestage": "lead",
                     "hs_lead_status": "NEW"}
    props["firstname"] = "Janet"  # corrected by a salesperson in HubSpot
    props["hs_lead_status"] = "IN_PROGRESS"
    again = env.crm.upsert_lead(lead(2, first_name="Jane", owner_id="9002"), retry=False)
    assert again == cid
    assert len(env.contacts()) == 1
    assert env.contacts()[cid]["firstname"] == "Janet"
    assert env.contacts()[cid]["company"] == "Customer GmbH"  # was blank: filled in
    assert env.contacts()[cid]["hubspot_owner_id"] == "9001"  # the owner stays
    assert env.contacts()[cid]["hs_lead_status"] == "IN_PROGRESS"
    assert len(env.notes_of(cid)) == 2


def test_conflict_on_create_updates_the_existing_contact(env: Env) -> None:
    env.fake.index_lag = True  # the first contact is not searchable yet
    cid = env.crm.upsert_lead(lead(1, company=""), retry=False)
    again = env.crm.upsert_lead(lead(2), retry=False)
    assert again == cid
    assert len(env.contacts()) == 1
    assert env.contacts()[cid]["company"] == "Customer GmbH"
    assert len(env.srv.requests(r"^/crm/v3/objects/contacts$", "POST")) == 2  # the second create met the 409
    assert env.srv.requests(rf"^/crm/v3/objects/contacts/{cid}$", "PATCH")


def test_company_is_found_or_created_once_by_domain_and_associated(env: Env) -> None:
    a = env.crm.upsert_lead(lead(1), retry=False)
    b = env.crm.upsert_lead(lead(2, email="max@customer.example", first_name="Max"), retry=False)
    (company,) = env.fake.of("companies")
    assert env.fake.of("companies")[company] == {"domain": "customer.example", "name": "Customer GmbH"}
    assert env.fake.linked("companies", company, "contacts") == sorted([a, b])


def test_existing_company_is_reused(env: Env) -> None:
    env.fake.of("companies")["77"] = {"domain": "customer.example", "name": "Customer (from sales)"}
    cid = env.crm.upsert_lead(lead(), retry=False)
    assert list(env.fake.of("companies")) == ["77"]
    assert env.fake.linked("contacts", cid, "companies") == ["77"]


def test_replay_after_a_landed_upsert_adds_no_contact_company_or_note(env: Env) -> None:
    cid = env.crm.upsert_lead(lead(1), retry=False)
    assert env.new_crm().upsert_lead(lead(1), retry=True) == cid
    assert len(env.contacts()) == 1 and len(env.fake.of("companies")) == 1
    assert len(env.notes_of(cid)) == 1
    env.new_crm().upsert_lead(lead(2), retry=True)  # a different mail of the same person does get its note
    assert len(env.notes_of(cid)) == 2


def test_a_replay_tells_two_mails_with_one_message_id_apart(env: Env) -> None:
    """Identity is the mailbox's id: a second mail that reuses a Message-ID still gets its own note."""
    cid = env.crm.upsert_lead(lead(1), retry=False)
    env.new_crm().upsert_lead(lead(1, provider_id="m2"), retry=True)
    env.new_crm().upsert_lead(lead(1, provider_id="m2"), retry=True)
    assert len(env.notes_of(cid)) == 2


def test_lost_response_of_a_note_is_retried_without_a_second_note(env: Env) -> None:
    env.fake.of("contacts")["42"] = {"email": "jane.buyer@customer.example", "firstname": "Jane"}
    env.fake.lost_create_responses = 1
    assert env.crm.upsert_lead(lead(1, company_domain=""), retry=False) == "42"
    assert len(env.notes_of("42")) == 1
    assert len(env.sleeps) == 1


def test_note_is_html_escaped_and_carries_source_and_message_id(env: Env) -> None:
    cid = env.crm.upsert_lead(lead(1, note="Hi <script>alert(1)</script> & bye\nline 2"), retry=False)
    (body,) = env.notes_of(cid)
    assert "<script>" not in body
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; bye<br>line 2" in body
    assert "Source: shared inbox" in body and "Message-ID: &lt;lead1@customer.example&gt;" in body
    (note_id,) = env.fake.linked("contacts", cid, "notes")
    assert env.fake.of("notes")[note_id]["hs_timestamp"] == "2026-03-02T09:15:00+00:00"


def test_an_option_the_portal_lacks_is_dropped_not_fatal(env: Env) -> None:
    cid = env.crm.upsert_lead(lead(1, language="sv"), retry=False)
    assert "hs_language" not in env.contacts()[cid]
    assert env.contacts()[cid]["firstname"] == "Jane"
    creates = len(env.srv.requests(r"^/crm/v3/objects/contacts$", "POST"))
    env.crm.upsert_lead(lead(2, email="max@customer.example", language="sv"), retry=False)
    assert len(env.srv.requests(r"^/crm/v3/objects/contacts$", "POST")) == creates + 1  # not refused twice


def test_429_honours_retry_after_and_hubspot_headers(env: Env) -> None:
    env.srv.fail(r"/contacts/search$", Response(429, {"status": "error", "category": "RATE_LIMITS"},
                                                {"Retry-After": "2"}))
    env.srv.fail(r"/companies/search$", Response(429, {"status": "error", "policyName": "SECONDLY"},
                                                 {"X-HubSpot-RateLimit-Secondly-Remaining": "0"}))
    env.crm.upsert_lead(lead(), retry=False)
    assert len(env.sleeps) == 2
    assert 2 <= env.sleeps[0] <= 2.2 and 1 <= env.sleeps[1] <= 1.1
    assert len(env.contacts()) == 1 and len(env.fake.of("notes")) == 1


def test_spent_daily_limit_is_unavailable_at_once(env: Env) -> None:
    env.srv.fail(r"/search$", Response(429, {"status": "error", "policyName": "DAILY"},
                                       {"X-HubSpot-RateLimit-Daily-Remaining": "0"}))
    with pytest.raises(SinkUnavailable, match="429"):
        env.crm.upsert_lead(lead(), retry=False)
    assert env.sleeps == []


def test_outage_raises_sink_unavailable_and_the_replay_completes(env: Env) -> None:
    env.srv.fail(r"/crm/", Response(503, "Service Unavailable"), times=50)
    with pytest.raises(SinkUnavailable, match="503"):
        env.crm.upsert_lead(lead(), retry=False)
    assert len(env.sleeps) == 4 and env.contacts() == {}
    env.srv.faults.clear()
    cid = env.crm.upsert_lead(lead(), retry=True)
    assert list(env.contacts()) == [cid] and len(env.notes_of(cid)) == 1


def test_rejected_token_is_unavailable_without_retrying(env: Env) -> None:
    env.cfg = HubspotConfig(enabled=True, token="pat-revoked", base_url=env.srv.url, timeout_seconds=7)
    with pytest.raises(SinkUnavailable, match="401"):
        env.new_crm().upsert_lead(lead(), retry=False)
    assert env.sleeps == []


def test_every_call_has_a_timeout(env: Env) -> None:
    env.crm.upsert_lead(lead(), retry=True)
    assert len(env.session.timeouts) >= 6
    assert set(env.session.timeouts) == {(5.0, 7)}


def test_a_lead_without_an_email_is_a_caller_error(env: Env) -> None:
    with pytest.raises(ValueError):
        env.crm.upsert_lead(lead(email=""), retry=False)
    assert env.srv.log == []


def test_retry_within_one_call_does_not_recreate_a_company_the_index_cannot_see_yet(env: Env) -> None:
    env.fake.index_lag = True
    env.srv.fail(r"/associations/default/", Response(503, "Service Unavailable"))
    cid = env.crm.upsert_lead(lead(), retry=False)
    (company,) = env.fake.of("companies")
    assert env.fake.linked("contacts", cid, "companies") == [company]
    assert len(env.contacts()) == 1 and len(env.sleeps) == 1


class TestHubspotCrmContract(CrmContract):
    """The HubSpot adapter keeps the CRM port's promises (so does tests.fakes.FakeCrm)."""

    @pytest.fixture
    def crm(self, env: Env) -> HubspotCrm:
        self.env = env
        return env.crm

    def notes(self, crm: Any, contact_id: str) -> list[str]:
        return self.env.notes_of(contact_id)

    def contact_count(self, crm: Any) -> int:
        return len(self.env.contacts())

    def outage(self, crm: Any, down: bool) -> None:
        if down:
            self.env.srv.fail(r"/crm/", Response(503, "Service Unavailable"), times=50)
        else:
            self.env.srv.faults.clear()
