"""Report periods: an ISO week (`--week 2026-W49`) or the last N days (`--since 7d`), in the business time zone."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from bot.config import Config
from bot.state import iso


def week_bounds(cfg: Config, week: str) -> tuple[str, str, str]:
    """(start, end, title) of an ISO week such as 2026-W49: Monday 00:00 to Monday 00:00, business time zone."""
    m = re.fullmatch(r"(\d{4})-W(\d{2})", week.strip())
    if not m:
        raise ValueError(f"expected a week like 2026-W49, got {week!r}")
    monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    zone = cfg.followup.business_hours.zone
    start = datetime.combine(monday, datetime.min.time(), zone)
    return iso(start), iso(start + timedelta(days=7)), f"Inbox report {week}"


def previous_week(cfg: Config, now: datetime) -> str:
    """The ISO week before the one `now` is in (business time zone)."""
    year, week, _ = (now.astimezone(cfg.followup.business_hours.zone).date() - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def since_bounds(now: datetime, start: datetime, text: str) -> tuple[str, str, str, str]:
    """(start, end, title, file name part) from `start` up to now; `text` is how --since gave it (7d, a date)."""
    if re.fullmatch(r"\d+[dhm]", text.strip()):
        span = round((now - start).total_seconds())  # `start` was reckoned from a `now` a moment earlier
        days = span / 86400
        label = f"the last {days:g} days" if days >= 1 else f"the last {span / 3600:g} hours"
        name = f"last-{text.strip()}"
    else:
        label, name = f"since {text.strip()}", "since-" + re.sub(r"[^0-9A-Za-z]+", "-", text.strip()).strip("-")
    return iso(start), iso(now + timedelta(seconds=1)), f"Inbox report, {label}", name
