"""The Slack notifier: the real slack_sdk WebClient against the local Slack fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.adapters.slack import EVENT_TYPE, SlackNotifier
from bot.config import SlackConfig
from bot.models import Person
from bot.ports import SinkUnavailable
from tests.contract.fake_slack import FakeSlack
from tests.contract.sink_contract import NotifierContract
from tests.contract.sink_contract import ping as payload
from tests.httpfake import FakeServer, Response

FALLBACK = "C0FALLBACK"


class Env:
    def __init__(self, srv: FakeServer) -> None:
        self.srv = srv
        self.fake = FakeSlack(srv, users={"bob@acme-pumps.example": "U0BOB", "eva@acme-pumps.example": "U0EVA"},
                              channels={FALLBACK})
        self.sleeps: list[float] = []
        self.cfg = SlackConfig(enabled=True, token="xoxb-test-token", base_url=srv.url + "/api/",
                               fallback_channel=FALLBACK, timeout_seconds=5)
        self.people: dict[str, Person] = {}
        self.notifier = self.new_notifier()

    def new_notifier(self) -> SlackNotifier:
        """A fresh notifier, as after a restart of the process (empty lookup cache)."""
        return SlackNotifier(self.cfg, self.people, sleep=self.sleeps.append)


@pytest.fixture()
def env() -> Iterator[Env]:
    with FakeServer() as srv:
        yield Env(srv)


def test_dm_to_the_assignee_with_blocks_links_and_metadata(env: Env) -> None:
    status = env.notifier.notify(payload(), retry=False)
    assert status == "slack dm U0BOB"
    (post,) = env.fake.posted
    assert post.channel == "D0BOB"
    assert post.args["metadata"] == {"event_type": EVENT_TYPE,
                                     "event_payload": {"provider_id": "m1", "message_id": "<lead1@customer.example>"}}
    assert post.args["unfurl_links"] is False and post.args["unfurl_media"] is False
    assert "link_names" not in post.args
    blocks = post.blocks_json
    for shown in ("Jane Buyer &lt;jane@customer.example&gt;", "Customer GmbH", "Quote for 40 pumps", "*Language*\\nde",
                  "Wants a quote for 40 centrifugal pumps by May.",
                  "<https://mail.google.com/mail/u/0/#all/t1|Open the thread>",
                  "<https://mail.google.com/mail/u/0/#drafts/d1|Open the draft>"):
        assert shown in blocks
    assert "Quote for 40 pumps" in post.text and len(post.text) < 200


def test_unknown_slack_user_goes_to_the_fallback_channel_by_name(env: Env) -> None:
    status = env.notifier.notify(payload(assignee_email="carla@acme-pumps.example", assignee_name="Carla <Diaz>"),
                                 retry=False)
    assert status == f"slack channel {FALLBACK}"
    (post,) = env.fake.in_channel(FALLBACK)
    assert "for Carla &lt;Diaz&gt;" in post.blocks_json
    assert "<@" not in post.blocks_json and "<@" not in post.text


def test_no_slack_user_and_no_fallback_channel_skips(env: Env) -> None:
    env.cfg = SlackConfig(**{**env.cfg.__dict__, "fallback_channel": ""})
    status = env.new_notifier().notify(payload(assignee_email="carla@acme-pumps.example"), retry=False)
    assert status.startswith("slack skipped")
    assert env.fake.posted == []


def test_mentions_and_links_from_the_mail_arrive_escaped(env: Env) -> None:
    env.notifier.notify(payload(subject="<!channel> URGENT & <@U123>", summary="see <https://evil.example|click>",
                                from_name="<!here>", company="<#C999>"), retry=False)
    (post,) = env.fake.posted
    sent = post.text + post.blocks_json
    for raw in ("<!channel>", "<@U123>", "<https://evil.example|click>", "<!here>", "<#C999>"):
        assert raw not in sent
    assert "&lt;!channel&gt; URGENT &amp; &lt;@U123&gt;" in post.blocks_json
    assert "&lt;https://evil.example|click&gt;" in post.blocks_json


def test_a_link_that_is_not_a_plain_url_is_shown_as_text(env: Env) -> None:
    env.notifier.notify(payload(thread_link="maildir:/srv/mail#17", draft_link="https://x.example/a|b>"), retry=False)
    blocks = env.fake.posted[0].blocks_json
    assert "Open the thread: maildir:/srv/mail#17" in blocks
    assert "https://x.example/a|b&gt;" in blocks and "<https://x.example" not in blocks


def test_explicit_slack_id_wins_over_the_lookup(env: Env) -> None:
    status = env.notifier.notify(payload(slack_id="U0EVA"), retry=False)
    assert status == "slack dm U0EVA"
    assert env.fake.calls_to("users.lookupByEmail") == []
    assert env.fake.posted[0].channel == "D0EVA"


def test_configured_slack_id_of_a_person_is_used(env: Env) -> None:
    env.people["bob@acme-pumps.example"] = Person("bob@acme-pumps.example", "Bob Nguyen", slack_id="U0EVA")
    assert env.new_notifier().notify(payload(), retry=False) == "slack dm U0EVA"
    assert env.fake.calls_to("users.lookupByEmail") == []


def test_lookups_are_cached_per_process_including_misses(env: Env) -> None:
    for n in range(3):
        env.notifier.notify(payload(n), retry=False)
        env.notifier.notify(payload(n, assignee_email="carla@acme-pumps.example"), retry=False)
    emails = [c["email"] for c in env.fake.calls_to("users.lookupByEmail")]
    assert emails == ["bob@acme-pumps.example", "carla@acme-pumps.example"]
    assert len(env.fake.posted) == 6


def test_replay_of_a_delivered_ping_does_not_post_again(env: Env) -> None:
    env.notifier.notify(payload(1), retry=False)
    env.notifier.notify(payload(2), retry=False)
    status = env.new_notifier().notify(payload(1), retry=True)
    assert status == "slack dm U0BOB"
    assert len(env.fake.posted) == 2
    (history,) = env.fake.calls_to("conversations.history")
    assert history["channel"] == "D0BOB" and history["include_all_metadata"] in ("1", "true")


def test_a_replay_tells_two_mails_with_one_message_id_apart(env: Env) -> None:
    """Identity is the mailbox's id: the ping of a second mail that reuses a Message-ID is still posted, once."""
    env.notifier.notify(payload(1), retry=False)
    env.new_notifier().notify(payload(1, provider_id="m2"), retry=True)
    env.new_notifier().notify(payload(1, provider_id="m2"), retry=True)
    assert [p.args["metadata"]["event_payload"]["provider_id"] for p in env.fake.posted] == ["m1", "m2"]


