"""Writing HL7 v2 text the way hospital systems do: segments, escapes, timestamps, files and batches.

A `Message` keeps its segments unjoined, so the same message can be written with `\\r`, `\\n` or `\\r\\n`
segment ends, alone, concatenated, or inside an FHS/BHS batch, and copied into the hospital feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

_ESCAPES = str.maketrans({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"})


def escape(text: str) -> str:
    """HL7 escape sequences for the delimiters (\\E\\ first, so nothing is escaped twice)."""
    return text.translate(_ESCAPES)


class Clock:
    """HL7 timestamps in the site's timezone, with or without the UTC offset."""

    def __init__(self, tz: tzinfo) -> None:
        self._tz = tz
        self._offsets: dict[int, str] = {}

    def offset(self, when: datetime) -> str:
        key = when.toordinal()
        if key not in self._offsets:
            delta = when.replace(tzinfo=self._tz).utcoffset() or timedelta(0)
            minutes = int(delta.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            self._offsets[key] = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        return self._offsets[key]

    def ts(self, when: datetime, with_offset: bool = True, seconds: bool = True) -> str:
        iso = when.isoformat()  # YYYY-MM-DDTHH:MM:SS (no microseconds here); slicing beats strftime 3x
        text = iso[0:4] + iso[5:7] + iso[8:10] + iso[11:13] + iso[14:16] + (iso[17:19] if seconds else "")
        return text + self.offset(when) if with_offset else text


@dataclass
class Message:
    """One HL7 message before it is written: its segments, identity and when it was sent."""

    control_id: str
    sent_at: datetime
    segments: list[str]
    message_type: str
    subject_id: str | None = None  # None for strangers (the feed)
    tags: list[str] = field(default_factory=list)  # quirks it carries, for manifest counts
    fault: dict[str, object] | None = None  # a deliberate fault, for manifest.json
    truncated: bool = False  # a deliberate fault: the last segment is cut and has no segment end

    def text(self, eol: str = "\r") -> str:
        body = eol.join(self.segments)
        return body if self.truncated else body + eol


def msh(
    clock: Clock,
    sending_app: str,
    facility: str,
    sent_at: datetime,
    message_type: str,
    control_id: str,
    version: str = "2.5.1",
    utf8: bool = True,
    with_offset: bool = True,
) -> str:
    charset = "UNICODE UTF-8" if utf8 else ""
    return (
        f"MSH|^~\\&|{sending_app}|{facility}|ADAPTER|VANHANH_TRIAL|{clock.ts(sent_at, with_offset)}||"
        f"{message_type}|{control_id}|P|{version}|||AL|NE|VNM|{charset}"
    )


def batch_text(messages: list[Message], clock: Clock, app: str, facility: str, name: str, eol: str) -> str:
    """FHS/BHS ... BTS/FTS around the messages, with counts a receiver can check."""
    first = messages[0].sent_at
    header = f"|^~\\&|{app}|{facility}|ADAPTER|VANHANH_TRIAL|{clock.ts(first)}||{name}"
    parts = [f"FHS{header}{eol}", f"BHS{header}{eol}"]
    parts.extend(m.text(eol) for m in messages)
    parts.append(f"BTS|{len(messages)}{eol}FTS|1{eol}")
    return "".join(parts)


def write_text(path: Path, text: str, mkdir: bool = True) -> None:
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
