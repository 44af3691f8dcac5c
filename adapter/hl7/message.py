"""A schema-free HL7 v2 message: segments, fields, repetitions, components, subcomponents.

Version-agnostic on purpose (2.3 to 2.8 and beyond read the same way); what a field means is the mapper's
business. Field numbers follow the standard, MSH included: `msh.raw(1)` is the field separator,
`msh.raw(2)` the encoding characters, `msh.raw(9)` the message type. Values are unescaped on access and
the HL7 null `""` reads as empty (`is_null` tells the difference).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from adapter.hl7.charset import decode
from adapter.hl7.encoding import Encoding, unescape
from adapter.hl7.framing import split_messages
from adapter.hl7.header import Header, MalformedMessage, parse_header

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
HL7_NULL = '""'


class Segment:
    """One segment. `fields[0]` is its name; `fields[n]` is field n as sent (escaped)."""

    __slots__ = ("encoding", "fields", "position")

    def __init__(self, fields: list[str], position: int, encoding: Encoding) -> None:
        self.fields = fields
        self.position = position  # 1-based position in the message
        self.encoding = encoding

    @property
    def name(self) -> str:
        return self.fields[0]

    @property
    def safe_name(self) -> str:
        """The name if it looks like a segment id, else a placeholder: safe to log and account."""
        name = self.fields[0]
        return name if _SEGMENT_NAME.fullmatch(name) else "(malformed)"

    def raw(self, number: int) -> str:
        """Field `number` as sent, escapes and delimiters included ('' when absent)."""
        return self.fields[number] if number < len(self.fields) else ""

    def repetitions(self, number: int) -> list[str]:
        """The repetitions of a field, as sent (an empty field has none)."""
        value = self.raw(number)
        if not value:
            return []
        if self.fields[0] == "MSH" and number <= 2:
            return [value]
        return value.split(self.encoding.repetition)

    def components(self, number: int, repetition: int = 1) -> list[str]:
        """The components of one repetition, unescaped ([] when absent)."""
        reps = self.repetitions(number)
        if repetition > len(reps):
            return []
        enc = self.encoding
        return [_leaf(c, enc) for c in reps[repetition - 1].split(enc.component)]

    def value(self, number: int, component: int = 1, repetition: int = 1, subcomponent: int = 1) -> str:
        """One leaf value, unescaped; '' when absent or HL7 null."""
        reps = self.repetitions(number)
        if repetition > len(reps):
            return ""
        if self.fields[0] == "MSH" and number <= 2:
            return reps[0] if component == 1 else ""
        enc = self.encoding
        comps = reps[repetition - 1].split(enc.component)
        if component > len(comps):
            return ""
        subs = comps[component - 1].split(enc.subcomponent)
        if subcomponent > len(subs):
            return ""
        text = subs[subcomponent - 1]
        return "" if text == HL7_NULL else unescape(text, enc)

    def text(self, number: int, repetition: int = 1) -> str:
        """A whole repetition as readable text: components unescaped and joined by the component mark."""
        reps = self.repetitions(number)
        if repetition > len(reps):
            return ""
        enc = self.encoding
        if reps[repetition - 1] == HL7_NULL:
            return ""
        return enc.component.join(unescape(c, enc) for c in reps[repetition - 1].split(enc.component))

    def is_null(self, number: int) -> bool:
        """The field holds the HL7 null `""` (meaning: delete the receiver's value)."""
        return self.raw(number) == HL7_NULL

    def __repr__(self) -> str:  # never shows content (PHI)
        return f"Segment({self.safe_name}, position={self.position}, fields={len(self.fields) - 1})"


def _leaf(component: str, enc: Encoding) -> str:
    if component == HL7_NULL:
        return ""
    if enc.subcomponent in component:
        return enc.subcomponent.join(unescape(s, enc) for s in component.split(enc.subcomponent))
    return unescape(component, enc)


@dataclass
class Message:
    """A parsed message: its header, its segments in order, and how its bytes were read.

    `raw` is the wire form (see framing.py); `sha256` of it identifies the message in Provenance.
    `notes` say how reading deviated from the declaration (e.g. a charset fallback), without content.
    """

    header: Header
    segments: list[Segment]
    raw: bytes
    codec: str
    notes: list[str] = field(default_factory=list)

    @property
    def encoding(self) -> Encoding:
        return self.segments[0].encoding

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.fields[0] == name), None)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.fields[0] == name]

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)


def parse_message(raw: bytes) -> Message:
    """Parse one message (wire form, or anything `split_messages` accepts that holds one message)."""
    if not (raw.startswith(b"MSH") and raw.endswith(b"\r")) or b"\n" in raw:
        parts = split_messages(raw)
        if len(parts) != 1:
            raise MalformedMessage(f"expected one message, found {len(parts)}")
        raw = parts[0]
    header = parse_header(raw)
    decoded = decode(raw, header.charset)
    enc = header.encoding
    if decoded.codec != enc.codec:
        enc = Encoding(
            enc.field,
            enc.component,
            enc.repetition,
            enc.escape,
            enc.subcomponent,
            enc.truncation,
            decoded.codec,
        )
    sep = enc.field
    segments: list[Segment] = []
    for position, line in enumerate(decoded.text.split("\r"), 1):
        if not line:
            continue
        fields = line.split(sep)
        if position == 1:
            fields.insert(1, sep)  # MSH-1 is the separator itself
        segments.append(Segment(fields, position, enc))
    notes = [decoded.note] if decoded.note else []
    if header.supported_version != header.version:
        notes.append(f"MSH-12 version {header.version[:20]!r} read as {header.supported_version}")
    return Message(header, segments, raw, decoded.codec, notes)
