"""The running bot: the config in force, the services built from it, and a reload when config.yaml changes.

At the start of every cycle the config file is checked (its size, mtime and inode; SIGHUP forces a re-read).
A valid new file replaces the services (a new ledger connection, adapters, classifier) before the cycle runs;
the round-robin lives in the ledger, so adding or removing a salesperson keeps the rotation fair. An invalid
file changes nothing: the bot keeps the settings it runs with and alerts the team with every problem listed.
A few settings are only read at start-up (state_dir, metrics): a change to them is logged as needing a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from bot.config import Config, ConfigError, load_config
from bot.monitor import Monitor
from bot.pipeline import CycleReport, Pipeline, Services
from bot.state import now_utc

log = logging.getLogger("bot.daemon")

RESTART_ONLY = ("state_dir", "log_level", "log_format")


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Runner:
    """Runs cycles with the latest valid config; `reload_requested` is set by SIGHUP."""

    def __init__(self, cfg: Config, build: Callable[[Config], Services] | None = None,
                 stop: threading.Event | None = None, clock: Callable[[], datetime] = now_utc) -> None:
        from bot.bootstrap import build_services
        from bot.learn import ModelReloader

        self._build = build or build_services
        self._reloader_for = ModelReloader
        self.stop = stop or threading.Event()
        self.reload_requested = threading.Event()
        self.cfg = cfg
        self.stamp = file_stamp(cfg.source)
        self.model = ModelReloader(cfg.classify.model_path)  # before the model is read: no change slips in between
        self.services = self._build(cfg)
        self.pipeline = Pipeline(self.services, stop=self.stop)
        self.monitor = Monitor(cfg, self.services.ledger, self.alert, clock=clock,
                               metrics=cfg.operations.metrics.enabled, gmail_units=self._gmail_units)
        self._recover()

    def _recover(self) -> None:
        """Start-up repairs (bot.recovery): temporary files a kill left behind, and a ledger that was lost."""
        from bot.recovery import clean_orphans, recover_lost_ledger

        clean_orphans(self.cfg)
        lost = recover_lost_ledger(self.cfg, self.services.ledger, self.services.mail, self.services.clock)
        if lost:
            self.alert(lost)

    def alert(self, text: str) -> None:
        """An alert for the team: the running notifiers raise it (Slack's fallback channel), and the log gets one
        ERROR line with the text and whether the team was told."""
        from bot.bootstrap import alert_team

        told = alert_team(self.cfg, text, self.services.notifiers)
        log.error("ALERT: %s%s", " ".join(text.split()), f" ({told})" if told else "")

    def _gmail_units(self) -> int | None:
        pacer = getattr(self.services.mail, "pacer", None)
        return int(pacer.spent) if pacer is not None else None

    def cycle(self) -> CycleReport:
        """One poll cycle with the latest valid config."""
        self.reload_if_changed()
        return self.monitor.cycle(self._run)

    def _run(self) -> CycleReport:
        if self.model.changed():  # `learn` saved a new model
            from bot.bootstrap import build_classifier

            log.info("loading the new model from %s", self.model.path)
            self.services.classifier = build_classifier(self.cfg, self.services.ledger)
        return self.pipeline.run_cycle()

    def reload_if_changed(self) -> bool:
        """Re-read the config file if it changed or SIGHUP asked; True when a new config took effect."""
        stamp = file_stamp(self.cfg.source)
        asked = self.reload_requested.is_set()
        if stamp == self.stamp and not asked:
            return False
        self.reload_requested.clear()
        self.stamp = stamp
        try:
            new = load_config(self.cfg.source)
        except ConfigError as exc:
            log.error("config not reloaded, the bot keeps its current settings: %s", exc)
            self.monitor.alerter.raise_now("config", f"{self.cfg.source} was changed but is invalid; the bot keeps "
                                                     f"running with its previous settings. {exc}")
            return False
        self.monitor.alerter.update({}, keys=lambda key: key == "config")
        for key in RESTART_ONLY:
            if getattr(new, key) != getattr(self.cfg, key):
                log.warning("config: %s changed; it takes effect when the bot restarts", key)
        if new.operations.metrics != self.cfg.operations.metrics:
            log.warning("config: metrics changed; they take effect when the bot restarts")
        new = replace(new, state_dir=self.cfg.state_dir)  # the ledger in use stays the ledger until a restart
        if new == self.cfg:
            if asked:  # whoever sent SIGHUP wants to know it was heard
                log.info("config re-read from %s: nothing changed", new.source)
            return False
        old = self.services
        self.services = self._build(new)
        self.pipeline = Pipeline(self.services, stop=self.stop)
        self.model = self._reloader_for(new.classify.model_path)
        self.cfg = new
        self.monitor.use(new, self.services.ledger)
        if old.ledger is not self.services.ledger:
            old.ledger.close()
        log.info("config reloaded from %s", new.source)
        return True

    def interval(self) -> float:
        return float(self.cfg.poll.interval_seconds)
