"""HL7 v2 delimiters and escape sequences (v2.5 ch. 2.7), decoded the way real feeds need.

Escapes are decoded after a field is split on its delimiters, never before. `\\X..\\` carries raw bytes in
the message's own charset (MSH-18): adjacent hex escapes are joined before decoding, so a multi-byte
UTF-8 character split over `\\XC3\\\\XA1\\` survives (Microsoft's converter decodes each byte alone).
An unknown or unterminated escape is kept as literal text: a sender that forgot to escape a `\\` loses
nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX = re.compile(r"[0-9A-Fa-f]+")
_FORMATTING = {".in", ".ti", ".sk", ".ce", ".fi", ".nf", "H", "N"}  # layout/highlight: no text meaning


@dataclass(frozen=True)
class Encoding:
    """The delimiters of one message (MSH-1, MSH-2) and the Python codec its bytes were decoded with."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str | None = "\\"
    subcomponent: str = "&"
    truncation: str | None = None  # v2.7+: fifth encoding character, usually "#"
    codec: str = "utf-8"

    @classmethod
    def from_msh(cls, field: str, chars: str, codec: str = "utf-8") -> Encoding:
        """Delimiters from MSH-1 and MSH-2 by position; missing ones take the standard defaults."""
        return cls(
            field=field,
            component=chars[0] if len(chars) > 0 else "^",
            repetition=chars[1] if len(chars) > 1 else "~",
            escape=chars[2] if len(chars) > 2 else None,
            subcomponent=chars[3] if len(chars) > 3 else "&",
            truncation=chars[4] if len(chars) > 4 else None,
            codec=codec,
        )


def _decode_hex(data: bytearray, codec: str) -> str:
    try:
        text = bytes(data).decode(codec)
    except (UnicodeDecodeError, LookupError):
        text = bytes(data).decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _simple(seq: str, enc: Encoding) -> str | None:
    """The text one escape sequence stands for, or None when it is not a sequence we know."""
    if seq == "F":
        return enc.field
    if seq == "S":
        return enc.component
    if seq == "T":
        return enc.subcomponent
    if seq == "R":
        return enc.repetition
    if seq == "E":
        return enc.escape or ""
    if seq == "P" and enc.truncation:
        return enc.truncation
    if seq == ".br":
        return "\n"
    if seq.startswith(".sp"):
        count = seq[3:].strip().lstrip("+")
        return "\n" * (int(count) if count.isdigit() and int(count) < 100 else 1)
    if seq in _FORMATTING or seq.startswith((".in", ".ti")):
        return ""
    if seq[:1] in ("C", "M", "Z") and 2 <= len(seq) <= 16 and seq[1:].isalnum():
        return ""  # charset switch (ISO 2022) or locally defined: no text of its own
    return None


def unescape(text: str, enc: Encoding) -> str:
    """Decode the escape sequences of one leaf value (a component or subcomponent)."""
    esc = enc.escape
    if not esc or esc not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    i = 0
    n = len(text)
    while i < n:
        j = text.find(esc, i)
        if j < 0:
            break
        end = text.find(esc, j + 1)
        if end < 0:
            break
        if j > i:
            if pending:
                out.append(_decode_hex(pending, enc.codec))
                pending.clear()
            out.append(text[i:j])
        seq = text[j + 1 : end]
        if seq[:1] in ("X", "x") and len(seq) >= 3 and len(seq) % 2 == 1 and _HEX.fullmatch(seq, 1):
            pending.extend(bytes.fromhex(seq[1:]))
            i = end + 1
            continue
        if pending:
            out.append(_decode_hex(pending, enc.codec))
            pending.clear()
        plain = _simple(seq, enc) if len(seq) <= 16 else None
        if plain is None:
            out.append(esc)  # not an escape: keep the character, rescan from the next one
            i = j + 1
            continue
        out.append(plain)
        i = end + 1
    if pending:
        out.append(_decode_hex(pending, enc.codec))
    out.append(text[i:])
    return "".join(out)


def escape(text: str, enc: Encoding) -> str:
    """Escape text for one leaf value (the inverse of `unescape` for the delimiters and line breaks)."""
    esc = enc.escape
    if not esc:
        return text
    out = text.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (enc.field, "F"),
        (enc.component, "S"),
        (enc.subcomponent, "T"),
        (enc.repetition, "R"),
    ):
        out = out.replace(char, f"{esc}{code}{esc}")
    if enc.truncation:
        out = out.replace(enc.truncation, f"{esc}P{esc}")
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{esc}.br{esc}")
