"""A scripted fake of POST /v1/chat/completions on the local FakeServer.

Each test queues the answers the server gives, in order; once the script runs out, the default answer is
repeated. Every request is kept (arrival time and JSON body) so tests can count calls and check what was sent.
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

    def stall(self, seconds: float) -> None:
        """Make every following request wait this long before it is answered (a hung model server)."""
        self.server.delay_seconds = seconds
