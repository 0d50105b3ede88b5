"""A small stateful HTTP server on 127.0.0.1 for driving real client libraries in tests.

Routes are (method, regex) -> handler(request) -> Response. Every request is logged. Faults can be queued
per route pattern ("the next 3 calls to /append answer 503 with Retry-After: 1").
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, (dict, list)):
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        elif isinstance(self.body, str):
            data = self.body.encode()
        else:
            data = self.body or b""
        return data, headers


Handler = Callable[[Request], Response]


class FakeServer:
    """Start with `with FakeServer() as srv:`; srv.url is http://127.0.0.1:PORT."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.log: list[Request] = []
        self.faults: list[tuple[re.Pattern[str], Response, list[int]]] = []
        self.delay_seconds = 0.0
        self.lock = threading.RLock()
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every response waits ~40 ms for a delayed ACK

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(pattern), handler))

    def fail(self, pattern: str, response: Response, times: int = 1) -> None:
        """Answer the next `times` requests whose path matches `pattern` with `response`."""
        with self.lock:
            self.faults.append((re.compile(pattern), response, [times]))

    def requests(self, pattern: str = "", method: str | None = None) -> list[Request]:
        rx = re.compile(pattern)
        return [r for r in self.log if rx.search(r.path) and (method is None or r.method == method)]

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        import time

        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Request(h.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                      {k.lower(): v for k, v in h.headers.items()}, body)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        with self.lock:
            self.log.append(req)
            resp = self._fault_for(req.path)
        if resp is None:
            resp = self._route(req)
        data, headers = resp.encoded()
        h.send_response(resp.status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _fault_for(self, path: str) -> Response | None:
        for rx, resp, left in self.faults:
            if left[0] > 0 and rx.search(path):
                left[0] -= 1
                return resp
        return None

    def _route(self, req: Request) -> Response:
        for method, rx, handler in self.routes:
            m = rx.fullmatch(req.path)
            if m and method == req.method:
                req.match = m
                try:
                    with self.lock:
                        return handler(req)
                except Exception as exc:  # a bug in the fake must be visible, not a hang
                    return Response(500, {"error": f"fake handler crashed: {exc!r}"})
        return Response(404, {"error": f"no route for {req.method} {req.path}"})

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
