"""The in-memory fakes of the CRM and the notifier keep the same promises as the adapters they stand for."""

from __future__ import annotations

from typing import Any

import pytest

from bot.ports import SinkUnavailable
from tests.contract.sink_contract import CrmContract, NotifierContract, lead, ping
from tests.fakes import FakeCrm, FakeNotifier


class TestFakeCrmContract(CrmContract):
    @pytest.fixture
    def crm(self) -> FakeCrm:
        return FakeCrm()

    def notes(self, crm: Any, contact_id: str) -> list[str]:
        return next(c["note_texts"] for c in crm.contacts.values() if c["id"] == contact_id)

    def contact_count(self, crm: Any) -> int:
        return len(crm.contacts)

    def outage(self, crm: Any, down: bool) -> None:
        crm.down = down


class TestFakeNotifierContract(NotifierContract):
    @pytest.fixture
    def notifier(self) -> FakeNotifier:
        return FakeNotifier()

    def posted(self, notifier: Any) -> list[str]:
        return [p["provider_id"] for p in notifier.sent]

    def outage(self, notifier: Any, down: bool) -> None:
        notifier.down = down


def test_one_ping_can_fail_among_good_ones() -> None:
    notifier = FakeNotifier()
    notifier.fail("m2", SinkUnavailable("channel archived"))
    notifier.notify(ping(1), retry=False)
    with pytest.raises(SinkUnavailable):
        notifier.notify(ping(2), retry=False)
    notifier.notify(ping(3), retry=False)
    notifier.notify(ping(2), retry=True)
    assert [p["provider_id"] for p in notifier.sent] == ["m1", "m3", "m2"]


def test_a_lost_response_leaves_the_work_done_for_a_retry_to_find() -> None:
    crm = FakeCrm()
    crm.fail("m1", SinkUnavailable("timed out"), after=True)
    with pytest.raises(SinkUnavailable):
        crm.upsert_lead(lead(1), retry=False)
    cid = crm.upsert_lead(lead(1), retry=True)
    assert [c["notes"] for c in crm.contacts.values() if c["id"] == cid] == [["<lead1@customer.example>"]]
