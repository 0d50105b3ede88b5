"""The pipeline through in-memory fakes of every port: assertions on the fakes' state, not on call lists."""

from __future__ import annotations

import email
from collections.abc import Sequence
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest

from bot.pipeline import CycleReport, Pipeline, Services
from bot.ports import MailError, MessageGone
from bot.state import Ledger
from tests.fake_mail import FakeMailProvider
from tests.fakes import Clock, FakeAuditSink, FakeCrm, FakeNotifier, KeywordClassifier, make_config, raw_mail

LEAD = "Quote for 3 pumps [lead:en:0.95]"


class Bot:
    def __init__(self, tmp_path: Path, patch: dict[str, Any] | None = None) -> None:
        self.cfg = make_config(tmp_path, patch)
        self.mail = FakeMailProvider(processed_label=self.cfg.labels.processed)
        self.audit = FakeAuditSink()
        self.notifier = FakeNotifier()
        self.crm = FakeCrm()
        self.classifier = KeywordClassifier()
        self.clock = Clock()
        self.ledger = Ledger(self.cfg.state_dir / "ledger.sqlite3")

    def services(self) -> Services:
        return Services(cfg=self.cfg, mail=self.mail, classifier=self.classifier, ledger=self.ledger,
                        audit_sinks=[self.audit], notifiers=[self.notifier], crms=[self.crm], clock=self.clock)

    def cycle(self, dry_run: bool = False) -> Any:
        return Pipeline(self.services(), dry_run=dry_run).run_cycle()

    def labels(self, pid: str) -> set[str]:
        return self.mail.messages[pid].labels

    def drafts(self) -> list[Any]:
        return [m for m in self.mail.messages.values() if "DRAFT" in m.labels]


class BulkFakeMail(FakeMailProvider):
    """A mailbox that makes one label change on many messages in one call, as Gmail's batchModify does."""

    def __init__(self, processed_label: str) -> None:
        super().__init__(processed_label=processed_label)
        self.deleted_meanwhile: set[str] = set()  # deleted by a person after the bot read them, before labelling

    def modify_many(self, provider_ids: Sequence[str], add: Sequence[str], archive: bool) -> dict[str, Exception]:
        errors: dict[str, Exception] = {}
        for pid in provider_ids:
            if pid in self.deleted_meanwhile:
                self.messages.pop(pid, None)
                errors[pid] = MessageGone(f"message {pid} was deleted")
                continue
            try:
                self.modify(pid, add, [], archive)
            except MailError as exc:
                errors[pid] = exc
        return errors


def test_a_lead_is_drafted_assigned_labelled_archived_audited_notified_and_upserted(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail(LEAD, extra="Reply-To: Jane Buyer <jane.buyer@prospect.example>\r\n"))
    report = bot.cycle()
    assert report.processed == 1 and report.failed == 0
    assert bot.labels(pid) >= {"Triage/Processed", "Triage/Lead"} and "INBOX" not in bot.labels(pid)
    [draft] = bot.drafts()
    reply = email.message_from_bytes(draft.raw, policy=policy.default)
    assert reply["To"] == "jane.buyer@prospect.example"
    assert reply["Subject"] == f"Re: {LEAD}"
    assert reply["In-Reply-To"] == reply["References"] == bot.mail.messages[pid].message_id
    assert draft.thread_id == bot.mail.messages[pid].thread_id
    body = reply.get_content()
    assert "Jane" in body and "Alice Carter" in body  # greeted by first name, signed by the assignee
    [row] = bot.audit.rows
    assert row["category"] == "lead" and row["assignee"] == "alice@acme-pumps.example"
    assert row["draft_id"] and row["notification"].startswith("sent to")
    assert row["crm_id"] == "c1"
    assert bot.notifier.sent[0]["assignee_email"] == "alice@acme-pumps.example"
    assert bot.crm.contacts["jane@prospect.example"]["notes"] == [row["message_id"]]


