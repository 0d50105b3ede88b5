"""The whole bot on Gmail: bot.pipeline with the real GmailProvider (google-api-python-client, google-auth refreshing
at the fake's token endpoint) against the stateful local Gmail fake, the ledger on disk, in-memory sinks.

Assertions are on what a person would see in the mailbox (labels, drafts, threads) and on the ledger.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, cast

import pytest

from bot.adapters.gmail import CURSOR_KEY, GmailProvider
from bot.adapters.gmail_auth import AUTH_EXPIRED, load_credentials
from bot.adapters.gmail_quota import QuotaPacer
from bot.bootstrap import build_classifier, build_mail, google_scopes, open_ledger, thread_link
from bot.models import Classification, Email, PrefilterResult
from bot.pipeline import CycleReport, Pipeline, Services
from bot.ports import AuthError, Classifier
from tests.contract.fake_gmail import FakeGmail, FakeMessage, gerror, unb64url
from tests.fakes import FakeAuditSink, FakeCrm, FakeNotifier, KeywordClassifier, make_config, raw_mail

ROOT = Path(__file__).resolve().parents[2]
LEAD_SUBJECT = "Quote for 3 pumps [lead:en:0.95]"


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the bot may catch it)."""


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Hooked(KeywordClassifier):
    """KeywordClassifier that runs a hook (what a person or Google does meanwhile) when it sees a subject word."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: dict[str, Callable[[], None]] = {}

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        for word in [w for w in self.hooks if w in email.subject]:
            self.hooks.pop(word)()
        return super().classify(email, hint)


class GmailBot:
    """The bot as bot.bootstrap wires it for `mail.provider: gmail`, with fake sinks and a controllable clock."""

    def __init__(self, gm: FakeGmail, tmp_path: Path, patch: dict[str, Any] | None = None) -> None:
        gmail = {"api_endpoint": gm.api_endpoint, "batch_uri": gm.batch_uri, "token_uri": gm.token_uri,
                 "token_file": str(tmp_path / "state" / "gmail-token.json")}
        patch = dict(patch or {})
        patch["mail"] = patch.get("mail", {}) | {"provider": "gmail",
                                                 "gmail": gmail | patch.get("mail", {}).get("gmail", {})}
        self.gm, self.cfg = gm, make_config(tmp_path, patch)
        gm.write_token_file(self.cfg.mail.gmail.token_file)
        self.keywords = Hooked()
        self.classifier: Classifier = self.keywords
        self.audit, self.notifier, self.crm = FakeAuditSink(), FakeNotifier(), FakeCrm()
        self.clock = gm.clock  # one clock: Gmail's internal dates and the bot's trash schedule
        self.sleeps = Sleeps()
        self.ledger = open_ledger(self.cfg)
        self.start()

    def start(self, sleep: Callable[[float], None] | None = None, **provider: Any) -> None:
        """Start the process (again): the ledger reopened, credentials loaded from the token file, a new provider."""
        self.ledger.close()
        self.ledger = open_ledger(self.cfg)
        creds = load_credentials(self.cfg.mail.gmail, google_scopes(self.cfg))
        self.mail = GmailProvider(self.cfg.mail.gmail, creds, self.cfg.labels, self.ledger,
                                  sleep=sleep or self.sleeps, clock=self.clock,
                                  **{"max_message_bytes": self.cfg.mail.max_message_bytes} | provider)
        self.pipeline = Pipeline(self.services())

    def services(self) -> Services:
        return Services(cfg=self.cfg, mail=self.mail, classifier=self.classifier, ledger=self.ledger,
                        audit_sinks=[self.audit], notifiers=[self.notifier], crms=[self.crm], clock=self.clock,
                        link=cast(Callable[[str, str], str], thread_link(self.cfg)))

    def cycle(self) -> CycleReport:
        return self.pipeline.run_cycle()

    def deliver(self, subject: str, **kw: Any) -> str:
        labels = kw.pop("labels", ("INBOX", "UNREAD"))
        return self.gm.add_message(raw_mail(subject, **kw), labels=labels)

    def label(self, category: str) -> str:
        return self.cfg.labels.categories[category]

    def labels(self, mid: str) -> set[str]:
        return self.gm.label_names(mid)

    def drafts_in(self, mid: str) -> list[FakeMessage]:
        thread = self.gm.messages[mid].thread_id
        return [m for m in self.gm.messages.values() if "DRAFT" in m.labels and m.thread_id == thread]

    def rows(self, mid: str) -> list[dict[str, Any]]:
        return [r for r in self.audit.rows if r["provider_id"] == mid]


@pytest.fixture
def gm() -> Iterator[FakeGmail]:
    with FakeGmail() as fake:
        yield fake
        assert fake.sent() == []  # whatever a test did, the bot never sent mail


@pytest.fixture
def bot(gm: FakeGmail, tmp_path: Path) -> GmailBot:
    return GmailBot(gm, tmp_path)


def assert_lead_done(bot: GmailBot, mid: str) -> None:
    """Drafted once in its thread, labelled, archived, decided once, one audit row, one ping, one CRM note."""
    assert len(bot.drafts_in(mid)) == 1
    assert {bot.label("lead"), bot.cfg.labels.processed} <= bot.labels(mid) and "INBOX" not in bot.labels(mid)
    row = bot.ledger.get(mid)
    assert row is not None and row.status == "done" and row.assignee
    assert len(bot.rows(mid)) == 1 and bot.rows(mid)[0]["draft_id"]
    assert [p["message_id"] for p in bot.notifier.sent].count(row.message_id) == 1
    assert sum(c["notes"].count(row.message_id) for c in bot.crm.contacts.values()) == 1


# ---------------------------------------------------------------- sync


def test_first_sync_processes_the_demo_inbox_as_bootstrap_wires_it(gm: FakeGmail, tmp_path: Path) -> None:
    bot = GmailBot(gm, tmp_path)
    mail = build_mail(bot.cfg, bot.ledger)  # exactly the provider `run.py` builds
    assert isinstance(mail, GmailProvider)
    bot.mail = mail
    bot.classifier = build_classifier(bot.cfg, bot.ledger)  # the offline classifier
    bot.pipeline = Pipeline(bot.services())
    ids = [gm.add_message(path.read_bytes()) for path in sorted((ROOT / "demo" / "inbox").glob("*.eml"))]

    report = bot.cycle()

    assert report.processed == len(ids) >= 30 and report.failed == 0
    assert gm.calls.count("messages.get") == len(ids)  # each message downloaded once, its lookup included
    processed, review = bot.cfg.labels.processed, bot.cfg.labels.review
    drafted = 0
    for mid in ids:
        row = bot.ledger.get(mid)
        assert row is not None and row.status == "done"
        decision = row.record["decision"]
        names = bot.labels(mid)
        assert processed in names
        assert (review in names) == row.review
        if not row.review and decision["action"] != "skip":
            assert bot.label(row.category) in names
        assert ("INBOX" not in names) == decision["archive"]
        drafts = bot.drafts_in(mid)
        assert len(drafts) == (1 if decision["draft"] else 0)
        drafted += len(drafts)
    assert drafted == len(gm.drafts) > 0
    assert sorted(r["provider_id"] for r in bot.audit.rows) == sorted(ids)
    assert bot.ledger.get_cursor(CURSOR_KEY)
    gm.reset_counters()
    again = bot.cycle()
    assert again.listed == again.processed == 0
    assert "messages.get" not in gm.calls and len(bot.audit.rows) == len(ids) and len(gm.drafts) == drafted


def test_incremental_sync_reads_history_and_picks_up_a_new_message(bot: GmailBot) -> None:
    first = bot.deliver("Invoice 42 [accounting:en:0.9]")
    bot.cycle()
    cursor = bot.ledger.get_cursor(CURSOR_KEY)
    mid = bot.deliver(LEAD_SUBJECT)
    bot.gm.reset_counters()
    listed = len(bot.gm.server.requests(r"/messages$"))

    report = bot.cycle()

    assert report.processed == 1
    assert "history.list" in bot.gm.calls
    # no listing of the inbox: the one search is for the small mail, whose lookup is its download
    searches = bot.gm.server.requests(r"/messages$")[listed:]
    assert [str(r.arg("q")).split()[-1] for r in searches] == ["smaller:262144"]
    assert bot.gm.reads == [(mid, "raw")]
    assert_lead_done(bot, mid)
    assert int(bot.ledger.get_cursor(CURSOR_KEY) or 0) > int(cursor or 0)
    assert len(bot.rows(first)) == 1


def test_a_stale_history_id_falls_back_to_a_full_sync_losing_and_repeating_nothing(bot: GmailBot) -> None:
    old = [bot.deliver(LEAD_SUBJECT), bot.deliver("Maybe a lead [lead:en:0.5]"), bot.deliver("Win [spam:en:0.99]")]
    bot.cycle()
    assert "INBOX" in bot.labels(old[1])  # the review message stays in the inbox, labelled processed
    new = [bot.deliver("Second quote [lead:en:0.9]"), bot.deliver("Seal leak [support:en:0.9]")]
    bot.gm.expire_history()
    bot.gm.reset_counters()

    report = bot.cycle()

    calls = bot.gm.calls
    assert calls.index("history.list") < calls.index("users.getProfile") < calls.index("messages.list")
    assert report.processed == 2
    assert Counter(r["provider_id"] for r in bot.audit.rows) == Counter(old + new)  # each exactly once
    assert_lead_done(bot, old[0])
    assert_lead_done(bot, new[0])
    assert bot.label("support") in bot.labels(new[1])
    assert bot.keywords.calls == 5


def test_a_message_a_person_read_first_is_still_processed(bot: GmailBot) -> None:
    before_first_sync = bot.deliver(LEAD_SUBJECT)
    bot.gm.mark_read(before_first_sync)
    bot.cycle()
    between_cycles = bot.deliver("Pumps for Lyon [lead:fr:0.9]")
    bot.gm.mark_read(between_cycles)
    bot.cycle()
    for mid in (before_first_sync, between_cycles):
        assert "UNREAD" not in bot.labels(mid)
        assert_lead_done(bot, mid)


def test_more_mail_than_one_cycle_takes_is_handled_in_turns(gm: FakeGmail, tmp_path: Path) -> None:
    bot = GmailBot(gm, tmp_path, {"poll": {"max_messages_per_cycle": 3}, "mail": {"gmail": {"batch_size": 2}}})
    bot.start(prefetch_bytes=1)  # the listing keeps the first batch of raw mail only; fetch() gets the rest
    ids = [bot.deliver(f"Question {i} [support:en:0.9]") for i in range(7)]
    reports = [bot.cycle() for _ in range(4)]
    assert [r.processed for r in reports] == [3, 3, 1, 0]
    # 7 lookups; fetch() downloads only what they did not keep: the third message of each full cycle
    assert gm.calls.count("messages.get") == 7 + 2
    assert all(bot.label("support") in bot.labels(mid) and "INBOX" not in bot.labels(mid) for mid in ids)
    assert Counter(r["provider_id"] for r in bot.audit.rows) == Counter(ids)
    assert bot.ledger.get_cursor(CURSOR_KEY)  # stored once the backlog was drained


# ---------------------------------------------------------------- crashes and failures


@pytest.mark.parametrize("dies_in", ["drafts.create", "messages.modify"])
def test_a_crash_between_draft_and_label_leaves_one_draft_and_a_labelled_message(bot: GmailBot, dies_in: str) -> None:
    mid = bot.deliver(LEAD_SUBJECT)
    if dies_in == "drafts.create":
        bot.gm.fail_after("drafts.create", gerror(503, "backendError"))  # created, but the answer is an error
    else:
        bot.gm.server.fail(r"/modify$", gerror(503, "backendError"))

    def die(seconds: float) -> None:
        raise Crash  # killed while waiting to retry

    bot.start(sleep=die)
    with pytest.raises(Crash):
        bot.cycle()
    assert len(bot.drafts_in(mid)) == 1 and "INBOX" in bot.labels(mid)
    assert bot.label("lead") not in bot.labels(mid)
    row = bot.ledger.get(mid)
    assert row is not None and row.status == "decided"

    bot.start()  # the restarted process resumes from the ledger
    report = bot.cycle()

    assert report.resumed == 1 and report.processed == 0
    assert_lead_done(bot, mid)
    assert bot.gm.calls.count("drafts.create") == 1
    assert bot.ledger.assignment_counts("inside_sales")["alice@acme-pumps.example"] == 1
    assert sum(bot.ledger.assignment_counts("inside_sales").values()) == 1


def test_a_429_storm_is_ridden_out_and_every_message_is_processed_exactly_once(bot: GmailBot) -> None:
    leads = [bot.deliver(f"Quote {i} [lead:en:0.9]", sender=f"Buyer {i} <buyer{i}@prospect{i}.example>")
             for i in range(4)]
    others = [bot.deliver(f"Offer {i} [spam:en:0.99]") for i in range(4)]
    others += [bot.deliver(f"Ticket {i} [support:en:0.9]") for i in range(4)]
    bot.gm.fail_every(3, gerror(429, "rateLimitExceeded", "Too many concurrent requests for user", retry_after=1))

    for _ in range(6):
        bot.cycle()
        if all((row := bot.ledger.get(m)) is not None and row.status == "done" for m in leads + others):
            break
    bot.gm.calm()
    bot.cycle()  # deliver anything a refused sink call left behind: nothing may be repeated

    refused = sum(bot.gm.refused.values())
    assert refused >= len(bot.gm.calls) // 3 > 0
    assert bot.sleeps and all(s >= 1.0 for s in bot.sleeps)  # Retry-After: 1 honoured on every retry
    assert bot.mail.pacer.waited == 0  # every wait above came from the storm
    for mid in leads:
        assert_lead_done(bot, mid)
    for mid in others:
        assert len(bot.rows(mid)) == 1 and bot.drafts_in(mid) == []
        assert bot.cfg.labels.processed in bot.labels(mid) and "INBOX" not in bot.labels(mid)
    assert len(bot.gm.drafts) == len(leads) and len(bot.notifier.sent) == len(leads)
    assert bot.keywords.calls == len(leads + others)


def test_a_400_on_one_messages_modify_is_retried_then_labelled_for_review(gm: FakeGmail, tmp_path: Path) -> None:
    bot = GmailBot(gm, tmp_path, {"poll": {"max_attempts": 3}})
    lead, bad, spam = bot.deliver(LEAD_SUBJECT), bot.deliver("Pump noise [support:en:0.9]"), bot.deliver(
        "Cheap meds [spam:en:0.99]")
    gm.server.fail(rf"/messages/{bad}/modify$", gerror(400, "failedPrecondition", "Precondition check failed."),
                   times=3)

    first = bot.cycle()

    assert first.processed == 2 and first.failed == 1
    assert_lead_done(bot, lead)
    assert bot.label("spam") in bot.labels(spam)
    assert bot.labels(bad) == {"INBOX", "UNREAD"}
    bot.cycle()
    row = bot.ledger.get(bad)
    assert row is not None and row.status == "decided" and row.attempts == 2
    assert bot.labels(bad) == {"INBOX", "UNREAD"}

    bot.cycle()  # the third failure: labelled for review, left in the inbox

    assert bot.labels(bad) == {"INBOX", "UNREAD", bot.cfg.labels.processed, bot.cfg.labels.review}
    row = bot.ledger.get(bad)
    assert row is not None and row.status == "done" and row.attempts == 3
    (audit,) = bot.rows(bad)
    assert audit["review"] == "yes" and "HTTP 400" in audit["error"]
    assert bot.keywords.calls == 3  # decided once, never re-classified
    assert len(bot.rows(lead)) == len(bot.rows(spam)) == 1


# ---------------------------------------------------------------- labels, threads, drafts


def test_a_busy_cycles_label_changes_are_grouped_and_one_bad_message_costs_only_its_own(bot: GmailBot) -> None:
    tickets = [bot.deliver(f"Ticket {i} [support:en:0.9]") for i in range(12)]
    lead = bot.deliver(LEAD_SUBJECT)
    bot.cycle()
    assert bot.gm.calls.count("messages.batchModify") == 1  # the 12 tickets: 50 units instead of 60
    assert bot.gm.calls.count("messages.modify") == 1  # the lead, alone with its change
    assert all({bot.label("support"), bot.cfg.labels.processed} <= bot.labels(m) for m in tickets)
    assert all("INBOX" not in bot.labels(m) for m in tickets)
    assert_lead_done(bot, lead)

    more = [bot.deliver(f"Ticket {i} [support:en:0.9]") for i in range(12, 24)]
    bad = more[5]
    bot.gm.server.fail(r"/messages/batchModify$", gerror(400, "invalidArgument", "Invalid id"))
    bot.gm.server.fail(rf"/messages/{bad}/modify$", gerror(400, "invalidArgument", "Invalid id"))
    bot.gm.reset_counters()

    report = bot.cycle()

    assert report.processed == 11 and report.failed == 1
    assert bot.gm.calls.count("messages.modify") == 11  # the refused group redone message by message
    assert all(bot.label("support") in bot.labels(m) for m in more if m != bad)
    assert bot.labels(bad) == {"INBOX", "UNREAD"}
    row = bot.ledger.get(bad)
    assert row is not None and row.status == "decided" and row.attempts == 1
    assert bot.cycle().resumed == 1
    assert bot.label("support") in bot.labels(bad)
    assert Counter(r["provider_id"] for r in bot.audit.rows) == Counter(tickets + [lead] + more)
    assert bot.keywords.calls == 25



def test_a_label_a_person_deleted_is_recreated_and_used(bot: GmailBot) -> None:
    first = bot.deliver(LEAD_SUBJECT)
    bot.cycle()
    original = bot.gm.label_id(bot.label("lead"))
    bot.gm.delete_label(bot.label("lead"))  # between two cycles
    second = bot.deliver("Second quote [lead:en:0.9]")
    bot.cycle()
    assert_lead_done(bot, second)
    assert bot.gm.label_id(bot.label("lead")) not in (None, original)
    assert bot.label("lead") not in bot.labels(first)  # what the person's deletion removed stays removed

    third = bot.deliver("Third quote [lead:en:0.9]")
    # during a cycle: after its label check, before the message is labelled
    bot.keywords.hooks["Third"] = lambda: bot.gm.delete_label(bot.label("lead"))
    bot.cycle()

    assert_lead_done(bot, third)
    assert [lab["name"] for lab in bot.gm.labels.values()].count(bot.label("lead")) == 1


def test_a_thread_a_salesperson_answered_is_theirs_without_a_draft(bot: GmailBot) -> None:
    bot.deliver("Pumps [lead:en:0.9]", msgid="<q1@prospect.example>", labels=("UNREAD",))  # handled long ago
    bot.deliver("Re: Pumps", sender="Bob Nguyen <bob@acme-pumps.example>", msgid="<r1@acme-pumps.example>",
                extra="In-Reply-To: <q1@prospect.example>\r\nReferences: <q1@prospect.example>\r\n",
                labels=("SENT",))
    follow = bot.deliver("Re: Pumps [lead:en:0.9]", msgid="<q2@prospect.example>",
                         extra="In-Reply-To: <r1@acme-pumps.example>\r\n"
                               "References: <q1@prospect.example> <r1@acme-pumps.example>\r\n")
    assert len(bot.gm.thread_messages(bot.gm.messages[follow].thread_id)) == 3

    bot.cycle()

    assert bot.gm.drafts == {} and [p["assignee_email"] for p in bot.notifier.sent] == ["bob@acme-pumps.example"]
    row = bot.ledger.get(follow)
    assert row is not None and row.status == "done" and row.assignee == "bob@acme-pumps.example"
    (audit,) = bot.rows(follow)
    assert audit["assignee"] == "bob@acme-pumps.example" and "bob@acme-pumps.example answered" in audit["reasons"]
    assert {"INBOX", bot.label("lead"), bot.cfg.labels.processed} <= bot.labels(follow)  # left for Bob to see
    counts = bot.ledger.assignment_counts("inside_sales")
    assert {p: n for p, n in counts.items() if n} == {"bob@acme-pumps.example": 1}  # it counts as his


def test_drafts_are_threaded_replies_and_never_sent(bot: GmailBot) -> None:
    mid = bot.deliver(LEAD_SUBJECT, extra="References: <earlier@prospect.example>\r\n")
    original = bot.gm.messages[mid]
    bot.cycle()

    (request,) = bot.gm.server.requests(r"/drafts$", "POST")
    body = request.json()["message"]
    assert body["threadId"] == original.thread_id
    reply = message_from_bytes(unb64url(body["raw"]), policy=policy.default)
    assert reply["In-Reply-To"] == original.header("Message-ID")
    assert str(reply["References"]).split() == ["<earlier@prospect.example>", original.header("Message-ID")]
    assert reply["Subject"] == f"Re: {LEAD_SUBJECT}"
    (draft,) = bot.drafts_in(mid)  # Gmail put it into the customer's thread
    assert draft.labels == {"DRAFT"}
    assert not {"drafts.send", "messages.send"} & set(bot.gm.calls)
    assert not [r for r in bot.gm.server.log if r.path.endswith("/send")]


# ---------------------------------------------------------------- authorization


def test_a_revoked_token_stops_the_cycle_with_one_clear_line_and_nothing_half_done(bot: GmailBot) -> None:
    gm = bot.gm
    done = bot.deliver(LEAD_SUBJECT)
    bot.cycle()
    lead, support, late = (bot.deliver("Another quote [lead:en:0.9]"), bot.deliver("Broken seal [support:en:0.9]"),
                           bot.deliver("Third quote [lead:en:0.9]"))
    cursor = bot.ledger.get_cursor(CURSOR_KEY)

    def revoke() -> None:  # a person removes the app's access in their Google account
        gm.expire_access_tokens()
        gm.revoke_refresh_token(gm.refresh_token)

    bot.keywords.hooks["Broken"] = revoke
    with pytest.raises(AuthError) as err:
        bot.cycle()  # the third message's thread check is the first call that needs the token

    assert str(err.value) == AUTH_EXPIRED and "\n" not in str(err.value)
    assert_lead_done(bot, done)
    assert len(bot.drafts_in(lead)) == 1  # drafted before the loss; its label change was still queued
    assert bot.labels(lead) == bot.labels(support) == bot.labels(late) == {"INBOX", "UNREAD"}
    for mid in (lead, support):  # the decisions are kept; their label changes wait in the ledger
        row = bot.ledger.get(mid)
        assert row is not None and row.status == "decided"
    assert bot.ledger.get(late) is None and bot.drafts_in(late) == []  # its decision was rolled back whole
    assert bot.ledger.get_cursor(CURSOR_KEY) == cursor
    assert sum(bot.ledger.assignment_counts("inside_sales").values()) == 2
    bot.start()  # restarted without a new authorization: stops again, before touching mail
    with pytest.raises(AuthError, match="run `python run.py auth gmail` again"):
        bot.cycle()
    assert bot.labels(lead) == bot.labels(support) == {"INBOX", "UNREAD"}

    gm.refresh_token = "1//reauthorized"  # a person runs `python run.py auth gmail`
    gm.refresh_tokens.add(gm.refresh_token)
    gm.write_token_file(bot.cfg.mail.gmail.token_file)
    bot.start()
    report = bot.cycle()

    assert report.resumed == 2 and report.processed == 1
    for mid in (done, lead, late):
        assert_lead_done(bot, mid)
    assert bot.label("support") in bot.labels(support)
    assert Counter(r["provider_id"] for r in bot.audit.rows) == Counter([done, lead, support, late])
    assert len(gm.drafts) == 3 and sum(bot.ledger.assignment_counts("inside_sales").values()) == 3


# ---------------------------------------------------------------- time and quota


def test_spam_is_labelled_now_and_trashed_on_a_later_cycle(bot: GmailBot) -> None:
    spam = bot.deliver("You won [spam:en:0.99]")
    bot.cycle()
    assert {bot.label("spam"), bot.cfg.labels.processed} <= bot.labels(spam)
    assert "INBOX" not in bot.labels(spam) and "TRASH" not in bot.labels(spam)
    bot.clock.now += timedelta(hours=71)
    assert bot.cycle().trashed == 0 and "TRASH" not in bot.labels(spam)
    bot.clock.now += timedelta(hours=2)
    assert bot.cycle().trashed == 1
    assert "TRASH" in bot.labels(spam) and bot.gm.calls.count("messages.trash") == 1
    assert bot.cycle().trashed == 0


class FakeTime:
    """A monotonic clock that only moves when something sleeps; records the units Gmail had charged by then."""

    def __init__(self, gm: FakeGmail) -> None:
        self.gm, self.now = gm, 1000.0
        self.marks: list[tuple[float, int]] = []  # (time, units charged before it)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.marks.append((self.now, self.gm.units))
        self.now += seconds


def test_the_pacer_keeps_every_minute_under_the_quota_and_counts_what_gmail_charges(gm: FakeGmail,
                                                                                    tmp_path: Path) -> None:
    bot = GmailBot(gm, tmp_path)
    t = FakeTime(gm)
    limit = 150  # units a minute: small enough that a few dozen messages have to wait for quota
    # The burst must cover the largest single charge: a batchModify is 50 units, a batch of 5 messages.get 25.
    bot.cfg = make_config(tmp_path, {"mail": {"provider": "gmail", "gmail": {
        "api_endpoint": gm.api_endpoint, "batch_uri": gm.batch_uri, "token_uri": gm.token_uri,
        "token_file": str(bot.cfg.mail.gmail.token_file), "batch_size": 5}}})
    bot.start(sleep=t.sleep, pacer=QuotaPacer(per_minute=limit, burst=50, clock=t.monotonic, sleep=t.sleep))
    ids = [bot.deliver(f"Ticket {i} [support:en:0.9]") for i in range(30)]
    ids += [bot.deliver(f"Quote {i} [lead:en:0.9]") for i in range(3)]

    bot.cycle()

    assert all(bot.cfg.labels.processed in bot.labels(mid) for mid in ids)
    assert bot.mail.pacer.spent == gm.units > 2 * limit  # the pacer charges exactly what Gmail does
    assert bot.mail.pacer.waited > 0
    # The fake clock moves only in sleep(): what Gmail charged between two sleeps was sent when the first ended.
    steps, before = [], 0
    for when, units in t.marks:
        steps.append((when, units - before))
        before = units
    steps.append((t.now, gm.units - before))
    for when, _ in steps:
        assert sum(units for w, units in steps if when <= w < when + 60.0) <= limit


# ---------------------------------------------------------------- a draft found again after a crash


def test_a_draft_found_again_after_a_crash_is_recorded_by_its_draft_id(bot: GmailBot) -> None:
    mid = bot.deliver(LEAD_SUBJECT)
    bot.gm.fail_after("drafts.create", gerror(503, "backendError"))  # created, but the answer is an error

    def die(seconds: float) -> None:
        raise Crash  # killed while waiting to retry: the draft exists, the ledger does not know its id

    bot.start(sleep=die)
    with pytest.raises(Crash):
        bot.cycle()
    assert bot.ledger.effect_result(mid, "draft") == ""

    bot.start()
    bot.cycle()

    (draft_id,) = bot.gm.drafts  # the id drafts.create issued, which the crashed process never heard
    (draft,) = bot.drafts_in(mid)
    assert bot.gm.drafts[draft_id] == draft.id != draft_id
    assert bot.gm.calls.count("drafts.create") == 1
    assert bot.ledger.effect_result(mid, "draft") == draft_id
    (row,) = bot.rows(mid)
    assert row["draft_id"] == draft_id
    (ping,) = bot.notifier.sent
    assert ping["draft_link"] == row["link"] and ping["draft_link"]  # the ping still opens the draft's thread


def test_the_draft_id_of_a_draft_message_is_looked_up_past_the_first_page(bot: GmailBot) -> None:
    for i in range(501):  # drafts people wrote fill the first page of drafts.list
        bot.gm.drafts[f"p-{i}"] = bot.gm.add_message(subject=f"Someone's draft {i}", labels=("DRAFT",))
    mid = bot.deliver(LEAD_SUBJECT)
    bot.cycle()
    (draft,) = bot.drafts_in(mid)
    recorded = bot.ledger.effect_result(mid, "draft")
    assert bot.gm.drafts[recorded] == draft.id  # what drafts.create answered

    bot.gm.reset_counters()
    assert bot.mail.draft_id(draft.id) == recorded
    assert bot.gm.calls == ["drafts.list", "drafts.list"]
    assert bot.mail.draft_id("not-a-draft") == "not-a-draft"  # nothing better to record, and never a second draft


# ---------------------------------------------------------------- mail that goes away before the bot reads it


def calls_about(gm: FakeGmail, mid: str, method: str) -> int:
    return sum(1 for _, name, target, _ in gm.call_log if name == method and mid in target.split(","))


@pytest.mark.parametrize("gone_after", ["history.list", "messages.get"])
def test_a_message_deleted_before_its_fetch_is_recorded_once_and_never_retried(gm: FakeGmail, tmp_path: Path,
                                                                               gone_after: str) -> None:
    bot = GmailBot(gm, tmp_path, {"poll": {"max_attempts": 3}})
    # "messages.get": the listing's lookup (format=minimal here) saw it; it is deleted before the download
    bot.start(prefetch_bytes=0)
    bot.cycle()
    lead, deleted = bot.deliver(LEAD_SUBJECT), bot.deliver("Second quote [lead:en:0.9]")
    gm.after(gone_after, lambda: gm.delete_message(deleted))

    reports = [bot.cycle() for _ in range(8)]

    assert_lead_done(bot, lead)
    row = bot.ledger.get(deleted)
    assert row is not None and row.status == "done" and row.attempts == 0 and not row.review
    (audit,) = bot.rows(deleted)
    assert "deleted from Gmail" in audit["reasons"] and audit["assignee"] == ""
    assert bot.ledger.effects(deleted) == []  # no label change queued, dropped or retried
    assert calls_about(gm, deleted, "messages.modify") == 0
    assert [r.failed for r in reports] == [0] * 8 and reports[0].skipped == 1
    assert sum(bot.ledger.assignment_counts("inside_sales").values()) == 1
    assert len(bot.notifier.sent) == 1 and len(gm.drafts) == 1


def test_a_message_deleted_after_its_decision_is_recorded_without_retrying_its_labels(bot: GmailBot) -> None:
    mid = bot.deliver("Pump noise [support:en:0.9]")
    bot.keywords.hooks["noise"] = lambda: bot.gm.delete_message(mid)  # while the bot decides about it

    reports = [bot.cycle() for _ in range(4)]

    row = bot.ledger.get(mid)
    assert row is not None and row.status == "done" and row.attempts == 0 and row.category == "support"
    (audit,) = bot.rows(mid)
    assert "deleted from Gmail" in audit["error"]
    assert [e.status for e in bot.ledger.effects(mid)] == ["dropped"]
    assert calls_about(bot.gm, mid, "messages.modify") == 1 and sum(r.failed for r in reports) == 0


@pytest.mark.parametrize("gone_after", ["history.list", "messages.get"])
@pytest.mark.parametrize("person", ["trash_message", "mark_spam"])
def test_mail_a_person_deleted_before_the_bot_read_it_gets_no_draft_ping_or_turn(gm: FakeGmail, tmp_path: Path,
                                                                                 gone_after: str,
                                                                                 person: str) -> None:
    bot = GmailBot(gm, tmp_path)
    bot.start(prefetch_bytes=0)
    bot.cycle()
    mid = bot.deliver(LEAD_SUBJECT)
    gm.after(gone_after, lambda: getattr(gm, person)(mid))

    bot.cycle()

    assert bot.drafts_in(mid) == [] and bot.notifier.sent == [] and bot.crm.contacts == {}
    assert sum(bot.ledger.assignment_counts("inside_sales").values()) == 0
    assert bot.labels(mid) == {"TRASH" if person == "trash_message" else "SPAM", "UNREAD"}  # left as they were
    (audit,) = bot.rows(mid)
    assert ("moved to Trash" if person == "trash_message" else "marked as spam") in audit["reasons"]
    assert bot.keywords.calls == 0

    gm.move_to_inbox(mid)  # a person changes their mind: back in the inbox, it is new mail to the bot
    bot.start()  # a restart lists the inbox at once (so does the catch-up every 10th cycle)
    bot.cycle()

    assert len(bot.drafts_in(mid)) == 1 and len(bot.notifier.sent) == 1
    assert {bot.label("lead"), bot.cfg.labels.processed} <= bot.labels(mid)
    assert [r["category"] for r in bot.rows(mid)] == ["", "lead"]  # the audit tells both


# ---------------------------------------------------------------- Gmail's flood control


def api_requests(gm: FakeGmail) -> int:
    return len(gm.server.requests(r"^/gmail/|^/batch/"))


def test_gmails_rate_limit_deadline_pauses_every_gmail_call_until_then_even_across_a_restart(
        gm: FakeGmail, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bot = GmailBot(gm, tmp_path)
    leads = [bot.deliver(f"Quote {i} [lead:en:0.9]", sender=f"Buyer {i} <buyer{i}@prospect{i}.example>")
             for i in range(3)]
    others = [bot.deliver(f"Ticket {i} [support:en:0.9]") for i in range(3)]
    # A low limit: the first cycle passes it with a lead's thread check, made while its decision is open in the
    # ledger; the pause is stored all the same.
    gm.user_limit_per_minute, gm.lockout_minutes = 95, 15
    deadline = gm.clock() + timedelta(minutes=15)

    caplog.set_level("INFO")
    paused = bot.cycle()

    assert paused.failed == 0  # not any message's fault
    assert gm.refused == {"threads.get": 1}  # the refused call was not repeated inside the lockout
    assert paused.paused_until == deadline
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert deadline.isoformat(timespec="seconds") in said
    before = api_requests(gm)
    gm.clock.now += timedelta(minutes=10)
    bot.cycle()
    bot.start()  # restarted inside the lockout: it remembers
    assert bot.cycle().paused_until == deadline
    assert api_requests(gm) == before and sum(gm.refused.values()) == 1
    assert all(row.attempts == 0 for mid in leads + others if (row := bot.ledger.get(mid)) is not None)

    gm.clock.now = deadline + timedelta(seconds=1)
    gm.user_limit_per_minute = None
    bot.cycle()

    for mid in leads:
        assert_lead_done(bot, mid)
    for mid in others:
        row = bot.ledger.get(mid)
        assert row is not None and row.status == "done" and row.attempts == 0 and len(bot.rows(mid)) == 1
    assert len(gm.drafts) == len(leads) and len(bot.notifier.sent) == len(leads)


# ---------------------------------------------------------------- a full sync after a long outage


def test_a_full_sync_after_a_long_outage_reaches_back_to_the_last_sync(gm: FakeGmail, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    bot = GmailBot(gm, tmp_path)  # lookback_days: 7
    first = bot.deliver(LEAD_SUBJECT)
    bot.cycle()  # in sync now
    went_down = gm.clock()
    gm.clock.now += timedelta(days=10)  # the bot was down for ten days and Gmail forgot its history id
    early = gm.add_message(raw_mail("Pumps for Oslo [lead:en:0.9]"), internal_date=went_down + timedelta(days=2))
    late = gm.add_message(raw_mail("Pumps for Riga [lead:en:0.9]"), internal_date=went_down + timedelta(days=9))
    gm.expire_history()

    caplog.set_level("INFO")
    bot.start()
    report = bot.cycle()

    assert report.processed == 2
    for mid in (first, early, late):
        assert_lead_done(bot, mid)
    (listing,) = [r for r in gm.server.requests(r"/messages$") if "after:" in (r.arg("q") or "")]
    assert f"after:{int((went_down - timedelta(hours=1)).timestamp())}" in str(listing.arg("q"))
    assert any("10.0 days back" in r.getMessage() for r in caplog.records)


def test_the_first_sync_looks_back_lookback_days_only(bot: GmailBot, caplog: pytest.LogCaptureFixture) -> None:
    old = bot.gm.add_message(raw_mail("Old quote [lead:en:0.9]"), internal_date=bot.gm.clock() - timedelta(days=8))
    recent = bot.deliver(LEAD_SUBJECT)
    caplog.set_level("INFO")
    bot.cycle()
    assert bot.ledger.get(old) is None
    assert_lead_done(bot, recent)
    assert any("last 7 days" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- reply subjects


@pytest.mark.parametrize("subject, expected", [
    ("Quote  for\u200b 3 pumps  [lead:en:0.95]", "Re: Quote  for\u200b 3 pumps  [lead:en:0.95]"),
    ("=?utf-8?q?Angebot__f=C3=BCr_Pumpen?= [lead:de:0.9]", "Re: Angebot  für Pumpen [lead:de:0.9]"),
    ("RE: Pumps\u200d  again [lead:en:0.9]", "RE: Pumps\u200d  again [lead:en:0.9]"),  # not "Re: RE: ..."
])
def test_a_reply_draft_repeats_the_original_subject_and_joins_its_thread(bot: GmailBot, subject: str,
                                                                          expected: str) -> None:
    mid = bot.deliver(subject)
    bot.cycle()
    (request,) = bot.gm.server.requests(r"/drafts$", "POST")
    reply = message_from_bytes(unb64url(request.json()["message"]["raw"]), policy=policy.default)
    assert str(reply["Subject"]) == expected
    (draft,) = bot.drafts_in(mid)  # Gmail put it into the customer's thread
    assert draft.thread_id == bot.gm.messages[mid].thread_id
