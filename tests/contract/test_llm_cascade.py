"""The real openai client against the local fake, through the cascade and the pipeline: what a misconfigured, talked
round or slow model can and cannot do to the inbox."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.adapters.openai_llm import LlmClassifier
from bot.classify.cascade import CascadeClassifier
from bot.models import Classification, Email, PrefilterResult
from bot.pipeline import CycleReport, Pipeline, Services
from bot.state import Ledger
from tests.contract.fake_openai import FakeOpenAI, answer_json, held, ok
from tests.fake_mail import FakeMailProvider
from tests.fakes import Clock, FakeAuditSink, KeywordClassifier, make_config, raw_mail
from tests.integration.local_demo import run_demo

LEAD = "Quote for 3 pumps [lead:en:0.95]"
SPAM = "Cheap followers [spam:en:0.6]"
NEWSLETTER = "Pump industry news [newsletter:en:0.95]"  # the offline model is sure: the LLM is not asked


class Phishing(KeywordClassifier):
    """The offline side with the phishing detector's verdict: it fires on subjects that say "[phish]"."""

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        c = super().classify(email, hint)
        return dataclasses.replace(c, phishing="reply-to differs from sender" if "[phish]" in email.subject else None)


class Inbox:
    """The pipeline with the offline stand-in and the real LLM adapter pointed at the fake."""

    def __init__(self, tmp_path: Path, fake: FakeOpenAI, **llm: Any) -> None:
        self.cfg = make_config(tmp_path)
        llm_cfg = dataclasses.replace(self.cfg.classify.llm, enabled=True, base_url=fake.url, api_key="sk-test",
                                      mode="json_schema", max_retries=2, **llm)
        self.clock = Clock()
        self.ledger = Ledger(self.cfg.state_dir / "ledger.sqlite3")
        self.llm = LlmClassifier(llm_cfg, self.cfg.company.name)
        self.cascade = CascadeClassifier(Phishing(), self.llm, self.ledger, llm_cfg, self.cfg.classify.threshold,
                                         clock=self.clock)
        self.mail = FakeMailProvider(processed_label=self.cfg.labels.processed)
        self.audit = FakeAuditSink()

    def cycle(self) -> CycleReport:
        services = Services(cfg=self.cfg, mail=self.mail, classifier=self.cascade, ledger=self.ledger,
                            audit_sinks=[self.audit], clock=self.clock)
        return Pipeline(services).run_cycle()

    def row(self, subject: str) -> dict[str, str]:
        [row] = [r for r in self.audit.rows if r["subject"] == subject]
        return row

    def drafts(self) -> list[Any]:
        return [m for m in self.mail.messages.values() if "DRAFT" in m.labels]


def assert_review_only(inbox: Inbox, subject: str, reason: str) -> None:
    row = inbox.row(subject)
    assert row["review"] == "yes" and reason in row["reasons"]
    assert "trash" not in row["actions"] and "draft" not in row["actions"] and not row["assignee"]


def test_an_llm_answer_never_trashes_a_lead_nor_drafts_a_reply_to_spam(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.then(ok(answer_json(category="newsletter", confidence=1.0)), ok(answer_json(category="lead", confidence=1.0)))
    inbox = Inbox(tmp_path, fake)
    inbox.mail.add(raw_mail(LEAD))
    inbox.mail.add(raw_mail(SPAM, sender="Promo <promo@spam.example>"))
    report = inbox.cycle()
    assert report.processed == 2 and fake.calls == 2
    assert_review_only(inbox, LEAD, "disagree on whether this is business mail")
    assert_review_only(inbox, SPAM, "disagree on whether this is business mail")
    assert inbox.drafts() == [] and inbox.cascade.counts["disagreed"] == 2


def test_business_mail_the_phishing_signals_fire_on_is_not_drafted(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.default = ok(answer_json(category="lead", confidence=1.0))
    inbox = Inbox(tmp_path, fake)
    inbox.mail.add(raw_mail(f"[phish] {LEAD}"))
    inbox.cycle()
    assert_review_only(inbox, f"[phish] {LEAD}", "phishing signals (reply-to differs from sender)")
    assert inbox.drafts() == []


def test_an_answer_given_without_the_instructions_goes_to_review(tmp_path: Path, fake: FakeOpenAI) -> None:
    # A chat template that drops the system message: the server counts the mail's tokens only.
    fake.default = ok(answer_json(category="lead", confidence=1.0),
                      usage={"prompt_tokens": 40, "completion_tokens": 90, "total_tokens": 130})
    inbox = Inbox(tmp_path, fake)
    inbox.mail.add(raw_mail(LEAD))
    inbox.cycle()
    assert_review_only(inbox, LEAD, "LLM failed: the server dropped part of the request")


def test_a_slow_server_gets_one_request_and_the_cycle_goes_on(tmp_path: Path, fake: FakeOpenAI) -> None:
    release = threading.Event()
    fake.then(held(release))  # a one-slot server still busy long after the client gave up
    inbox = Inbox(tmp_path, fake, timeout_seconds=0.3, max_timeout_seconds=0.3)
    for i in range(3):
        inbox.mail.add(raw_mail(f"{LEAD} #{i}"))
    inbox.mail.add(raw_mail(NEWSLETTER, sender="News <news@pumps.example>"))
    try:
        report = inbox.cycle()
        assert (report.processed, report.failed) == (1, 3)  # the newsletter; the leads wait for the LLM
        assert [r["subject"] for r in inbox.audit.rows] == [NEWSLETTER]
        assert inbox.cascade.counts["paused"] == 2  # asked nothing more in this cycle

        inbox.clock.now += timedelta(seconds=1)  # the pause is over, but the server has not finished yet
        report = inbox.cycle()
        assert report.failed == 3
        errors = {inbox.ledger.get(pid).last_error for pid in inbox.mail.messages  # type: ignore[union-attr]
                  if pid != inbox.row(NEWSLETTER)["provider_id"]}
        assert errors == {"LlmUnavailable: LLM unavailable: the LLM server is still busy with a request that timed "
                          "out", "LlmUnavailable: LLM unavailable: the LLM server is still busy with a request that "
                          "timed out (paused)"}
    finally:
        release.set()
    fake.quiet()
    assert fake.calls == 1  # no retry, nothing sent while it was busy, only a question whether it is
    assert len(fake.server.requests("/v1/models")) == 1

    inbox.clock.now += timedelta(seconds=1)
    report = inbox.cycle()
    assert report.processed == 3 and report.failed == 0 and fake.calls == 4
    assert sorted(r["category"] for r in inbox.audit.rows) == ["lead", "lead", "lead", "newsletter"]


def test_the_demo_inbox_with_a_model_that_calls_everything_a_newsletter(tmp_path: Path, fake: FakeOpenAI) -> None:
    # The run the README describes for a local server, with a model that lost its instructions and answers
    # "newsletter, 1.0" to every mail: nothing the offline classifier calls business mail is trashed.
    fake.default = ok(answer_json(category="newsletter", confidence=1.0))
    run = run_demo(fake.url, "gpt-test", tmp_path)
    assert run.processed == run.mails and run.unsafe == [] and fake.calls > 0
    assert run.review_reasons["the LLM and the offline classifier disagree on whether this is business mail"] > 10
