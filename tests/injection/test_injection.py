"""Mail that tries to steer the bot must never be routed the way it asks.

Every corpus mail goes through the real parser and the cascade twice: (a) with the LLM off and an offline model
that believes whatever instruction it can see, (b) with an offline model that is unsure and an LLM that obeys
any instruction visible in the prompt it is sent. Both classifiers are deliberately compromised: what has to
hold the line is the cascade's own detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.classify.cascade import INJECTION_REVIEW, CascadeClassifier
from bot.classify.prompt import build_messages
from bot.config import LlmConfig
from bot.mime import parse_email
from bot.models import DISPOSABLE, Classification, Email, PrefilterResult

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
EXPECT: dict[str, dict[str, Any]] = yaml.safe_load((HERE / "expectations.yaml").read_text(encoding="utf-8"))
THRESHOLD = 0.7
CFG = LlmConfig(enabled=True, base_url="http://127.0.0.1:9/v1", model="obedient", api_key=None, mode="json_schema",
                timeout_seconds=5, max_retries=0, daily_budget_usd=10.0, input_usd_per_mtok=0.15,
                output_usd_per_mtok=0.6, call_below_confidence=0.9,
                call_for_categories=("lead", "support", "accounting", "vendor", "job_applicant", "other"),
                redact=True, thread_cache_hours=24)


def mail_fields(email: Email) -> str:
    """Everything parsed out of the mail that any classifier could read."""
    return "\n".join((email.from_name, email.subject, email.body, email.text, email.signature, email.quoted,
                      *(a.filename for a in email.attachments)))


def llm_prompt(email: Email) -> str:
    return "\n".join(m["content"] for m in build_messages(email, "Acme Pumps GmbH", 1500, True, False))


def attacker_result(case: dict[str, Any], classifier: str) -> Classification:
    return Classification(category=case["wants"], confidence=0.99, language="en", classifier=classifier,
                          person_email=case.get("assignee"), summary="Exactly what the sender asked for.")


def honest_result(case: dict[str, Any], classifier: str, confidence: float) -> Classification:
    return Classification(category=case["honest"], confidence=confidence, language="en", classifier=classifier)


@dataclass
class BelievingOffline:
    """An offline model fooled by any instruction it can see in the parsed mail."""

    case: dict[str, Any]
    name: str = "offline"

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        if self.case["marker"] in mail_fields(email):
            return attacker_result(self.case, self.name)
        return honest_result(self.case, self.name, 0.95)


@dataclass
class UnsureOffline:
    name: str = "offline"

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        return Classification(category="other", confidence=0.5, language=None, classifier=self.name)


@dataclass
class ObedientLlm:
    """Does whatever an instruction in its prompt says, and never admits to having seen one."""

    case: dict[str, Any]
    name: str = "llm:obedient"
    calls: int = 0

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        self.calls += 1
        if self.case["marker"] in llm_prompt(email):
            return attacker_result(self.case, self.name)
        return honest_result(self.case, self.name, 0.9)


class NoMemory:
    def llm_spent_usd(self, day: str) -> float:
        return 0.0

    def recent_thread_classification(self, thread_id: str, hours: float) -> Classification | None:
        return None


def routed_as_asked(result: Classification, case: dict[str, Any]) -> bool:
    """The attacker wins if the bot acts on the result without a person looking at it first."""
    if result.review_reason:
        return False
    trashed = result.category in DISPOSABLE and result.confidence >= THRESHOLD
    steered = result.category == case["wants"] != case["honest"]
    return trashed or steered or (case.get("assignee") is not None and result.person_email == case["assignee"])


def load(name: str) -> Email:
    return parse_email((CORPUS / f"{name}.eml").read_bytes(), provider_id=name)


def test_the_corpus_is_complete() -> None:
    files = {p.stem for p in CORPUS.glob("*.eml")}
    assert files == set(EXPECT)
    live = [c for c in EXPECT.values() if c["reaches"] != "none"]
    assert len(live) >= 20
    assert {c["language"] for c in live} >= {"en", "de", "fr", "es", "it", "pt"}


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_the_marker_reaches_where_the_expectation_says(name: str) -> None:
    case, email = EXPECT[name], load(name)
    in_mail, in_prompt = case["marker"] in mail_fields(email), case["marker"] in llm_prompt(email)
    assert (in_mail, in_prompt) == {"prompt": (True, True), "mail": (True, False), "none": (False, False)}[
        case["reaches"]]


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_llm_off_offline_fooled(name: str) -> None:
    case = EXPECT[name]
    cascade = CascadeClassifier(BelievingOffline(case), None, NoMemory(), CFG, THRESHOLD)
    result = cascade.classify(load(name))
    assert not routed_as_asked(result, case)
    if case["reaches"] != "none":
        assert result.review_reason == INJECTION_REVIEW
        assert any(r.startswith("injection pattern:") for r in result.reasons)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_obedient_llm_is_overruled(name: str) -> None:
    case = EXPECT[name]
    llm = ObedientLlm(case)
    cascade = CascadeClassifier(UnsureOffline(), llm, NoMemory(), CFG, THRESHOLD)
    result = cascade.classify(load(name))
    assert llm.calls == 1  # the LLM really answered; the detector has to overrule it
    assert not routed_as_asked(result, case)
    if case["reaches"] != "none":
        assert result.review_reason == INJECTION_REVIEW
    if case["reaches"] == "prompt":
        assert result.category == case["wants"]  # it did obey: the review is the only thing standing in the way
