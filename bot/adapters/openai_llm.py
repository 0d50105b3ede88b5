"""Classifier backed by an OpenAI or OpenAI-compatible chat model (OpenAI, Ollama, vLLM, llama.cpp).

One request per mail, retried only by the client itself (max_retries), and never after a timeout. The answer is
checked field by field: nothing the model says is trusted beyond what the schema allows, and an address it
"extracts" must appear in the mail. Every way a call can go wrong ends in LlmFailure, which the cascade turns into
a review (a bad answer) or a wait (a server that is down, slow or busy).

Time limits follow the server. The first call may take max_timeout_seconds; each answer's time and tokens give
the server's speed, and a call's limit is SAFETY times what that speed predicts for the request with the longest
answer allowed, within [timeout_seconds, max_timeout_seconds]. A local server with one slot keeps computing a
request its client gave up on, so a request sent after a timeout would only queue behind it: after a timeout the
next call first asks for the model list (which llama.cpp's Python server answers only when idle) and is not sent
while the server is still busy.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

from bot.classify.cascade import LlmFailure
from bot.classify.prompt import FIELD_NAMES, TIMELINES, build_messages, estimate_tokens, response_schema
from bot.config import LlmConfig
from bot.models import CATEGORIES, Classification, Email, PrefilterResult, Usage

log = logging.getLogger(__name__)

WRAPPED_REVIEW = "LLM answer was fenced or wrapped in text, not the bare JSON asked for"
MAX_OUTPUT_TOKENS = 600  # a full answer is about 150 tokens; the cap bounds the cost of a rambling model
SAFETY = 3  # a call's limit: this many times what the measured speed predicts for its longest possible answer
SPEED_WINDOW = 8  # the slowest of this many recent answers sets the speed: a shared machine's load varies
PROBE_SECONDS = 5.0
DROPPED_SHARE = 0.6  # a server that counts less than this share of the tokens sent has dropped part of the request
_FENCED = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?:[a-z0-9-]+\.)+[a-z]{2,}$")
_NULLISH = {"", "null", "none", "n/a", "na", "unknown", "-"}


def _no_pointless_retries(response: httpx2.Response) -> None:
    # The client retries every 429 and 5xx. Two of them will answer the same however often they are asked:
    # a 429 "insufficient_quota", and a 5xx that rejects the response_format (llama.cpp servers report an
    # unsupported json_schema that way). Marking them is the client's own documented way to stop a retry.
    if response.status_code == 429 or response.status_code >= 500:
        response.read()
        if b"insufficient_quota" in response.content or b"response_format" in response.content:
            response.headers["x-should-retry"] = "false"


class _TimeoutsNotRetried(httpx2.Client):
    """The openai client retries a timed-out request, which a one-slot local server queues behind the request it is
    still computing. It passes an OpenAIError raised by the HTTP client on unretried (openai/_base_client.py)."""

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        try:
            return super().send(request, **kwargs)
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=request) from exc


def make_client(cfg: LlmConfig) -> openai.OpenAI:
    http_client = _TimeoutsNotRetried(timeout=cfg.max_timeout_seconds, limits=openai.DEFAULT_CONNECTION_LIMITS,
                                      follow_redirects=True, event_hooks={"response": [_no_pointless_retries]})
    return openai.OpenAI(api_key=cfg.api_key or "sk-local-none", base_url=cfg.base_url,
                         timeout=cfg.max_timeout_seconds, max_retries=cfg.max_retries, http_client=http_client)


class LlmClassifier:
    """Classifier protocol, except that it raises LlmFailure (bot.classify.cascade) instead of guessing."""

    def __init__(self, cfg: LlmConfig, company: str, text_chars: int = 1500,
                 client: openai.OpenAI | None = None, timer: Callable[[], float] = time.monotonic) -> None:
        self.name = f"llm:{cfg.model}"
        self._cfg = cfg
        self._company = company
        self._text_chars = text_chars
        self._client = client or make_client(cfg)
        self._timer = timer
        self._mode = "json_schema" if cfg.mode == "auto" else cfg.mode
        self._dropped: set[str] = set()  # request parameters this server rejected once
        self._sent = 0  # estimated input tokens of the last request
        self._warned = False
        self._seconds_per_token: deque[float] = deque(maxlen=SPEED_WINDOW)
        self._unmeasured_limit = cfg.max_timeout_seconds  # while no speed is known
        self._limit = cfg.max_timeout_seconds  # of the last call
        self._abandoned = 0.0  # the limit of a call that timed out and may still be running on the server; 0: none

    @property
    def mode(self) -> str:
        return self._mode

    def limit_for(self, request_tokens: int) -> float:
        """The time limit of a call sending this many tokens, from the server's measured speed."""
        if not self._seconds_per_token:
            return self._unmeasured_limit
        predicted = max(self._seconds_per_token) * (request_tokens + MAX_OUTPUT_TOKENS)
        return min(max(SAFETY * predicted, self._cfg.timeout_seconds), self._cfg.max_timeout_seconds)

    def classify(self, email: Email, hint: PrefilterResult | None = None) -> Classification:
        if self._abandoned and self._still_busy():
            raise LlmFailure("the LLM server is still busy with a request that timed out",
                             pause_seconds=self._abandoned)
        for _ in range(3):  # each adaptation below happens at most once per process
            started = self._timer()
            try:
                completion = self._complete(email, hint)
            except openai.APITimeoutError:
                raise self._timed_out() from None
            except (openai.BadRequestError, openai.UnprocessableEntityError, openai.InternalServerError) as err:
                if not self._adapt(err):
                    raise _failure(err) from err
                continue
            except openai.OpenAIError as err:
                raise _failure(err) from err
            self._abandoned = 0.0
            usage = usage_of(completion, self._cfg, self._sent)
            if usage.prompt_tokens + usage.completion_tokens:
                self._seconds_per_token.append((self._timer() - started) / (usage.prompt_tokens +
                                                                           usage.completion_tokens))
            return self._classification(email, completion, usage)
        raise LlmFailure("the server rejected every request format")

    def _timed_out(self) -> LlmFailure:
        """The server is slower than measured, or hung: forget its speed, allow the next call twice as long, and
        wait as long again before asking it anything (the request may still be running there)."""
        limit = self._abandoned = self._limit
        self._seconds_per_token.clear()
        self._unmeasured_limit = min(2 * limit, self._cfg.max_timeout_seconds)
        log.warning("the LLM server gave no answer within %.3g s; the next call may take %.3g s (at most "
                    "classify.llm.max_timeout_seconds)", limit, self._unmeasured_limit)
        return LlmFailure(f"timeout after {limit:.3g} s", Usage(calls=1, failed=1), pause_seconds=limit)

    def _still_busy(self) -> bool:
        """Whether the server is still computing a request that timed out. llama.cpp's Python server answers the
        model list only when idle; servers that answer it at once cancel a request whose client left."""
        probe = self._client.with_options(timeout=min(PROBE_SECONDS, self._cfg.timeout_seconds), max_retries=0)
        try:
            probe.models.list()
        except openai.APITimeoutError:
            return True
        except openai.OpenAIError:
            pass  # no model list here, or the server is down: the call itself will tell
        return False

    def _complete(self, email: Email, hint: PrefilterResult | None) -> ChatCompletion:
        schema = response_schema()
        messages: Any = build_messages(email, self._company, self._text_chars, self._cfg.redact,
                                       describe_schema=self._mode == "json_object", hint=hint,
                                       system_role=self._cfg.system_role)
        self._sent = estimate_tokens(messages)
        self._limit = self.limit_for(self._sent)
        response_format: Any = (
            {"type": "json_schema", "json_schema": {"name": "triage", "strict": True, "schema": schema}}
            if self._mode == "json_schema" else {"type": "json_object", "schema": schema})
        extra: dict[str, Any] = {}
        if "temperature" not in self._dropped:
            extra["temperature"] = 0
        if "max_tokens" not in self._dropped:
            extra["max_tokens"] = MAX_OUTPUT_TOKENS
        return self._client.chat.completions.create(
            model=self._cfg.model, messages=messages, response_format=response_format, timeout=self._limit, **extra)

    def _adapt(self, err: openai.APIStatusError) -> bool:
        """Adjust to a server that rejected part of the request; False when there is nothing left to adjust.

        Servers differ in how they reject an unknown response_format: 400 (OpenAI-style), 422 (request
        validation) or 500 (llama.cpp's Python server); the message names the field in all three.
        """
        text = f"{err.param or ''} {err.message} {err.body}".lower()
        if self._cfg.mode == "auto" and self._mode == "json_schema" and (
                "response_format" in text or "json_schema" in text):
            log.warning("LLM server does not accept json_schema output; using json_object from now on")
            self._mode = "json_object"
            return True
        for param in ("temperature", "max_tokens"):
            if err.status_code == 400 and param in text and param not in self._dropped:
                log.warning("LLM server rejected %s; sending requests without it from now on", param)
                self._dropped.add(param)
                return True
        return False

    def _classification(self, email: Email, completion: ChatCompletion, usage: Usage) -> Classification:
        if 0 < usage.prompt_tokens < DROPPED_SHARE * self._sent:
            # The model never saw part of the request: most likely the instructions (a chat template without a
            # system role drops them), so its answer says nothing about the mail, however sure it sounds.
            if not self._warned:
                self._warned = True
                log.error("the LLM server counted %d input tokens for a request of about %d and dropped the rest; "
                          "every answer goes to review. %s", usage.prompt_tokens, self._sent,
                          "Its chat template may drop the system message: set classify.llm.system_role: false"
                          if self._cfg.system_role else "Is its context (n_ctx) too small?")
            raise LlmFailure(f"the server dropped part of the request (counted {usage.prompt_tokens} input tokens "
                             f"of about {self._sent})", usage)
        try:
            answer, wrapped = parse_answer(completion)
        except LlmFailure as exc:
            raise LlmFailure(exc.reason, usage) from None
        c = to_classification(answer, email, self.name, usage, self._mode)
        # A model that wraps its answer in a fence or in prose did not do what it was told: its fields are kept
        # for the person, who decides.
        return replace(c, review_reason=c.review_reason or WRAPPED_REVIEW) if wrapped else c


