"""bot.retry: the one retry policy every adapter shares."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from bot.retry import backoff_delay, call_with_retry, parse_retry_after


class Transient(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("try again")
        self.retry_after = retry_after


class Permanent(Exception):
    pass


def flaky(failures: list[BaseException], result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result
    return calls, fn


def run(fn: Callable[[], str], sleeps: list[float], **kw: Any) -> str:
    return call_with_retry(fn, is_retryable=lambda e: isinstance(e, Transient),
                           retry_after=lambda e: getattr(e, "retry_after", None), sleep=sleeps.append,
                           rng=random.Random(7), **kw)


def test_retryable_errors_are_retried_until_success() -> None:
    sleeps: list[float] = []
    calls, fn = flaky([Transient(), Transient()])
    assert run(fn, sleeps) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_other_errors_are_raised_at_once() -> None:
    sleeps: list[float] = []
    calls, fn = flaky([Permanent("no")])
    with pytest.raises(Permanent):
        run(fn, sleeps)
    assert len(calls) == 1 and sleeps == []


def test_the_last_error_is_raised_unchanged_after_max_attempts() -> None:
    sleeps: list[float] = []
    last = Transient()
    calls, fn = flaky([Transient(), Transient(), last, Transient()])
    with pytest.raises(Transient) as err:
        run(fn, sleeps, max_attempts=3)
    assert err.value is last and len(calls) == 3 and len(sleeps) == 2


def test_retry_after_is_honoured_with_a_little_jitter() -> None:
    sleeps: list[float] = []
    calls, fn = flaky([Transient(4), Transient(0.5)])
    assert run(fn, sleeps) == "ok"
    assert 4 <= sleeps[0] <= 4.4 and 0.5 <= sleeps[1] <= 0.55


def test_total_waiting_is_bounded_even_with_an_injected_sleep() -> None:
    sleeps: list[float] = []
    calls, fn = flaky([Transient(25) for _ in range(10)])
    with pytest.raises(Transient):
        run(fn, sleeps, max_attempts=10, max_delay=60)
    assert len(sleeps) == 2 and sum(sleeps) <= 60
    assert len(calls) == 3  # a third wait of 25 s would have crossed the 60 s budget


def test_a_retry_after_longer_than_the_budget_gives_up_without_waiting() -> None:
    sleeps: list[float] = []
    calls, fn = flaky([Transient(600)])
    with pytest.raises(Transient):
        run(fn, sleeps, max_delay=60)
    assert sleeps == [] and len(calls) == 1


def test_each_retry_is_logged_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    calls, fn = flaky([Transient()])
    run(fn, [], what="Sheets append")
    (record,) = caplog.records
    assert record.getMessage().startswith("Sheets append failed (Transient: try again), retry 1/4 in ")


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_grows_exponentially_with_equal_jitter_and_a_cap(attempt: int) -> None:
    step = min(32.0, 2 ** (attempt - 1))
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, rng=rng) for _ in range(200)]
    assert all(step / 2 <= d <= step for d in delays)
    assert max(delays) - min(delays) > step / 4  # actually spread out, not one fixed value


def test_retry_after_header_values() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0.0
    for missing in (None, "", "soon"):
        assert parse_retry_after(missing) is None
