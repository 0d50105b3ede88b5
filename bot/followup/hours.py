"""Business hours: how much of a stretch of time falls on working days within working hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import BusinessHours


def business_hours_between(start: datetime, end: datetime, hours: BusinessHours) -> float:
    """Hours of [start, end) within business hours (days, start-end local time, minus holidays)."""
    if end <= start:
        return 0.0
    zone = hours.zone
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    seconds = 0.0
    while day <= last:
        if day.weekday() in hours.days and day not in hours.holidays:
            opens = datetime.combine(day, hours.start, zone).astimezone(UTC)
            closes = datetime.combine(day, hours.end, zone).astimezone(UTC)
            lo, hi = max(opens, start.astimezone(UTC)), min(closes, end.astimezone(UTC))
            seconds += max(0.0, (hi - lo).total_seconds())
        day += timedelta(days=1)
    return seconds / 3600


def wall_hours_between(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / 3600)
