"""Prometheus metrics, opt-in (`metrics.enabled`), with /healthz on the same HTTP server.

The metrics are declared once here; the daemon's monitor updates them after every cycle (observe_cycle) and
nothing else knows about them. The server is prometheus-client's own WSGI app in a daemon thread, with one
extra path: /healthz answers 200 or 503 with the one-line verdict of `python run.py health`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from bot.config import MetricsConfig
from bot.pipeline import CycleReport
from bot.retry import RETRIES

log = logging.getLogger("bot.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter("triage_messages", "Messages decided, by category and action", ["category", "action"],
                   registry=REGISTRY)
REVIEW = Counter("triage_review_messages", "Messages sent to human review", registry=REGISTRY)
REVIEW_RATE = Gauge("triage_review_rate", "Share of the messages decided since start that went to review",
                    registry=REGISTRY)
DRAFTS = Counter("triage_drafts", "Reply drafts made", registry=REGISTRY)
CYCLES = Counter("triage_cycles", "Poll cycles, by outcome", ["outcome"], registry=REGISTRY)
CYCLE_SECONDS = Histogram("triage_cycle_duration_seconds", "Duration of one poll cycle", registry=REGISTRY,
                          buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600))
LAST_SUCCESS = Gauge("triage_last_success_timestamp_seconds", "Unix time the last successful cycle ended",
                     registry=REGISTRY)
OUTBOX_DEPTH = Gauge("triage_outbox_depth", "Items queued for a sink", ["sink"], registry=REGISTRY)
OUTBOX_AGE = Gauge("triage_outbox_oldest_age_seconds", "Age of the oldest item queued for a sink", ["sink"],
                   registry=REGISTRY)
RETRIES_TOTAL = Counter("triage_retries", "Retried calls, by service", ["service"], registry=REGISTRY)
ERRORS = Counter("triage_errors", "Failures, by service (mail, llm, a sink, cycle)", ["service"],
                 registry=REGISTRY)
GMAIL_UNITS = Counter("triage_gmail_quota_units", "Gmail quota units spent", registry=REGISTRY)
LLM_CALLS = Counter("triage_llm_calls", "LLM calls", registry=REGISTRY)
LLM_TOKENS = Counter("triage_llm_tokens", "LLM tokens, by kind", ["kind"], registry=REGISTRY)
LLM_COST = Counter("triage_llm_cost_usd", "LLM cost in US dollars", registry=REGISTRY)
HEALTHY = Gauge("triage_healthy", "1 when the health verdict is healthy, else 0", registry=REGISTRY)



class _Seen:
    """Running totals the gauges are computed from, and what the cumulative sources showed last time."""

    decided = 0
    review = 0
    gmail_units = 0
    retries: dict[str, int] = {}
    sinks: set[str] = set()


def observe_cycle(report: CycleReport, seconds: float, ended: datetime) -> None:
    """Count one successful cycle."""
    CYCLES.labels("ok").inc()
    CYCLE_SECONDS.observe(seconds)
    LAST_SUCCESS.set(ended.timestamp())
    for (category, action), n in report.actions.items():
        MESSAGES.labels(category, action).inc(n)
    REVIEW.inc(report.review)
    DRAFTS.inc(report.drafts)
    _Seen.decided += sum(report.actions.values())
    _Seen.review += report.review
    if _Seen.decided:
        REVIEW_RATE.set(_Seen.review / _Seen.decided)
    for service, n in report.errors.items():
        ERRORS.labels(service).inc(n)
    LLM_CALLS.inc(report.llm.calls)
    LLM_TOKENS.labels("input").inc(report.llm.prompt_tokens)
    LLM_TOKENS.labels("output").inc(report.llm.completion_tokens)
    LLM_COST.inc(report.llm.cost_usd)


def observe_failure(seconds: float) -> None:
    CYCLES.labels("failed").inc()
    CYCLE_SECONDS.observe(seconds)
    ERRORS.labels("cycle").inc()


def observe_state(queues: dict[str, tuple[int, str, str]], now: datetime, healthy: bool,
                  gmail_units: int | None) -> None:
    """Gauges read from the ledger and the adapters: outbox queues, health, retries and quota so far."""
    _Seen.sinks |= set(queues)
    for sink in _Seen.sinks:  # a sink whose queue emptied shows 0, not its last depth
        count, oldest, _ = queues.get(sink, (0, "", ""))
        OUTBOX_DEPTH.labels(sink).set(count)
        OUTBOX_AGE.labels(sink).set((now - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0)
    HEALTHY.set(1 if healthy else 0)
    for service, n in list(RETRIES.items()):
        RETRIES_TOTAL.labels(service).inc(n - _Seen.retries.get(service, 0))
        _Seen.retries[service] = n
    if gmail_units is not None:
        # A provider rebuilt by a config reload starts counting from zero again.
        GMAIL_UNITS.inc(gmail_units - _Seen.gmail_units if gmail_units >= _Seen.gmail_units else gmail_units)
        _Seen.gmail_units = gmail_units


def start(cfg: MetricsConfig, health: Callable[[], tuple[bool, str]]) -> ThreadingWSGIServer:
    """Serve /metrics and /healthz on cfg.address:cfg.port in a daemon thread; returns the server."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok, line = health()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8")])
            return [line.encode("utf-8") + b"\n"]
        return metrics_app(environ, start_response)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # scrapes every 15 s must not fill the log
            pass

    server = make_server(cfg.address, cfg.port, app, ThreadingWSGIServer, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics and /healthz on http://%s:%d/", cfg.address, server.server_port)
    return server
