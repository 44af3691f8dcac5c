"""Cheap routing: whose message is it, before any full parse (a stranger's message costs microseconds).

Only the MSH and PID segments are read. The roster's `mrn` is the hospital patient id, looked for in
every repetition of PID-3 (CX.1); PID-2 (the deprecated external id) is not used, so a number from
another identifier space can never pull a stranger's data in.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from adapter.hl7.encoding import Encoding, unescape
from adapter.hl7.header import Header, MalformedMessage
from adapter.roster import Roster, Subject

_DELIMS: dict[Encoding, tuple[bytes, bytes, bytes, bytes, bytes | None]] = {}


def _delims(enc: Encoding) -> tuple[bytes, bytes, bytes, bytes, bytes | None]:
    found = _DELIMS.get(enc)
    if found is None:
        found = _DELIMS[enc] = (
            enc.field.encode("latin-1"),
            enc.repetition.encode("latin-1"),
            enc.component.encode("latin-1"),
            enc.subcomponent.encode("latin-1"),
            enc.escape.encode("latin-1") if enc.escape else None,
        )
    return found


def patient_ids(raw: bytes, header: Header) -> list[list[str]]:
    """PID-3 identifiers (CX.1 of every repetition) of each PID segment of a wire-form message."""
    enc = header.encoding
    sep, rep, comp, sub, esc = _delims(enc)
    marker = b"\rPID" + sep
    out: list[list[str]] = []
    start = raw.find(marker)
    while start >= 0:
        end = raw.find(b"\r", start + 1)
        fields = raw[start + 5 : end if end >= 0 else len(raw)].split(sep, 3)
        ids: list[str] = []
        if len(fields) > 2 and fields[2]:
            for value in fields[2].split(rep):
                if comp in value:
                    value = value[: value.find(comp)]
                if sub in value:
                    value = value[: value.find(sub)]
                if not value or value == b'""':
                    continue
                try:
                    text = value.decode(enc.codec)
                except (UnicodeDecodeError, LookupError):
                    text = value.decode("latin-1")
                if esc is not None and esc in value:
                    text = unescape(text, enc)
                text = text.strip()
                if text:
                    ids.append(text)
        out.append(ids)
        start = raw.find(marker, start + 1)
    return out


def match_subject(ids: list[str], roster: Roster) -> Subject | None:
    """The enrolled subject these PID-3 identifiers name; MalformedMessage if they name two."""
    found: Subject | None = None
    for value in ids:
        subject = roster.by_mrn(value)
        if subject is None:
            continue
        if found is not None and subject.subject_id != found.subject_id:
            raise MalformedMessage("PID-3 identifiers match two different enrolled subjects")
        found = subject
    return found


def enrolled_subjects(raw: bytes, header: Header, roster: Roster) -> list[Subject | None]:
    """For each PID segment, the enrolled subject it names (None for a stranger)."""
    return [match_subject(ids, roster) for ids in patient_ids(raw, header)]


class Peek(NamedTuple):
    """What routing needs from a message in the standard encoding, read without a parse."""

    message_code: str
    trigger_event: str
    control_id: str
    patient_ids: list[list[str]]

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger_event}" if self.trigger_event else self.message_code


# MSH with the standard delimiters; MSH-9 as CODE[^EVENT[^STRUCTURE]]; MSH-10 without escapes.
_STANDARD_MSH = re.compile(
    rb"MSH\|\^~\\&#?\|(?:[^|\r\n]*\|){6}([A-Za-z0-9]{3})(?:\^([A-Za-z0-9]{3})(?:\^[A-Za-z0-9_]*)?)?"
    rb"\|([^|\r\n\\]*)[|\r]"
)


def peek(raw: bytes) -> Peek | None:
    """MSH-9, MSH-10 and the PID-3 identifiers of a wire-form message, in about a microsecond each.

    Only for the common case (standard delimiters `|^~\\&`, ASCII identifiers, no escapes); None
    otherwise, and the caller takes the general path (`parse_header` + `patient_ids`), which gives
    the same answers (tests compare the two).
    """
    m = _STANDARD_MSH.match(raw)
    if m is None:
        return None
    control = m.group(3).partition(b"~")[0].partition(b"^")[0]
    if not control.isascii():
        return None
    groups: list[list[str]] = []
    start = raw.find(b"\rPID|")
    while start >= 0:
        end = raw.find(b"\r", start + 1)
        fields = raw[start + 5 : end if end >= 0 else len(raw)].split(b"|", 3)
        ids: list[str] = []
        if len(fields) > 2 and fields[2]:
            field = fields[2]
            if b"\\" in field or not field.isascii():
                return None
            for rep in field.split(b"~"):
                value = rep.partition(b"^")[0].partition(b"&")[0]
                if value and value != b'""':
                    text = value.decode("ascii").strip()
                    if text:
                        ids.append(text)
        groups.append(ids)
        start = raw.find(b"\rPID|", start + 1)
    code, event = m.group(1).upper().decode("ascii"), (m.group(2) or b"").upper().decode("ascii")
    return Peek(code, event, control.decode("ascii").strip(), groups)
