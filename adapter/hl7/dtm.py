"""HL7 v2 DTM/TS -> FHIR date, dateTime and instant.

`YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`. A value without an offset is read in the site's
timezone (study config), never the machine's; a date stays a date (FHIR dateTime allows it); minutes
and seconds missing from a time are filled with zeros because FHIR needs them. Anything else
(15-digit garbage, month 13, a time without a date) is unreadable: None, and the caller says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,6}))?)?)?)?)?)?"
    r"(?:(Z)|([+-])(\d{2})(\d{2})?)?"
)


@dataclass(frozen=True)
class Dtm:
    """A parsed DTM: a date, or a local time with its offset (`None` until a timezone is applied)."""

    year: int
    month: int | None
    day: int | None
    time: datetime | None  # aware when the value carried an offset, naive otherwise
    fraction: str  # fractional-second digits as sent ('' when none)

    @property
    def has_time(self) -> bool:
        return self.time is not None


def parse_dtm(text: str) -> Dtm | None:
    """Parse a DTM; None when it is empty or not a valid date/time."""
    m = _DTM.fullmatch(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zulu, sign, oh, om = m.groups()
    try:
        y = int(year)
        mo = int(month) if month else None
        d = int(day) if day else None
        if mo is not None and not 1 <= mo <= 12:
            return None
        if d is not None:
            datetime(y, mo or 1, d)
        if y < 1:
            return None
        if hour is None:
            return Dtm(y, mo, d, None, "")
        if d is None:
            return None
        micro = int((frac or "").ljust(6, "0")) if frac else 0
        tz: tzinfo | None = None
        if zulu:
            tz = UTC
        elif sign:
            offset = timedelta(hours=int(oh), minutes=int(om or 0))
            if offset > timedelta(hours=14) or int(om or 0) >= 60:
                return None
            tz = timezone(-offset if sign == "-" else offset)
        moment = datetime(y, mo or 1, d, int(hour), int(minute or 0), int(second or 0), micro, tzinfo=tz)
    except ValueError:
        return None
    return Dtm(y, mo, d, moment, frac or "")


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _aware(dtm: Dtm, tz: tzinfo) -> datetime:
    assert dtm.time is not None
    return dtm.time if dtm.time.tzinfo is not None else dtm.time.replace(tzinfo=tz)


def to_datetime(text: str, tz: tzinfo) -> str | None:
    """FHIR dateTime: a date as precise as sent, or a time with its offset (the site's when none)."""
    dtm = parse_dtm(text)
    if dtm is None:
        return None
    if not dtm.has_time:
        if dtm.month is None:
            return f"{dtm.year:04d}"
        if dtm.day is None:
            return f"{dtm.year:04d}-{dtm.month:02d}"
        return f"{dtm.year:04d}-{dtm.month:02d}-{dtm.day:02d}"
    moment = _aware(dtm, tz)
    frac = f".{dtm.fraction}" if dtm.fraction else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{frac}{_offset(moment)}"


def to_instant(text: str, tz: tzinfo, date_only_ok: bool = False) -> str | None:
    """FHIR instant (needs a full time); a full date becomes local midnight only if `date_only_ok`."""
    moment = to_moment(text, tz, date_only_ok)
    if moment is None:
        return None
    dtm = parse_dtm(text)
    frac = f".{dtm.fraction}" if dtm and dtm.fraction else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{frac}{_offset(moment)}"


def to_moment(text: str, tz: tzinfo, date_only_ok: bool = False) -> datetime | None:
    """An aware datetime, or None when the value is unreadable or less precise than allowed."""
    dtm = parse_dtm(text)
    if dtm is None:
        return None
    if dtm.has_time:
        return _aware(dtm, tz)
    if date_only_ok and dtm.day is not None and dtm.month is not None:
        return datetime(dtm.year, dtm.month, dtm.day, tzinfo=tz)
    return None


def version_stamp(moment: datetime, rank: int) -> str:
    """`meta.lastUpdated` that orders versions: the source's time in UTC, then a status rank.

    The microseconds carry the source's sub-second digits (HL7 sends at most 4, i.e. 100 us steps) and
    the rank (0-99) below them, so two versions with the same MSH-7 still sort by status (P < F < C).
    A fixed format in UTC makes string order equal time order, which the NDJSON merge relies on.
    """
    utc = moment.astimezone(UTC)
    micro = (utc.microsecond // 100) * 100 + max(0, min(rank, 99))
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{micro:06d}Z"
