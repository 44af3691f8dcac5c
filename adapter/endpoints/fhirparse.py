"""Small readers for FHIR R4 JSON fields: references, codings, dates in the site's timezone."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, tzinfo
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def ref_id(reference: Any, resource_type: str | None = None) -> str | None:
    """The id in a reference (`Patient/x`, an absolute URL, or `.../_history/2`); None if another type."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str) or not text:
        return None
    parts = text.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2:
        return None
    kind, rid = parts[-2], parts[-1]
    if resource_type and kind != resource_type:
        return None
    return rid


def codings(concept: Any) -> Iterator[dict[str, Any]]:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict):
                yield coding


def code_in(concept: Any, system: str) -> str | None:
    """The first code of `system` in a CodeableConcept."""
    return next(
        (c.get("code") for c in codings(concept) if c.get("system") == system and c.get("code")), None
    )


def first_code(concepts: Iterable[Any]) -> str | None:
    for concept in concepts:
        for coding in codings(concept):
            if coding.get("code"):
                return str(coding["code"])
    return None


def concept_text(concept: Any) -> str | None:
    """What a person reads: `text`, else the first coding's display, else its code."""
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in codings(concept):
        if coding.get("display"):
            return str(coding["display"])
    return next((str(c["code"]) for c in codings(concept) if c.get("code")), None)


def parse_moment(value: Any, tz: tzinfo) -> tuple[date, datetime | None] | None:
    """A FHIR date or dateTime as (local date in `tz`, aware moment or None for a date only).

    A dateTime with an offset is converted to the site's timezone before its date is taken (a sample drawn
    at 23:30 UTC is the next morning in Ho Chi Minh City). A time without an offset is site-local. Partial
    dates (`2024`, `2024-03`) give None: they have no study day.
    """
    if not isinstance(value, str) or len(value) < 10:
        return None
    if _DATE.match(value):
        try:
            return date.fromisoformat(value), None
        except ValueError:
            return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    return moment.date(), moment


def parse_day(value: Any, tz: tzinfo) -> date | None:
    parsed = parse_moment(value, tz)
    return parsed[0] if parsed else None


def effective(resource: dict[str, Any], tz: tzinfo) -> tuple[date, datetime | None] | None:
    """When an Observation was collected: effectiveDateTime, effectivePeriod.start or effectiveInstant."""
    for value in (
        resource.get("effectiveDateTime"),
        (resource.get("effectivePeriod") or {}).get("start"),
        resource.get("effectiveInstant"),
    ):
        if value:
            return parse_moment(value, tz)
    return None


def partial_date_range(value: Any) -> tuple[date, date] | None:
    """The first and last day a partial date (YYYY-MM or YYYY) can mean; None for anything else."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"(\d{4})(?:-(\d{2}))?", value.strip())
    if not match:
        return None
    year, month = int(match.group(1)), match.group(2)
    if month is None:
        return date(year, 1, 1), date(year, 12, 31)
    m = int(month)
    if not 1 <= m <= 12:
        return None
    return date(year, m, 1), date(year, m, calendar.monthrange(year, m)[1])