def test_a_second_run_does_nothing_new(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    for i in range(3):
        bot.mail.add(raw_mail(f"{LEAD} #{i}"))
    bot.cycle()
    state = (len(bot.drafts()), len(bot.audit.rows), len(bot.notifier.sent), bot.classifier.calls)
    report = bot.cycle()
    assert report.processed == 0 and report.listed == 0
    assert (len(bot.drafts()), len(bot.audit.rows), len(bot.notifier.sent), bot.classifier.calls) == state


def test_leads_rotate_and_language_picks_the_pool(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    for i in range(6):  # six different prospects: nobody owns a contact yet
        bot.mail.add(raw_mail(f"Anfrage {i} [lead:de:0.9]" if i % 2 else f"Quote {i} [lead:en:0.9]",
                              sender=f"Prospect {i} <p{i}@prospect{i}.example>"))
    bot.cycle()
    assignees = [r["assignee"] for r in bot.audit.rows]
    assert assignees == ["alice@acme-pumps.example", "dieter@acme-pumps.example", "bob@acme-pumps.example",
                         "eva@acme-pumps.example", "carla@acme-pumps.example", "dieter@acme-pumps.example"]
    dach_draft = [d for d in bot.drafts() if b"dieter" in d.raw.lower()][0]
    assert "frank.field@acme-pumps.example" in email.message_from_bytes(dach_draft.raw, policy=policy.default)["Cc"]


def test_spam_is_labelled_now_and_trashed_on_a_later_run(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail("You won [spam:en:0.99]"))
    bot.cycle()
    assert "Triage/Spam" in bot.labels(pid) and "TRASH" not in bot.labels(pid) and "INBOX" not in bot.labels(pid)
    bot.clock.now += timedelta(hours=71)
    bot.cycle()
    assert "TRASH" not in bot.labels(pid)
    bot.clock.now += timedelta(hours=2)
    report = bot.cycle()
    assert report.trashed == 1 and "TRASH" in bot.labels(pid)


def test_low_confidence_goes_to_review_and_nothing_destructive_happens(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    unsure_spam = bot.mail.add(raw_mail("Maybe spam [spam:en:0.5]"))
    unsure_lead = bot.mail.add(raw_mail("Maybe lead [lead:en:0.6]"))
    bot.cycle()
    bot.clock.now += timedelta(days=30)
    bot.cycle()
    for pid in (unsure_spam, unsure_lead):
        assert {"Triage/Review", "INBOX"} <= bot.labels(pid) and "TRASH" not in bot.labels(pid)
    assert bot.drafts() == [] and bot.notifier.sent == []
    assert all(r["review"] == "yes" for r in bot.audit.rows)


def test_internal_mail_is_skipped_without_classification(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail("Lunch? [lead:en:0.99]", sender="Bob <bob@acme-pumps.example>"))
    bot.cycle()
    assert bot.classifier.calls == 0
    assert bot.labels(pid) == {"INBOX", "UNREAD", "Triage/Processed"}
    assert bot.audit.rows[0]["prefilter"] == "internal"


def _answered_thread(bot: Bot, answerer: str) -> str:
    first = raw_mail("Pumps [lead:en:0.9]", msgid="<q1@prospect.example>")
    ours = raw_mail("Re: Pumps", sender=answerer, msgid="<r1@acme-pumps.example>",
                    extra="In-Reply-To: <q1@prospect.example>\r\nReferences: <q1@prospect.example>\r\n")
    follow = raw_mail("Re: Pumps [lead:en:0.9]", msgid="<q2@prospect.example>",
                      extra="In-Reply-To: <r1@acme-pumps.example>\r\n"
                            "References: <q1@prospect.example> <r1@acme-pumps.example>\r\n")
    bot.mail.add(first, labels=("SENT",))  # an older conversation, already handled
    bot.mail.add(ours, labels=("SENT",))
    return bot.mail.add(follow)


def test_a_follow_up_in_a_thread_a_salesperson_answered_goes_to_them_without_a_draft(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = _answered_thread(bot, "Bob <bob@acme-pumps.example>")
    bot.cycle()
    assert bot.drafts() == []
    [ping] = bot.notifier.sent
    assert ping["assignee_email"] == "bob@acme-pumps.example"
    row = bot.audit.rows[0]
    assert row["assignee"] == "bob@acme-pumps.example" and "bob@acme-pumps.example answered" in row["reasons"]
    assert "INBOX" in bot.labels(pid)  # the conversation stays where Bob sees it
    assert bot.ledger.rotation("inside_sales")["bob@acme-pumps.example"] >= 1  # it counts as his lead


def test_a_thread_a_colleague_outside_the_pools_answered_is_left_alone(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = _answered_thread(bot, "Boss <boss@acme-pumps.example>")
    bot.cycle()
    assert bot.drafts() == [] and bot.notifier.sent == []
    row = bot.audit.rows[0]
    assert row["assignee"] == "" and "colleague_replied" in row["reasons"]
    assert "INBOX" in bot.labels(pid)


def test_crash_after_the_draft_landed_leaves_one_draft(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail(LEAD))
    # the server creates the draft, then the call fails: as if the process died before hearing back
    bot.mail.fail_next("create_draft", MailError("connection reset"), after=True)
    report = bot.cycle()
    assert report.failed == 1 and len(bot.drafts()) == 1 and "INBOX" in bot.labels(pid)
    bot.cycle()
    assert len(bot.drafts()) == 1
    assert "Triage/Lead" in bot.labels(pid) and "INBOX" not in bot.labels(pid)
    assert len(bot.audit.rows) == 1 and len(bot.notifier.sent) == 1
    assert bot.ledger.assignment_counts("inside_sales") == {"alice@acme-pumps.example": 1,
                                                            "bob@acme-pumps.example": 0,
                                                            "carla@acme-pumps.example": 0}


def test_an_outage_queues_rows_and_pings_and_replays_them_in_order(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    bot.audit.down = bot.notifier.down = True
    for i in range(3):
        bot.mail.add(raw_mail(f"{LEAD} #{i}"))
    bot.cycle()
    assert bot.audit.rows == [] and bot.notifier.sent == []
    bot.mail.add(raw_mail(f"{LEAD} #3"))
    bot.cycle()
    bot.audit.down = bot.notifier.down = False
    bot.cycle()
    assert [r["subject"][-2:] for r in bot.audit.rows] == ["#0", "#1", "#2", "#3"]
    assert [p["subject"][-2:] for p in bot.notifier.sent] == ["#0", "#1", "#2", "#3"]
    bot.cycle()
    assert len(bot.audit.rows) == 4 and len(bot.notifier.sent) == 4


def test_a_failing_message_does_not_block_others_and_ends_in_review(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 3}})
    bad = bot.mail.add(raw_mail("Broken [lead:en:0.9]"))
    good = bot.mail.add(raw_mail(LEAD))
    bot.mail.fail_fetch(bad, MailError("500 backend error"))
    report = bot.cycle()
    assert report.failed == 1 and report.processed == 1
    assert "Triage/Lead" in bot.labels(good)
    bot.cycle()
    assert "Triage/Review" not in bot.labels(bad)
    bot.cycle()
    assert {"Triage/Review", "Triage/Processed", "INBOX"} <= bot.labels(bad)
    row = [r for r in bot.audit.rows if r["provider_id"] == bad][0]
    assert "500 backend error" in row["error"] and row["review"] == "yes"


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pids = [bot.mail.add(raw_mail(s)) for s in (LEAD, "Spam [spam:en:0.99]", "Quote 2 [lead:en:0.95]")]
    before = {pid: set(bot.labels(pid)) for pid in pids}
    report = bot.cycle(dry_run=True)
    assert len(report.dry_run_lines) == 3
    assert "assign alice@acme-pumps.example" in report.dry_run_lines[0]
    assert "assign bob@acme-pumps.example" in report.dry_run_lines[2]  # the rotation is simulated
    assert {pid: bot.labels(pid) for pid in pids} == before
    assert bot.drafts() == [] and bot.audit.rows == [] and bot.notifier.sent == []
    assert bot.ledger.rotation("inside_sales") == {} and not bot.ledger.known(pids[0])
    assert bot.mail.checkpoints == 0
    bot.cycle()
    assert bot.audit.rows[0]["assignee"] == "alice@acme-pumps.example"


def test_unreadable_mail_goes_to_review_with_its_reason(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(b"")
    bot.cycle()
    assert "Triage/Review" in bot.labels(pid)
    assert "empty" in bot.audit.rows[0]["reasons"].lower()


@pytest.mark.parametrize("kill_at", ["create_draft", "modify"])
def test_failure_between_steps_resumes_without_repeating(tmp_path: Path, kill_at: str) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail(LEAD))
    bot.mail.fail_next(kill_at, MailError("gone"))
    bot.cycle()
    bot.cycle()
    assert len(bot.drafts()) == 1 and "Triage/Lead" in bot.labels(pid)
    assert len(bot.audit.rows) == 1 and len(bot.notifier.sent) == 1 and len(bot.crm.contacts) == 1


def test_extracted_lead_details_reach_the_audit_row_and_the_crm_note(tmp_path: Path) -> None:
    from dataclasses import replace

    bot = Bot(tmp_path)
    base = bot.classifier

    class WithFields:
        name = "llm:test"

        def classify(self, email: Any, hint: Any = None) -> Any:
            c = base.classify(email, hint)
            return replace(c, classifier=self.name, summary="Wants 3 pumps for a brewery.",
                           fields={"product_interest": "AP-200", "budget": 40000, "timeline": "quarter",
                                   "region": "DE", "required_action": None, "injection_suspected": False})

    bot.classifier = WithFields()  # type: ignore[assignment]
    bot.mail.add(raw_mail(LEAD))
    bot.cycle()
    [row] = bot.audit.rows
    assert row["summary"] == "Wants 3 pumps for a brewery."
    assert row["details"] == "product: AP-200; budget USD/year: 40000; timeline: quarter; region: DE"
    [contact] = bot.crm.contacts.values()
    assert bot.notifier.sent[0]["summary"] == "Wants 3 pumps for a brewery."
    assert contact["id"] == row["crm_id"]
    assert "Wants 3 pumps for a brewery." in contact["note_texts"][0]
    assert "timeline: quarter" in contact["note_texts"][0]


def test_a_lead_without_any_sender_address_goes_to_review(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail(LEAD, sender="undisclosed-recipients:;"))
    bot.cycle()
    assert "Triage/Review" in bot.labels(pid) and bot.drafts() == [] and bot.crm.contacts == {}
    assert "no usable address to reply to" in bot.audit.rows[0]["reasons"]


class OutageClassifier(KeywordClassifier):
    """The keyword result when the 'LLM' is up; LlmUnavailable with a review fallback while it is down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def classify(self, email: Any, hint: Any = None) -> Any:
        from dataclasses import replace

        from bot.classify.cascade import LlmUnavailable

        c = super().classify(email, hint)
        if self.down:
            raise LlmUnavailable("timeout", replace(c, review_reason="LLM failed: timeout"))
        return c


def test_a_short_llm_outage_defers_mail_and_ends_as_a_clean_run(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 3}})
    bot.classifier = OutageClassifier()
    pid = bot.mail.add(raw_mail(LEAD))
    bot.cycle()
    bot.cycle()
    assert bot.labels(pid) == {"INBOX", "UNREAD"} and bot.audit.rows == []  # waiting, not decided on a guess
    bot.classifier.down = False
    bot.cycle()
    assert "Triage/Lead" in bot.labels(pid) and bot.audit.rows[0]["review"] == "" and len(bot.drafts()) == 1


def test_a_long_llm_outage_falls_back_to_review_on_the_last_attempt(tmp_path: Path) -> None:
    bot = Bot(tmp_path, {"poll": {"max_attempts": 3}})
    bot.classifier = OutageClassifier()
    pid = bot.mail.add(raw_mail(LEAD))
    for _ in range(3):
        bot.cycle()
    assert {"Triage/Review", "INBOX"} <= bot.labels(pid) and bot.drafts() == []
    [row] = bot.audit.rows
    assert row["category"] == "lead" and "LLM failed: timeout" in row["reasons"]


class _DraftsByMessage(FakeMailProvider):
    """A provider whose drafts have ids of their own, like Gmail's, and that can look them up (DraftIds)."""

    def draft_id(self, message_id: str) -> str:
        return next(d for d, pid in self.drafts.items() if pid == message_id)


def test_a_draft_found_again_is_recorded_by_the_id_create_draft_gave_it(tmp_path: Path) -> None:
    from bot.pipeline import DraftIds

    bot = Bot(tmp_path)
    bot.mail = _DraftsByMessage(processed_label=bot.cfg.labels.processed)
    assert isinstance(bot.mail, DraftIds)
    pid = bot.mail.add(raw_mail(LEAD))
    bot.mail.fail_next("create_draft", MailError("connection reset"), after=True)  # landed, answer lost
    bot.cycle()
    bot.cycle()
    ((draft_id, message),) = bot.mail.drafts.items()
    assert draft_id != message and bot.ledger.effect_result(pid, "draft") == draft_id
    assert [r["draft_id"] for r in bot.audit.rows] == [draft_id]


def test_a_maildir_draft_found_again_keeps_the_id_create_draft_gives(tmp_path: Path) -> None:
    from bot.adapters.maildir import DRAFTS, MaildirProvider

    class DiesAfterDraft(MaildirProvider):
        dies = True

        def create_draft(self, raw: bytes, thread_id: str) -> str:
            key = super().create_draft(raw, thread_id)
            if self.dies:
                self.dies = False
                raise MailError("the process died before recording the draft")
            return key

    bot = Bot(tmp_path)
    root = bot.cfg.mail.maildir.path
    maildir = DiesAfterDraft(root, bot.cfg.labels.processed)
    (root / "new" / "lead.1").write_bytes(raw_mail(LEAD))
    bot.mail = maildir  # type: ignore[assignment]
    bot.cycle()
    bot.cycle()
    (draft_file,) = (root / DRAFTS / "cur").iterdir()
    key = draft_file.name.split(":", 1)[0]
    assert bot.ledger.effect_result("lead.1", "draft") == key
    assert [r["draft_id"] for r in bot.audit.rows] == [key]


def test_mail_deleted_before_the_cycles_label_change_counts_as_skipped_not_processed(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    bot.mail = BulkFakeMail(processed_label=bot.cfg.labels.processed)
    pids = [bot.mail.add(raw_mail(f"{LEAD} #{i}", sender=f"Prospect {i} <p{i}@prospect{i}.example>"))
            for i in range(3)]
    bot.mail.deleted_meanwhile.add(pids[1])
    report = bot.cycle()
    assert (report.processed, report.skipped, report.failed) == (2, 1, 0)
    assert all({"Triage/Lead", "Triage/Processed"} <= bot.labels(pid) for pid in (pids[0], pids[2]))
    gone = [r for r in bot.audit.rows if r["provider_id"] == pids[1]]
    assert len(gone) == 1 and "its labels were not applied" in gone[0]["error"]
    report = bot.cycle()
    assert (report.processed, report.skipped, report.failed) == (0, 0, 0)


@pytest.mark.parametrize("config_beside_the_mail", [True, False], ids=["relative", "absolute"])
def test_the_audit_link_of_maildir_mail_is_where_its_file_ends_up(tmp_path: Path, config_beside_the_mail: bool) -> None:
    from dataclasses import replace

    from bot.adapters.maildir import MaildirProvider

    bot = Bot(tmp_path)
    if config_beside_the_mail:
        bot.cfg = replace(bot.cfg, source=tmp_path / "config.yaml")
    root = bot.cfg.mail.maildir.path
    maildir = MaildirProvider(root, bot.cfg.labels.processed)
    bot.mail = maildir  # type: ignore[assignment]
    (root / "new" / "ask.1").write_bytes(raw_mail("Where is my order? [support:en:0.9]"))
    bot.cycle()
    where = maildir.locate("ask.1")
    assert where is not None and where.is_file() and where.parent.parent != root  # archived: moved out of the inbox
    expected = str(where.relative_to(tmp_path)) if config_beside_the_mail else str(where)
    assert expected.startswith("state/maildir/") == config_beside_the_mail
    row = bot.ledger.get("ask.1")
    assert row is not None and row.record["link"] == expected
    assert [r["link"] for r in bot.audit.rows] == [expected]


def test_a_failed_bulk_label_change_is_retried_next_cycle_keeping_the_drafts(tmp_path: Path) -> None:
    class BulkCallFails(BulkFakeMail):
        fails = 1

        def modify_many(self, provider_ids: Sequence[str], add: Sequence[str], archive: bool) -> dict[str, Exception]:
            if self.fails:
                self.fails -= 1
                raise MailError("HTTP 400: the batch was refused")
            return super().modify_many(provider_ids, add, archive)

    bot = Bot(tmp_path)
    bot.mail = BulkCallFails(processed_label=bot.cfg.labels.processed)
    pids = [bot.mail.add(raw_mail(f"{LEAD} #{i}", sender=f"Prospect {i} <p{i}@prospect{i}.example>"))
            for i in range(2)]
    report = bot.cycle()
    assert (report.processed, report.failed) == (0, 2)
    assert all("Triage/Lead" not in bot.labels(pid) for pid in pids) and len(bot.drafts()) == 2
    report = bot.cycle()
    assert (report.processed, report.failed) == (0, 0)
    assert all({"Triage/Lead", "Triage/Processed"} <= bot.labels(pid) for pid in pids)
    assert len(bot.drafts()) == 2
    assert [r.status if (r := bot.ledger.get(pid)) else None for pid in pids] == ["done", "done"]


def test_a_label_change_failing_on_our_side_waits_without_using_an_attempt(tmp_path: Path) -> None:
    class DiskFullFor(BulkFakeMail):
        stuck = ""  # the message whose change fails

        def modify_many(self, provider_ids: Sequence[str], add: Sequence[str], archive: bool) -> dict[str, Exception]:
            errors = super().modify_many([p for p in provider_ids if p != self.stuck], add, archive)
            return {**errors, self.stuck: OSError(28, "No space left on device")}

    bot = Bot(tmp_path)
    mail = DiskFullFor(processed_label=bot.cfg.labels.processed)
    bot.mail = mail
    pids = [mail.add(raw_mail(f"{LEAD} #{i}", sender=f"Prospect {i} <p{i}@prospect{i}.example>")) for i in range(2)]
    mail.stuck = pids[0]
    report = bot.cycle()
    assert (report.processed, report.failed, report.waiting) == (1, 1, 1)
    row = bot.ledger.get(pids[0])
    assert row is not None and row.status == "decided" and row.attempts == 0 and "No space left" in row.last_error
    assert "Triage/Lead" not in bot.labels(pids[0]) and "Triage/Lead" in bot.labels(pids[1])


def test_trashing_that_fails_is_counted_against_the_mailbox_and_retried(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    pid = bot.mail.add(raw_mail("You won [spam:en:0.99]"))
    bot.cycle()
    bot.clock.now += timedelta(hours=73)
    bot.mail.fail_next("trash", MailError("HTTP 500"))
    report = bot.cycle()
    assert (report.trashed, report.errors) == (0, {"mail": 1}) and "TRASH" not in bot.labels(pid)
    report = bot.cycle()
    assert (report.trashed, report.errors) == (1, {}) and "TRASH" in bot.labels(pid)


def test_more_mail_due_for_the_trash_than_one_call_takes_is_all_trashed_and_counted(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    due = bot.clock.now - timedelta(hours=1)
    pids = [bot.mail.add(raw_mail(f"You won #{i} [spam:en:0.99]")) for i in range(501)]
    for pid in pids:  # as the cycle that labelled them left them: a trash effect due now
        bot.ledger.add_effect(pid, "trash", {}, not_before=due)
    report = CycleReport()
    Pipeline(bot.services()).trash_due(report)
    assert report.trashed == 501
    assert all("TRASH" in bot.labels(pid) for pid in pids)
