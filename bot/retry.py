"""One retry policy for every remote call the bot makes (Gmail, Sheets, Slack, HubSpot).

Each call has exactly one retry owner: the client libraries' own retries are switched off and the adapters wrap
their calls in call_with_retry(). Waits grow exponentially with jitter, a server's Retry-After is honoured, and
the total time spent waiting is bounded, so one slow service cannot stall a poll cycle indefinitely; once the
budget is spent the last error is raised and the caller's own "try again next cycle" logic takes over.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

T = TypeVar("T")
log = logging.getLogger(__name__)

_rng = random.Random()
# Retries made so far per service (the first word of `what`, lower case); read by the metrics, never reset.
RETRIES: Counter[str] = Counter()


def backoff_delay(attempt: int, *, initial: float = 1.0, cap: float = 32.0, rng: random.Random | None = None) -> float:
    """Wait before retry number `attempt` (1-based): exponential, capped, with "equal jitter".

    Half of the exponential step is fixed and half is random, so retries never collapse to ~0 s (as full jitter
    can) while clients that failed together still spread out.
    """
    step = min(cap, initial * 2 ** max(0, attempt - 1))
    return step / 2 + (rng or _rng).uniform(0, step / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def call_with_retry(
    fn: Callable[[], T],
    *,
    is_retryable: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None] = lambda exc: None,
    max_attempts: int = 5,
    max_delay: float = 60.0,
    initial: float = 1.0,
    cap: float = 32.0,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "call",
    rng: random.Random | None = None,
) -> T:
    """Call fn(); retry it while is_retryable(error), at most max_attempts times in all.

    The wait before a retry is the server's Retry-After (plus up to 10 % jitter) when retry_after() finds one,
    else backoff_delay(). Retrying stops - and the last error is raised unchanged - when the attempts are used
    up or when the next wait would take the total time past max_delay seconds. Time is counted both by the clock
    and by the waits requested from `sleep`, so an injected sleep in tests sees the same bound.
    """
    jitter = rng or _rng

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after(exc) if exc is not None else None
        if hinted is not None:
            return hinted + jitter.uniform(0, min(1.0, hinted * 0.1))
        return backoff_delay(state.attempt_number, initial=initial, cap=cap, rng=jitter)

    def stop(state: RetryCallState) -> bool:
        spent = max(state.seconds_since_start or 0.0, state.idle_for)
        return state.attempt_number >= max_attempts or spent + state.upcoming_sleep > max_delay

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        RETRIES[what.split()[0].lower() if what.strip() else "call"] += 1
        log.warning("%s failed (%s), retry %d/%d in %.1f s", what, _describe(exc), state.attempt_number,
                    max_attempts - 1, state.upcoming_sleep)

    retrying = Retrying(retry=retry_if_exception(is_retryable), wait=wait, stop=stop, sleep=sleep,
                        before_sleep=before_sleep, reraise=True)
    return retrying(fn)


def _describe(exc: BaseException | None) -> str:
    """A short, single-line description: error types and status, never request bodies or headers."""
    if exc is None:
        return "no error"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}"
