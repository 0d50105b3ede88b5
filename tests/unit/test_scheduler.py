"""The daemon loop (bot.scheduler.run_daemon) with a real APScheduler and a sub-second interval."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from bot.pipeline import CycleReport
from bot.ports import AuthError
from bot.scheduler import EXIT_AUTH, EXIT_OK, run_daemon


@pytest.fixture(autouse=True)
def rescued() -> Iterator[threading.Event]:
    """run_daemon installs SIGTERM/SIGINT handlers; give the test runner its own back. A daemon that does not
    stop by itself within 60 s gets the SIGTERM an operator would send, so a regression fails instead of hanging;
    the event says whether that happened (a slow machine, or one under a shifted clock, is no regression)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    fired = threading.Event()

    def rescue() -> None:
        fired.set()
        os.kill(os.getpid(), signal.SIGTERM)

    watchdog = threading.Timer(60.0, rescue)
    watchdog.start()
    yield fired
    watchdog.cancel()
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_failing_cycle_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture,
                                                         rescued: threading.Event) -> None:
    stop = threading.Event()
    runs: list[float] = []

    def cycle() -> CycleReport:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RuntimeError("a bug in one cycle")
        stop.set()
        return CycleReport(listed=2, processed=2)

    caplog.set_level(logging.INFO, logger="bot.daemon")

    code = run_daemon(cycle, 0.05, stop)

    assert not rescued.is_set()  # stopped by `stop`, not by the watchdog's SIGTERM
    assert code == EXIT_OK and len(runs) == 2
    failed = [r for r in caplog.records if r.getMessage().startswith("cycle failed")]
    assert len(failed) == 1 and failed[0].exc_info and "a bug in one cycle" in str(failed[0].exc_info[1])
    assert any(r.getMessage().startswith("cycle done: listed 2; processed 2") for r in caplog.records)


def test_lost_authorization_stops_the_daemon_with_its_exit_code(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    runs: list[int] = []

    def cycle() -> CycleReport:
        runs.append(1)
        raise AuthError("Gmail authorization expired or was revoked: run `python run.py auth gmail` again")

    code = run_daemon(cycle, 0.05, stop)

    assert code == EXIT_AUTH and runs == [1] and stop.is_set()
    assert "run `python run.py auth gmail` again" in caplog.text


def test_an_idle_daemon_logs_only_that_it_started_and_stopped(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    runs: list[int] = []

    def cycle() -> CycleReport:
        runs.append(1)
        if len(runs) == 3:
            stop.set()
        return CycleReport()  # an empty poll

    caplog.set_level(logging.INFO, logger="bot.daemon")
    assert run_daemon(cycle, 0.05, stop) == EXIT_OK and len(runs) == 3
    # The bot's own lines: with a 50 ms interval a slow or clock-shifted machine can make APScheduler say it skipped
    # a run that was still going, which is the library's line about the test's interval, not the idle daemon's.
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("bot")]
    assert len(lines) == 2, lines
    assert lines[0].startswith("started: polling every 0.05s") and lines[1] == "stopped: stop requested (exit code 0)"
