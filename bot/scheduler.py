"""The daemon: an APScheduler 3 BlockingScheduler that runs one poll cycle per interval.

One line when it starts and one when it stops (with the reason); a cycle that found nothing logs only at DEBUG,
so an idle daemon is quiet. Warm stop on the first SIGTERM/SIGINT: the current message finishes, its state is
committed, the process exits 0.
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

from bot.monitor import eventful, sd_notify, summary
from bot.pipeline import CycleReport
from bot.ports import AuthError
from bot.state import StateError

log = logging.getLogger("bot.daemon")

EXIT_OK, EXIT_AUTH, EXIT_STATE = 0, 2, 3


def run_daemon(cycle: Callable[[], CycleReport], interval_seconds: float | Callable[[], float],
               stop: threading.Event, reload_requested: threading.Event | None = None) -> int:
    """Run cycle() now and then every interval_seconds until a signal, lost authorization, an unusable state
    directory, or `stop` being set (checked when the next cycle is due); returns the exit code.

    interval_seconds may be a function, read after every cycle (a reloaded config may change it). SIGHUP sets
    `reload_requested`, which the cycle reads at its start.
    """
    interval = interval_seconds if callable(interval_seconds) else (lambda: float(interval_seconds))
    every = [interval()]
    sched = BlockingScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": max(every[0] * 2, 60)})
    exit_code, why = [EXIT_OK], ["stop requested"]

    def job() -> None:
        if stop.is_set():
            _shutdown_soon(sched, stop)
            return
        try:
            report = cycle()
            log.log(logging.INFO if eventful(report) else logging.DEBUG, "cycle done: %s", summary(report))
        except AuthError as exc:
            log.error("%s", exc)
            exit_code[0], why[0] = EXIT_AUTH, "authorization lost"
            _shutdown_soon(sched, stop)
        except StateError as exc:
            log.error("%s", exc)
            exit_code[0], why[0] = EXIT_STATE, "the state directory cannot be written"
            _shutdown_soon(sched, stop)
        except Exception:  # the scheduler must outlive any bug in one cycle
            log.exception("cycle failed; the next one runs as scheduled")
        if interval() != every[0] and not stop.is_set():
            every[0] = interval()
            sched.reschedule_job("poll", trigger=IntervalTrigger(seconds=every[0]))
            log.info("now polling every %ss", every[0])

    signals = [0]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals[0] += 1
        if signals[0] > 1:
            log.warning("second signal: stopping now")
            os._exit(130)
        why[0] = f"{signal.Signals(signum).name} received"
        log.info("stopping after the current message (send the signal again to stop at once)")
        stop.set()
        _shutdown_soon(sched, stop)

    def on_hup(signum: int, frame: FrameType | None) -> None:
        if reload_requested is not None:
            reload_requested.set()
            log.info("SIGHUP: the config is re-read at the start of the next cycle")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    sched.add_job(job, IntervalTrigger(seconds=every[0]), id="poll", next_run_time=datetime.now(UTC))
    log.info("started: polling every %ss (pid %d); SIGTERM or Ctrl-C stops after the current message, SIGHUP "
             "re-reads the config", every[0], os.getpid())
    sd_notify("READY=1")
    sched.start()
    sd_notify("STOPPING=1")
    log.info("stopped: %s (exit code %d)", why[0], exit_code[0])
    return exit_code[0]


def _shutdown_soon(sched: BlockingScheduler, stop: threading.Event) -> None:
    stop.set()
    # shutdown(wait=True) from inside the job would wait for itself: do it from another thread.
    threading.Thread(target=lambda: sched.shutdown(wait=True), daemon=True).start()
