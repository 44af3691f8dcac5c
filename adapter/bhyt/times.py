"""BHYT timestamps -> FHIR: `yyyyMMddHHmm` (12) is a local time at the site, `yyyyMMdd` (8) a date.

The decisions give no time zone; the times are the hospital's wall clock, so the offset comes from the
study's timezone (Asia/Ho_Chi_Minh, +07:00) for that instant, never from the machine running the adapter.
A date-only value stays a date (FHIR `date`), as the design requires.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_DIGITS = re.compile(r"^\d{8}(\d{4}(\d{2})?)?$")


class TimeError(ValueError):
    """A BHYT time field that is not yyyyMMdd, yyyyMMddHHmm or yyyyMMddHHmmss (or not a real date)."""


def parse_local(value: str, tz: ZoneInfo) -> date | datetime:
    """A `date` for 8 digits, an aware `datetime` (site zone) for 12 or 14 digits; TimeError otherwise."""
    raw = value.strip()
    if not _DIGITS.match(raw):
        raise TimeError("not yyyyMMdd or yyyyMMddHHmm")
    try:
        day = date(int(raw[0:4]), int(raw[4:6]), int(raw[6:8]))
        if len(raw) == 8:
            return day
        seconds = int(raw[12:14]) if len(raw) == 14 else 0
        return datetime(day.year, day.month, day.day, int(raw[8:10]), int(raw[10:12]), seconds, tzinfo=tz)
    except ValueError as exc:
        raise TimeError("not a real date or time") from exc


def fhir_time(value: date | datetime) -> str:
    """FHIR date (`2024-01-17`) or dateTime with offset (`2024-01-17T08:30:00+07:00`)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat()


def day_of(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)
