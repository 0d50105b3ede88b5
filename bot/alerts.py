"""Alerts for the team when the bot needs a person: a stuck poller, a failing sink, a spent LLM budget, a review
pile-up, an invalid config edit.

Each condition is raised once, repeated at most every alerts.repeat_minutes while it holds, and followed by one
"recovered" message when it clears. What was raised and when is kept in the ledger (cursor "alerts"), so a
restart neither repeats an alert early nor forgets to say it recovered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config
from bot.health import Heartbeat, ago
from bot.state import Ledger, iso

log = logging.getLogger("bot.alerts")

ALERTS_KEY = "alerts"
REVIEW_WINDOW = timedelta(hours=24)


def conditions(cfg: Config, ledger: Ledger, hb: Heartbeat | None, started: datetime,
               now: datetime) -> dict[str, str]:
    """key -> alert text, for every condition that holds now."""
    a, out = cfg.operations.alerts, {}
    stuck_after = a.stuck_after_intervals * cfg.poll.interval_seconds
    last_ok = datetime.fromisoformat(hb.last_success) if hb and hb.last_success else started
    if (now - last_ok).total_seconds() > stuck_after:
        what = f"since {iso(last_ok)}" if hb and hb.last_success else "since the bot started"
        error = f"; last error: {hb.outcome}" if hb and hb.outcome != "ok" else ""
        out["stuck"] = (f"no poll cycle has succeeded {what} ({ago((now - last_ok).total_seconds())}, "
                        f"{a.stuck_after_intervals} poll intervals): new mail is not being processed{error}")
    for sink, (count, _, failing) in ledger.outbox_queues().items():
        failing_for = (now - datetime.fromisoformat(failing)).total_seconds() if failing else 0.0
        if failing_for > a.sink_failing_minutes * 60:
            out[f"sink:{sink}"] = (f"{sink} has been failing for {ago(failing_for)}: {count} item(s) wait in its "
                                   "queue and go out in order once it is back")
    llm = cfg.classify.llm
    if llm.enabled:
        spent = ledger.llm_spent_usd(now.date().isoformat())
        if spent >= llm.daily_budget_usd:
            out["llm_budget"] = (f"the LLM budget for today is spent (${spent:.2f} of ${llm.daily_budget_usd:.2f}): "
                                 "the offline classifier decides, mail it is unsure about goes to review")
    review = ledger.review_count(iso(now - REVIEW_WINDOW))
    if review >= a.review_pile_up:
        out["review"] = (f"{review} messages went to review in the last 24 hours (alert at {a.review_pile_up}): "
                         f"they wait under the label {cfg.labels.review}")
    return out


class Alerter:
    """Raises, repeats and clears alerts through `send` (the log and the team's notifiers)."""

    def __init__(self, ledger: Ledger, send: Callable[[str], None], repeat: timedelta,
                 clock: Callable[[], datetime]) -> None:
        self.ledger, self.send, self.repeat, self.clock = ledger, send, repeat, clock

    def _load(self) -> dict[str, dict[str, Any]]:
        text = self.ledger.get_cursor(ALERTS_KEY)
        try:
            return dict(json.loads(text)) if text else {}
        except ValueError:
            return {}

    def _save(self, active: dict[str, dict[str, Any]]) -> None:
        with self.ledger.transaction():
            self.ledger.set_cursor(ALERTS_KEY, json.dumps(active))

    def update(self, holding: dict[str, str], keys: Callable[[str], bool] = lambda key: True) -> None:
        """Raise or repeat every alert in `holding`; those among `keys` that no longer hold have recovered."""
        now, active = self.clock(), self._load()
        for key, text in holding.items():
            known = active.get(key)
            if known is None or now - datetime.fromisoformat(known["sent"]) >= self.repeat:
                self._send(text if known is None else f"still: {text}")
                active[key] = {"since": known["since"] if known else iso(now), "sent": iso(now), "text": text}
        for key in [k for k in active if k not in holding and keys(k)]:
            since = datetime.fromisoformat(active.pop(key)["since"])
            self._send(f"recovered after {ago((now - since).total_seconds())}: {_subject(key)}")
        self._save(active)

    def raise_now(self, key: str, text: str) -> None:
        """Send `text` now, whenever the last alert was; it stays active until update() clears `key`."""
        now, active = self.clock(), self._load()
        self._send(text)
        active[key] = {"since": active.get(key, {}).get("since", iso(now)), "sent": iso(now), "text": text}
        self._save(active)

    def _send(self, text: str) -> None:
        try:
            self.send(text)
        except Exception as exc:  # an alert that cannot be sent must not stop the daemon; the log has it
            log.warning("could not send an alert: %s", type(exc).__name__)


def _subject(key: str) -> str:
    if key.startswith("sink:"):
        return f"{key[5:]} is delivering again"
    return {"stuck": "poll cycles succeed again", "llm_budget": "the LLM budget is available again",
            "review": "the review pile is below the alert level", "config": "config.yaml is valid again"}.get(key, key)
