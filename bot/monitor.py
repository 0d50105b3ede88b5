"""What happens around every cycle: the heartbeat, the metrics, the alerts and systemd's watchdog."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot import health
from bot.alerts import Alerter, conditions
from bot.config import Config
from bot.pipeline import CycleReport
from bot.ports import AuthError
from bot.state import Ledger, StateError, now_utc

log = logging.getLogger("bot.daemon")


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify, WatchdogSec=) how the service is; nothing happens outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)


def summary(report: CycleReport) -> str:
    """The cycle in one line: what people care about first, then the detail."""
    parts = [f"listed {report.listed}", f"processed {report.processed}"]
    if report.processed or report.failed:
        assigned = ", ".join(f"{who} {n}" for who, n in sorted(report.assigned.items()))
        parts += [f"drafts {report.drafts}", f"leads assigned {sum(report.assigned.values())}"
                  + (f" ({assigned})" if assigned else ""), f"review {report.review}"]
    parts += [f"trashed {report.trashed}", f"errors {report.failed}" + (" (retried next cycle)" if report.failed
                                                                         else "")]
    if report.resumed:
        parts.append(f"resumed {report.resumed}")
    if report.skipped:
        parts.append(f"left alone {report.skipped} (deleted or moved out of the inbox)")
    if report.paused_until:
        parts.append(f"mail calls paused until {report.paused_until.isoformat(timespec='seconds')}")
    elif report.outage:
        parts.append("stopped early: the mailbox or our side is failing, the rest waits for the next cycle")
    if report.categories:
        parts.append("categories " + ", ".join(f"{k} {v}" for k, v in sorted(report.categories.items())))
    if report.delivered:
        parts.append("delivered " + ", ".join(f"{k} {v}" for k, v in sorted(report.delivered.items())))
    return "; ".join(parts)


def eventful(report: CycleReport) -> bool:
    """Whether the cycle did anything worth a line at INFO (an idle daemon keeps quiet)."""
    return bool(report.listed or report.processed or report.failed or report.resumed or report.trashed
                or report.delivered or report.skipped or report.paused_until or report.outage)


class Monitor:
    """Wraps each cycle: records its outcome (heartbeat, metrics), then raises or clears the alerts."""

    def __init__(self, cfg: Config, ledger: Ledger, send_alert: Callable[[str], None],
                 clock: Callable[[], datetime] = now_utc, metrics: bool = False,
                 gmail_units: Callable[[], int | None] = lambda: None) -> None:
        self.cfg, self.ledger, self.clock, self.metrics, self.gmail_units = cfg, ledger, clock, metrics, gmail_units
        self.started = clock()
        self.alerter = Alerter(ledger, send_alert, timedelta(minutes=cfg.operations.alerts.repeat_minutes), clock)

    def use(self, cfg: Config, ledger: Ledger) -> None:
        """Follow a reloaded config and the ledger opened for it."""
        self.cfg, self.ledger = cfg, ledger
        self.alerter.ledger, self.alerter.repeat = ledger, timedelta(minutes=cfg.operations.alerts.repeat_minutes)

    def cycle(self, run: Callable[[], CycleReport]) -> CycleReport:
        """run() once; its exceptions propagate after they are recorded."""
        from bot import metrics

        began = time.monotonic()
        try:
            report = run()
        except AuthError as exc:
            health.beat(self.cfg, self.ledger, self.clock(), self._masked(f"{health.AUTH_LOST}: {exc}"))
            raise
        except StateError:
            raise
        except Exception as exc:
            hb = health.beat(self.cfg, self.ledger, self.clock(), self._masked(f"failed: {type(exc).__name__}: {exc}"))
            if self.metrics:
                metrics.observe_failure(time.monotonic() - began)
            self.after(hb)
            raise
        ended = self.clock()
        hb = health.beat(self.cfg, self.ledger, ended, "ok", summary(report))
        if self.metrics:
            metrics.observe_cycle(report, time.monotonic() - began, ended)
        sd_notify("WATCHDOG=1")
        self.after(hb)
        return report

    def _masked(self, text: str) -> str:
        """An error as the heartbeat, `status` and the alerts show it: a service may echo its credential."""
        for secret in self.cfg.secrets():
            text = text.replace(secret, "[secret]")
        return text

    def after(self, hb: health.Heartbeat) -> None:
        now = self.clock()
        self.alerter.update(conditions(self.cfg, self.ledger, hb, self.started, now), keys=lambda k: k != "config")
        if self.metrics:
            from bot import metrics

            queues = self.ledger.outbox_queues()
            metrics.observe_state(queues, now, health.verdict(self.cfg, hb, queues, now)[0], self.gmail_units())

    def health(self) -> tuple[bool, str]:
        """The verdict for /healthz (served from another thread: it reads the ledger through its own connection)."""
        return health.check(self.cfg, self.clock())
