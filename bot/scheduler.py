"""The daemon: an APScheduler 3 BlockingScheduler that runs one poll cycle per interval.

Warm stop on the first SIGTERM/SIGINT: the current message finishes, its state is committed, the process exits 0.
A second signal stops at once (the ledger is crash-safe, so nothing is lost either way). A job exception is
logged and the next cycle runs as usual; only lost authorization or an unusable state directory stop the daemon,
each with one clear line.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.pipeline import CycleReport
from bot.ports import AuthError
from bot.state import StateError

log = logging.getLogger("bot.daemon")

EXIT_OK, EXIT_AUTH, EXIT_STATE = 0, 2, 3


def summary(report: CycleReport) -> str:
    cats = ", ".join(f"{k} {v}" for k, v in sorted(report.categories.items())) or "nothing new"
    parts = [f"listed {report.listed}", f"processed {report.processed} ({cats})"]
    if report.failed:
        parts.append(f"failed {report.failed} (retried next cycle)")
    if report.resumed:
        parts.append(f"resumed {report.resumed}")
    if report.skipped:
        parts.append(f"left alone {report.skipped} (deleted or moved out of the inbox)")
    if report.paused_until:
        parts.append(f"mail calls paused until {report.paused_until.isoformat(timespec='seconds')}")
    if report.trashed:
        parts.append(f"trashed {report.trashed}")
    if report.delivered:
        parts.append("delivered " + ", ".join(f"{k} {v}" for k, v in sorted(report.delivered.items())))
    return "; ".join(parts)


def run_daemon(cycle: Callable[[], CycleReport], interval_seconds: float, stop: threading.Event) -> int:
    """Run cycle() now and then every interval_seconds until a signal, lost authorization, an unusable state
    directory, or `stop` being set (checked when the next cycle is due); returns the exit code."""
    sched = BlockingScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": max(interval_seconds * 2, 60)})
    exit_code = [EXIT_OK]

    def job() -> None:
        if stop.is_set():
            _shutdown_soon(sched, stop)
            return
        try:
            log.info("cycle done: %s", summary(cycle()))
        except AuthError as exc:
            log.error("%s", exc)
            exit_code[0] = EXIT_AUTH
            _shutdown_soon(sched, stop)
        except StateError as exc:
            log.error("%s", exc)
            exit_code[0] = EXIT_STATE
            _shutdown_soon(sched, stop)
        except Exception:  # the scheduler must outlive any bug in one cycle
            log.exception("cycle failed; the next one runs as scheduled")

    signals = [0]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals[0] += 1
        if signals[0] > 1:
            log.warning("second signal: stopping now")
            os._exit(130)
        log.info("stopping after the current message (send the signal again to stop at once)")
        stop.set()
        _shutdown_soon(sched, stop)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sched.add_job(job, IntervalTrigger(seconds=interval_seconds), id="poll", next_run_time=datetime.now(UTC))
    log.info("polling every %ss; SIGTERM or Ctrl-C stops after the current message", interval_seconds)
    sched.start()
    return exit_code[0]


def _shutdown_soon(sched: BlockingScheduler, stop: threading.Event) -> None:
    stop.set()
    # shutdown(wait=True) from inside the job would wait for itself: do it from another thread.
    threading.Thread(target=lambda: sched.shutdown(wait=True), daemon=True).start()
