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


def add_business_hours(start: datetime, hours: float, cal: BusinessHours) -> datetime:
    """The moment `hours` business hours after `start` (the start of the next business hours when 0)."""
    zone, left = cal.zone, max(0.0, hours) * 3600
    day, moment = start.astimezone(zone).date(), start.astimezone(UTC)
    for _ in range(3660):  # ten years of days at most: a calendar without business days must not loop forever
        if day.weekday() in cal.days and day not in cal.holidays:
            opens = max(datetime.combine(day, cal.start, zone).astimezone(UTC), moment)
            closes = datetime.combine(day, cal.end, zone).astimezone(UTC)
            if opens < closes and (closes - opens).total_seconds() >= left:
                return opens + timedelta(seconds=left)
            left -= max(0.0, (closes - opens).total_seconds())
        day += timedelta(days=1)
    raise ValueError("the business hours have no working day")
