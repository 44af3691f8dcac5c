"""Reading the HIS and CRF CSV exports: rows with their line numbers, dates as FHIR dates.

Shared by the medication and adverse-event converters. Real exports come with a BOM, `;` or tab
separators, Windows line ends and, from Vietnamese Windows machines, cp1258 instead of UTF-8.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapter.errors import InputError


class FieldError(ValueError):
    """One field of a row is wrong: `field` names it, the message says why (never the value)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Row:
    line: int  # 1-based physical line where the row starts
    values: dict[str, str]

    def get(self, column: str) -> str:
        return (self.values.get(column) or "").strip()


def _decode(data: bytes) -> str:
    """UTF-8 (BOM or not), else cp1258; NFC, since cp1258 writes Vietnamese tones as combining marks."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1258")
    return unicodedata.normalize("NFC", text)


def read_rows(path: Path, required: Sequence[str]) -> Iterator[Row]:
    """The data rows of a CSV file with a header; InputError naming the file if unreadable or columns lack."""
    try:
        text = _decode(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path.name) from exc
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError("empty file, no header row", path.name) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"header lacks column(s): {', '.join(missing)}", f"{path.name}:1")
    start = reader.line_num + 1
    for cells in reader:
        if any(c.strip() for c in cells):
            yield Row(start, dict(zip(header, cells, strict=False)))
        start = reader.line_num + 1


_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_PARTIAL = re.compile(r"^\d{4}(-\d{2})?$")


def parse_date(value: str, field: str, tz: ZoneInfo, *, partial: bool = False) -> str:
    """A FHIR date or dateTime string from an export's date.

    Accepts ISO 8601 dates, date-times (a time without an offset gets the site's timezone; date-only stays a
    date) and the Vietnamese day-first `dd/mm/yyyy`; with `partial`, also `YYYY` and `YYYY-MM` (CRF UNK days).
    """
    raw = value.strip()
    if not raw:
        raise FieldError(field, "empty")
    if partial and _PARTIAL.match(raw):
        if len(raw) == 7 and not 1 <= int(raw[5:]) <= 12:
            raise FieldError(field, "month out of range")
        return raw
    dmy = _DMY.match(raw)
    try:
        if dmy:
            return date(int(dmy[3]), int(dmy[2]), int(dmy[1])).isoformat()
        if len(raw) == 10:
            return date.fromisoformat(raw).isoformat()
        moment = datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        raise FieldError(field, "not a date (YYYY-MM-DD, YYYY-MM-DDThh:mm or dd/mm/yyyy)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.isoformat(timespec="seconds")


def not_before(later: str, earlier: str) -> bool:
    """Whether FHIR date/dateTime `later` is on or after `earlier`, compared at their common precision."""
    length = min(len(later), len(earlier), 10)
    if later[:length] != earlier[:length]:
        return later[:length] > earlier[:length]
    if len(later) > 10 and len(earlier) > 10:
        return datetime.fromisoformat(later) >= datetime.fromisoformat(earlier)
    return True


def day_of(value: str) -> date | None:
    """The calendar date of a full FHIR date/dateTime string (None for a partial date)."""
    return date.fromisoformat(value[:10]) if len(value) >= 10 else None