def test_replay_of_an_undelivered_ping_posts_once(env: Env) -> None:
    env.notifier.notify(payload(1, assignee_email="carla@acme-pumps.example"), retry=False)  # fallback channel
    assert env.new_notifier().notify(payload(2, assignee_email="carla@acme-pumps.example"), retry=True) == \
        f"slack channel {FALLBACK}"
    assert [json.loads(json.dumps(p.args["metadata"]))["event_payload"]["message_id"] for p in env.fake.posted] == \
        ["<lead1@customer.example>", "<lead2@customer.example>"]
    assert env.fake.calls_to("conversations.open") == []  # a channel needs no DM lookup


def test_a_lost_response_is_retried_without_a_second_post(env: Env) -> None:
    env.fake.lost_post_responses = 1
    assert env.notifier.notify(payload(), retry=False) == "slack dm U0BOB"
    assert len(env.fake.posted) == 1
    assert len(env.fake.calls_to("conversations.history")) == 1
    assert len(env.sleeps) == 1


def test_history_without_scope_still_delivers(env: Env) -> None:
    env.srv.fail(r"conversations.history", Response(200, {"ok": False, "error": "missing_scope"}))
    env.notifier.notify(payload(), retry=True)
    assert len(env.fake.posted) == 1


def test_429_waits_for_retry_after(env: Env) -> None:
    env.srv.fail(r"chat.postMessage", Response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"}))
    assert env.notifier.notify(payload(), retry=False) == "slack dm U0BOB"
    assert len(env.sleeps) == 1 and 3 <= env.sleeps[0] <= 3.3
    assert len(env.fake.posted) == 1
    assert env.fake.calls_to("conversations.history") == []  # a 429 was never posted: nothing to look for


def test_outage_raises_sink_unavailable(env: Env) -> None:
    env.srv.fail(r"/api/", Response(503, "upstream connect error"), times=50)
    with pytest.raises(SinkUnavailable, match="503"):
        env.notifier.notify(payload(), retry=False)
    assert len(env.sleeps) == 4
    assert env.fake.posted == []


def test_rejected_token_is_unavailable_without_retrying(env: Env) -> None:
    env.cfg = SlackConfig(**{**env.cfg.__dict__, "token": "xoxb-revoked"})
    with pytest.raises(SinkUnavailable, match="invalid_auth"):
        env.new_notifier().notify(payload(), retry=False)
    assert env.sleeps == []


def test_an_alert_goes_to_the_fallback_channel_as_escaped_text(env: Env) -> None:
    where = env.notifier.alert("Gmail authorization expired <!channel>: run `python run.py auth gmail` again")
    (post,) = env.fake.in_channel(FALLBACK)
    assert "Gmail authorization expired &lt;!channel&gt;" in post.text and "<!channel>" not in post.text
    assert where == f"Slack channel {FALLBACK}"
    env.cfg = SlackConfig(**{**env.cfg.__dict__, "fallback_channel": ""})
    assert env.new_notifier().alert("nobody to tell") is None
    assert len(env.fake.posted) == 1


def test_follow_up_pings_say_what_happened_and_an_escalation_goes_to_the_channel(env: Env) -> None:
    env.fake.channels.add("C0MANAGERS")
    note = "2026-11-30 10:00 UTC reminder to bob@acme-pumps.example after 4.0 business hours <!channel>"

    def event(kind: str, n: int, **fields: Any) -> dict[str, Any]:  # a follow-up ping keyed as the bot keys it
        return payload(kind=kind, provider_id=f"m1#{kind}-{n}", message_id=f"<lead1@c>#{kind}-{n}", **fields)

    assert env.notifier.notify(event("reminder", 1, note=note), retry=False) == "slack dm U0BOB"
    assert env.notifier.notify(event("escalation", 2, channel="C0MANAGERS"), retry=False) == "slack channel C0MANAGERS"
    assert env.notifier.notify(event("escalation", 3, channel=""),
                               retry=False) == f"slack channel {FALLBACK}"  # no channel configured: the fallback
    reminder, escalation, _ = env.fake.posted
    assert reminder.text.startswith("Reminder: this lead has no answer yet from")
    assert "after 4.0 business hours &lt;!channel&gt;" in reminder.blocks_json  # mail-free, and escaped anyway
    assert escalation.channel == "C0MANAGERS" and escalation.text.startswith("Unanswered lead from")
    assert "Unanswered lead* for Bob Nguyen" in escalation.blocks_json
    # a replayed reminder finds its own post, not the lead's first ping
    env.notifier.notify(payload(message_id="<lead1@c>"), retry=False)
    assert env.new_notifier().notify(event("reminder", 1), retry=True) == "slack dm U0BOB"
    assert len(env.fake.posted) == 4
    env.new_notifier().notify(event("reminder", 9), retry=True)  # never posted: the lead's own ping is not it
    assert len(env.fake.posted) == 5


class TestSlackNotifierContract(NotifierContract):
    """The Slack adapter keeps the notifier port's promises (so does tests.fakes.FakeNotifier)."""

    @pytest.fixture
    def notifier(self, env: Env) -> SlackNotifier:
        self.env = env
        return env.notifier

    def posted(self, notifier: Any) -> list[str]:
        return [p.args["metadata"]["event_payload"]["provider_id"] for p in self.env.fake.posted]

    def outage(self, notifier: Any, down: bool) -> None:
        if down:
            self.env.srv.fail(r"/api/", Response(503, "upstream connect error"), times=50)
        else:
            self.env.srv.faults.clear()