def usage_of(completion: ChatCompletion, cfg: LlmConfig, sent_estimate: int = 0) -> Usage:
    """Tokens and cost of a call. Local servers often leave usage out: the call still counts, and its tokens are
    estimated from the text sent and received, so that the daily budget still bounds a server that bills."""
    u = completion.usage
    if u is None:
        content = completion.choices[0].message.content if completion.choices else None
        prompt, output = sent_estimate, len(content or "") // 4
    else:
        prompt, output = u.prompt_tokens or 0, u.completion_tokens or 0
    cost = (prompt * cfg.input_usd_per_mtok + output * cfg.output_usd_per_mtok) / 1_000_000
    return Usage(calls=1, prompt_tokens=prompt, completion_tokens=output, cost_usd=cost)


def _failure(err: openai.OpenAIError) -> LlmFailure:
    """The reason in words, and how long asking again is pointless (the cascade pauses the LLM that long)."""
    reason, pause = type(err).__name__, 0.0
    if isinstance(err, openai.APIConnectionError):
        reason, pause = "cannot connect to the LLM server", 120
    elif isinstance(err, openai.RateLimitError) and err.code == "insufficient_quota":
        reason, pause = "quota exhausted (insufficient_quota)", 1800
    elif isinstance(err, openai.RateLimitError):
        reason, pause = "rate limited (429)", 30
    elif isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
        reason, pause = f"not authorised ({err.status_code})", 1800  # the message may quote part of the key
    elif isinstance(err, openai.APIStatusError):
        reason, pause = f"HTTP {err.status_code}: {str(err.message)[:160]}", 120 if err.status_code >= 500 else 0
    return LlmFailure(reason, Usage(calls=1, failed=1), pause)


def parse_answer(completion: ChatCompletion) -> tuple[dict[str, Any], bool]:
    """(the JSON object of the first choice, whether it came fenced or wrapped in text); LlmFailure for
    refusals, cut-offs and anything not JSON."""
    if not completion.choices:
        raise LlmFailure("empty response")
    choice = completion.choices[0]
    if getattr(choice.message, "refusal", None):
        raise LlmFailure(f"refused: {str(choice.message.refusal)[:120]}")
    if choice.finish_reason == "length":
        raise LlmFailure("answer cut off (length)")
    content = (choice.message.content or "").strip()
    fenced = _FENCED.search(content)
    wrapped = bool(fenced) or (not content.startswith("{") and "{" in content)
    if fenced:
        content = fenced.group(1).strip()
    elif wrapped:
        content = content[content.find("{"):content.rfind("}") + 1]
    try:
        answer = json.loads(content)
    except ValueError:
        raise LlmFailure("answer is not valid JSON") from None
    if not isinstance(answer, dict):
        raise LlmFailure("answer is not a JSON object")
    return answer, wrapped


def _text(value: Any, limit: int = 200) -> str | None:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return None
    s = " ".join(str(value).split())[:limit]
    return None if s.lower() in _NULLISH else s


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").strip())
        except ValueError:
            return None
    return float(value) if isinstance(value, (int, float)) else None


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _mail_haystack(email: Email) -> str:
    parts = [email.from_addr, email.reply_to, *email.to, *email.cc, *email.headers.values(), email.subject,
             email.body, email.text, email.signature, email.quoted]
    return "\n".join(parts).lower()


def to_classification(answer: dict[str, Any], email: Email, name: str, usage: Usage, mode: str) -> Classification:
    """Map a parsed answer onto a Classification, dropping whatever the mail does not support."""
    category = str(answer.get("category") or "").strip().lower().replace(" ", "_").replace("-", "_")
    if category not in CATEGORIES:
        raise LlmFailure(f"unknown category {category[:30]!r}" if category else "answer has no category", usage)
    confidence = _number(answer.get("confidence"))
    if confidence is None:
        raise LlmFailure("answer has no confidence", usage)
    reasons = [f"llm ({mode}): {category}"]
    missing = [f for f in FIELD_NAMES if f not in answer]
    if missing:
        reasons.append("answer lacked " + ", ".join(missing))
    person_email = (_text(answer.get("person_email")) or "").lower() or None
    if person_email and (not _EMAIL.match(person_email) or person_email not in _mail_haystack(email)):
        reasons.append("dropped an address that is not in the mail")
        person_email = None
    language = (_text(answer.get("language"), 5) or "").lower()
    region = (_text(answer.get("region"), 5) or "").upper()
    domain = (_text(answer.get("company_domain")) or "").lower().removeprefix("www.")
    timeline = _text(answer.get("timeline"), 20)
    budget = _number(answer.get("budget_usd_per_year"))
    injection = _flag(answer.get("injection_suspected"))
    return Classification(
        category=category,
        confidence=min(1.0, max(0.0, confidence)),
        language=language if re.fullmatch(r"[a-z]{2}", language) else None,
        classifier=name,
        person_name=_text(answer.get("person_name"), 120),
        person_email=person_email,
        company=_text(answer.get("company_name"), 120),
        company_domain=domain if _DOMAIN.match(domain) else None,
        technical_rfq=_flag(answer.get("technical_rfq")),
        summary=_text(answer.get("summary"), 500),
        reasons=tuple(reasons),
        review_reason="possible prompt injection" if injection else None,
        fields={
            "product_interest": _text(answer.get("product_interest")),
            "budget": budget if budget is not None and budget >= 0 else None,
            "timeline": timeline if timeline in TIMELINES else "unknown",
            "region": region if re.fullmatch(r"[A-Z]{2}", region) else None,
            "required_action": _text(answer.get("required_action")),
            "injection_suspected": injection,
        },
        usage=usage,
    )
