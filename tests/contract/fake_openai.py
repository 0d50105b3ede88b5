"""A scripted fake of POST /v1/chat/completions on the local FakeServer.

Each test queues the answers the server gives, in order; once the script runs out, the default answer is
repeated. Every request is kept (arrival time and JSON body) so tests can count calls and check what was sent.
Like llama.cpp's Python server it has one slot: the FakeServer runs one handler at a time, so GET /v1/models is
answered only once the completion being computed is done.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.httpfake import FakeServer, Request, Response

Step = Response | Callable[[Request], Response]


def answer_json(**overrides: Any) -> dict[str, Any]:
    """A complete, valid classification answer; keyword arguments replace fields."""
    base: dict[str, Any] = {
        "summary": "Asks for a quote for two centrifugal pumps.",
        "injection_suspected": False,
        "category": "lead",
        "confidence": 0.92,
        "language": "en",
        "person_name": "Jane Buyer",
        "person_email": "jane@buyer.example",
        "company_name": "Buyer Industries",
        "company_domain": "buyer.example",
        "product_interest": "centrifugal pumps",
        "budget_usd_per_year": 40000,
        "timeline": "quarter",
        "region": "US",
        "required_action": "send a quote",
        "technical_rfq": False,
    }
    base.update(overrides)
    return base


def completion(content: str | None, finish_reason: str = "stop", refusal: str | None = None,
               usage: dict[str, int] | None | bool = True, model: str = "gpt-test") -> dict[str, Any]:
    """A chat.completion body; usage=True gives default counts, None/False leaves the field out."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content, "refusal": refusal}}],
    }
    if usage is True:
        usage = {"prompt_tokens": 600, "completion_tokens": 120, "total_tokens": 720}
    if usage:
        body["usage"] = usage
    return body


def ok(answer: dict[str, Any] | None = None, **kw: Any) -> Response:
    return Response(200, completion(json.dumps(answer if answer is not None else answer_json()), **kw))


def held(release: threading.Event) -> Callable[[Request], Response]:
    """An answer the one-slot server computes until the test sets `release` (a slow or hung local model)."""
    def answer(req: Request) -> Response:
        release.wait(10)
        return ok()
    return answer


def error(status: int, message: str, code: str | None = None, type_: str = "invalid_request_error",
          param: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"error": {"message": message, "type": type_, "param": param, "code": code}},
                    headers or {})


@dataclass
class FakeOpenAI:
    server: FakeServer
    script: list[Step] = field(default_factory=list)
    default: Step = field(default_factory=lambda: ok())
    arrivals: list[float] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.route("POST", r"/v1/chat/completions", self._handle)
        self.server.route("GET", r"/v1/models", lambda req: Response(200, {"object": "list", "data": [
            {"id": "gpt-test", "object": "model", "created": 1_700_000_000, "owned_by": "me"}]}))

    @property
    def url(self) -> str:
        return self.server.url + "/v1"

    @property
    def calls(self) -> int:
        return len(self.bodies)

    def then(self, *steps: Step) -> FakeOpenAI:
        self.script.extend(steps)
        return self

    def _handle(self, req: Request) -> Response:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.bodies.append(req.json())
            step = self.script.pop(0) if self.script else self.default
        return step(req) if callable(step) else step

    def reset(self) -> None:
        """Forget everything between tests that share one server (starting a server per test is slow)."""
        with self._lock:
            self.script.clear()
            self.default = ok()
            self.arrivals.clear()
            self.bodies.clear()
        self.server.delay_seconds = 0.0
        with self.server.lock:
            self.server.log.clear()
            self.server.faults.clear()

    def read_timeouts(self) -> list[float]:
        """The time limit the client gave each completion request (openai sends it as x-stainless-read-timeout)."""
        return [float(r.headers["x-stainless-read-timeout"]) for r in self.server.requests("/chat/completions")]

    def quiet(self, seconds: float = 0.5, at_most: float = 10.0) -> None:
        """Wait until no request has arrived for `seconds`: requests queued behind a slow one are then logged."""
        deadline, seen, since = time.monotonic() + at_most, -1, time.monotonic()
        while time.monotonic() < deadline:
            with self.server.lock:
                count = len(self.server.log)
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return
            time.sleep(0.05)

    def stall(self, seconds: float) -> None:
        """Make every following request wait this long before it is answered (a hung model server)."""
        self.server.delay_seconds = seconds
