"""MSH-18 character sets (HL7 table 0211) -> Python codecs, and decoding that never loses a message.

A message is decoded as its MSH-18 declares. When MSH-18 is empty (ASCII by the standard) the bytes are
read as UTF-8, which ASCII is a subset of. Bytes that are not valid in the declared (or assumed)
charset fall back to Windows-1258 (the Vietnamese Windows code page, common in older HIS), then
Latin-1, which decodes anything; the fallback is reported in the message's account.
"""

from __future__ import annotations

from dataclasses import dataclass

# Table 0211 names (normalised: upper case, single spaces) plus a few non-standard spellings seen in
# real feeds. UTF-16/32 are not listed: the byte-level framing assumes an ASCII-compatible charset.
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "latin-1",
    "ISO IR100": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UNICODE UTF8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "ISO IR14": "iso2022_jp",
    "JAS2020": "iso2022_jp",
    "JIS X 0202": "iso2022_jp",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "BIG-5": "big5",
    "WINDOWS-1258": "cp1258",
    "CP1258": "cp1258",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
}
FALLBACKS = ("utf-8", "cp1258", "latin-1")


def codec_for(declared: str) -> str | None:
    """The Python codec for an MSH-18 value, None when it is empty or unknown."""
    key = " ".join(declared.replace("_", " ").upper().split())
    return CHARSETS.get(key)


@dataclass(frozen=True)
class Decoded:
    text: str
    codec: str
    note: str | None = None  # why the bytes were not read as declared (no content, safe to log)


def decode(data: bytes, declared: str = "") -> Decoded:
    """Decode message bytes per MSH-18, falling back (and saying so) rather than failing."""
    declared = declared.strip()
    codec = codec_for(declared) if declared else None
    note = None
    if codec:
        try:
            return Decoded(data.decode(codec), codec)
        except UnicodeDecodeError:
            note = f"bytes are not valid {declared}"
    elif declared:
        note = f"unknown MSH-18 charset {declared[:40]!r}"
    for fallback in FALLBACKS:
        if fallback == codec:
            continue
        try:
            text = data.decode(fallback)
        except UnicodeDecodeError:
            continue
        if note is None and fallback == "utf-8":
            return Decoded(text, "utf-8")  # undeclared: ASCII or UTF-8, both read correctly
        reason = note or "no MSH-18 charset and the bytes are not UTF-8"
        return Decoded(text, fallback, f"{reason}: decoded as {fallback}")
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover
