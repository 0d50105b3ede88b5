"""The weekly report in the daemon, and its summary in Slack.

When `report.weekly` (a day and a time, business time zone) has passed in the current week and last week's
report was not made yet, the daemon runs `run.py report --week <last week> --post` as a child process after a
poll cycle: matplotlib is loaded there and never in the daemon, whose memory stays as it is. The week is
recorded in the ledger only when the child succeeded, so a failed or missed run (the bot was down on Monday) is
made up after the next cycle, and a week is reported once.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from bot.config import Config
from bot.report.period import previous_week
from bot.state import Ledger, now_utc

log = logging.getLogger(__name__)

WEEK_KEY = "report.last_week"
RUN_PY = Path(__file__).resolve().parents[2] / "run.py"
T = TypeVar("T")


def due_week(cfg: Config, ledger: Ledger, now: datetime) -> str | None:
    """Last week's ISO week when its report is due now, else None."""
    weekly = cfg.report.weekly
    if weekly is None:
        return None
    local = now.astimezone(cfg.followup.business_hours.zone)
    day = local.date() - timedelta(days=local.weekday() - weekly.day)
    moment = datetime.combine(day, weekly.at, local.tzinfo)
    week = previous_week(cfg, now)
    return week if local >= moment and ledger.get_cursor(WEEK_KEY) != week else None


def make_weekly(cfg: Config, ledger: Ledger, now: datetime) -> bool:
    """Write and post the due weekly report in a child process; True when one was made."""
    week = due_week(cfg, ledger, now)
    if week is None:
        return False
    cmd = [sys.executable, str(RUN_PY), "--config", str(cfg.source), "report", "--week", week, "--post"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("the weekly report for %s failed, trying again after the next cycle: %s", week, exc)
        return False
    if done.returncode != 0:
        log.warning("the weekly report for %s failed (exit %d), trying again after the next cycle: %s", week,
                    done.returncode, done.stderr.strip()[-500:])
        return False
    ledger.set_cursor(WEEK_KEY, week)
    log.info("weekly report for %s written", week)
    return True


def with_weekly_report(current: Callable[[], tuple[Config, Ledger]], cycle: Callable[[], T]) -> Callable[[], T]:
    """cycle() followed, when due, by the weekly report; current() gives the config and ledger in force after the
    cycle (a reloaded config may change report.weekly)."""
    def run() -> T:
        result = cycle()
        try:
            make_weekly(*current(), now_utc())
        except Exception as exc:  # the report must never stop the poll loop
            log.warning("weekly report: %s: %s", type(exc).__name__, exc)
        return result
    return run


def post_summary(cfg: Config, text: str, html: Path) -> str:
    """Post the summary to report.slack_channel, with a link (report.link_base) or the HTML file attached."""
    if not cfg.report.slack_channel or not cfg.notify.slack.enabled:
        return "not posted: set report.slack_channel and enable notify.slack"
    from bot.adapters.slack import default_client
    from bot.escape import slack_text

    client = default_client(cfg.notify.slack)
    body = slack_text(text)
    if cfg.report.link_base:
        link = cfg.report.link_base.rstrip("/") + "/" + html.name
        client.chat_postMessage(channel=cfg.report.slack_channel, text=f"{body}\n<{link}|Open the report>",
                                unfurl_links=False, unfurl_media=False)
        return f"posted to {cfg.report.slack_channel} with a link"
    client.files_upload_v2(channel=cfg.report.slack_channel, file=str(html), title=html.name, initial_comment=body)
    return f"posted to {cfg.report.slack_channel} with the file"
