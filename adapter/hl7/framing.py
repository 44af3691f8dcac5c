"""The front door: bytes as found in files or MLLP frames -> one wire-form message each.

Wire form (what every other function here expects, and what Provenance hashes): segments terminated by
a single `\\r`, no MLLP framing bytes, no byte-order mark, no NULs, no blank lines, no batch envelope.
Tolerated on the way in: `\\r`, `\\n` or `\\r\\n` segment ends (mixed too), a UTF-8 BOM, MLLP start/end
bytes (0x0B, 0x1C) left in files, several messages per file, FHS/BHS/BTS/FTS batch envelopes, and
indented segments. A lone `\\n` that is not followed by a segment name is a line break inside a field
(some senders put raw newlines in comments): it stays in the field rather than starting a bogus segment.
Text before the first MSH is returned as a chunk of its own, so the caller can reject it with a reason
instead of losing it silently.
"""

from __future__ import annotations

import re

BOM = b"\xef\xbb\xbf"
MLLP_START = b"\x0b"
MLLP_END = b"\x1c"
ENVELOPE = frozenset((b"FHS", b"BHS", b"BTS", b"FTS"))
_SEPARATORS = re.compile(rb"(?:^|[\r\n\x0b])MSH([^A-Za-z0-9\s])")
_WS = b" \t\x0c"


def _lone_newline_pattern(data: bytes) -> re.Pattern[bytes]:
    seps = set(_SEPARATORS.findall(data[:4096])) or {b"|"}
    seps.add(b"|")
    cls = b"".join(re.escape(s) for s in sorted(seps))
    # a segment name and its field separator, or a blank line, or the end of the data
    return re.compile(rb"\n(?=[ \t]*[A-Z][A-Z0-9]{2}[" + cls + rb"]|[\r\n]|\Z)")


_SPECIAL = b"\x00\x0b\x1c\n"
_UNCLEAN = re.compile(rb"\r[\r \t]|\r(?:FHS|BHS|BTS|FTS)")


def normalise(data: bytes) -> bytes:
    """Strip BOMs, NULs and MLLP bytes; turn every segment end into `\\r` (see the module docstring)."""
    if len(data.translate(None, _SPECIAL)) == len(data) and BOM not in data:
        return data  # one pass over the bytes for the common case: nothing to clean
    if BOM in data:
        data = data.replace(BOM, b"")
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    if MLLP_START in data:
        data = data.replace(MLLP_START, b"\r")
    if MLLP_END in data:
        data = data.replace(MLLP_END, b"\r")
    if b"\n" in data:
        if b"\r\n" in data:
            data = data.replace(b"\r\n", b"\r")
        if b"\n" in data:
            data = _lone_newline_pattern(data).sub(b"\r", data)
    return data


def _is_envelope(segment: bytes) -> bool:
    return segment[:3] in ENVELOPE and (len(segment) == 3 or not segment[3:4].isalnum())


def _clean(data: bytes) -> bool:
    """Normalised data that is already a plain run of wire-form messages (the common case)."""
    return data.startswith(b"MSH") and data.endswith(b"\r") and _UNCLEAN.search(data) is None


def split_messages(data: bytes) -> list[bytes]:
    """Every message in `data` (a file, a batch, or one MLLP frame), each in wire form, in order."""
    data = normalise(data)
    if _clean(data):
        out = []
        start = 0
        find = data.find
        cut = find(b"\rMSH")
        while cut >= 0:
            out.append(data[start : cut + 1])
            start = cut + 1
            cut = find(b"\rMSH", start)
        out.append(data[start:])
        return out
    return _split_segments(data)


def _split_segments(data: bytes) -> list[bytes]:
    messages: list[bytes] = []
    current: list[bytes] | None = None
    for segment in data.split(b"\r"):
        if not segment:
            continue
        if segment[0] in _WS:
            segment = segment.lstrip()
            if not segment:
                continue
        if segment.startswith(b"MSH"):
            if current:
                messages.append(b"\r".join(current) + b"\r")
            current = [segment]
        elif _is_envelope(segment):
            if current:
                messages.append(b"\r".join(current) + b"\r")
            current = None
        elif current is None:
            current = [segment]  # text outside any message: kept so that it can be rejected
        else:
            current.append(segment)
    if current:
        messages.append(b"\r".join(current) + b"\r")
    return messages


def wire_form(raw: bytes) -> bytes:
    """One message (e.g. an MLLP payload) in wire form; cheap when it already is."""
    if raw.startswith(b"MSH") and raw.endswith(b"\r") and not _needs_cleaning(raw):
        return raw
    parts = split_messages(raw)
    return b"".join(parts)


def _needs_cleaning(raw: bytes) -> bool:
    return (
        b"\n" in raw
        or b"\r\r" in raw
        or MLLP_START in raw
        or MLLP_END in raw
        or b"\x00" in raw
        or BOM in raw
        or b"\r " in raw
        or b"\r\t" in raw
        or b"\rFHS" in raw
        or b"\rBHS" in raw
        or b"\rBTS" in raw
        or b"\rFTS" in raw
    )
