"""The MSH segment, read cheaply: enough to route a message, de-duplicate it and build its ACK.

`parse_header` touches only the first segment (a few microseconds), so a router can decide what to do
with a message before paying for a full parse.
"""

from __future__ import annotations

from adapter.errors import InputError
from adapter.hl7.charset import codec_for
from adapter.hl7.encoding import Encoding, unescape

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")
DEFAULT_VERSION = "2.5"


class MalformedMessage(InputError):
    """The message cannot be read at all (no MSH, bad delimiters); the reason never quotes content."""


def supported_version(version: str) -> str:
    """MSH-12 mapped onto the versions we know (2.3 to 2.8): exact, else the nearest one.

    "2.3.0" -> 2.3, "2.2" -> 2.3, "2.9" -> 2.8.2, empty or unreadable -> 2.5 (hl7apy's default).
    """
    version = version.strip()
    if version in SUPPORTED_VERSIONS:
        return version
    parts = version.split(".")
    try:
        numbers = tuple(int(p) for p in parts if p != "")
    except ValueError:
        return DEFAULT_VERSION
    if not numbers or numbers[0] != 2:
        return DEFAULT_VERSION if not numbers or numbers[0] < 2 else SUPPORTED_VERSIONS[-1]
    trimmed = numbers
    while len(trimmed) > 2 and trimmed[-1] == 0:
        trimmed = trimmed[:-1]
    candidate = ".".join(str(n) for n in trimmed)
    if candidate in SUPPORTED_VERSIONS:
        return candidate
    keyed = sorted(SUPPORTED_VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))
    target = trimmed + (0,) * (3 - len(trimmed)) if len(trimmed) < 3 else trimmed
    best = keyed[0]
    for known in keyed:
        parts_k = tuple(int(p) for p in known.split("."))
        parts_k = parts_k + (0,) * (3 - len(parts_k))
        if parts_k <= target:
            best = known
    return best


def _first_component(value: str, enc: Encoding) -> str:
    if enc.repetition in value:
        value = value.split(enc.repetition, 1)[0]
    if enc.component in value:
        value = value.split(enc.component, 1)[0]
    if enc.escape and enc.escape in value:
        value = unescape(value, enc)
    return value.strip()


def _hd(value: str, enc: Encoding) -> str:
    """A hierarchic designator (HD) as one key: its namespace id, else its universal id."""
    first = value.split(enc.repetition, 1)[0]
    parts = first.split(enc.component)
    for part in parts[:2]:
        text = unescape(part.split(enc.subcomponent, 1)[0], enc).strip()
        if text:
            return text
    return ""


def _message_type(value: str, enc: Encoding) -> tuple[str, str, str]:
    """MSH-9 as (code, trigger event, structure), upper case."""
    if enc.repetition in value:
        value = value.split(enc.repetition, 1)[0]
    if enc.escape and enc.escape in value:
        parts = [unescape(p, enc) for p in value.split(enc.component)]
    else:
        parts = value.split(enc.component)
    parts += ["", "", ""]
    return (parts[0].strip().upper(), parts[1].strip().upper(), parts[2].strip().upper())


class Header:
    """MSH, by HL7 field number. `fields[n]` is MSH-n exactly as sent (escaped), for echoing in ACKs.

    MSH-9 and MSH-10 are read at once (every router needs them); the other named properties are
    computed when asked for, so routing costs only what it reads.
    """

    __slots__ = ("_fields", "_parts", "_type", "charset", "control_id", "encoding")

    def __init__(self, encoding: Encoding, parts: list[bytes], charset: str) -> None:
        self.encoding = encoding
        self._parts = parts  # MSH split on the field separator, as bytes: parts[n - 1] is MSH-n (n >= 2)
        self._fields: tuple[str, ...] | None = None
        self.charset = charset  # MSH-18 first repetition as sent (empty = ASCII)
        self._type = _message_type(self._text(8), encoding)
        self.control_id = _first_component(self._text(9), encoding)  # MSH-10

    def _text(self, index: int) -> str:
        if index >= len(self._parts):
            return ""
        data = self._parts[index]
        try:
            return data.decode(self.encoding.codec)
        except (UnicodeDecodeError, LookupError):
            return data.decode("latin-1")

    @property
    def fields(self) -> tuple[str, ...]:
        """MSH-n as sent, by HL7 number: fields[1] is the field separator, fields[2] MSH-2, ..."""
        if self._fields is None:
            self._fields = ("MSH", self.encoding.field, *(self._text(i) for i in range(1, len(self._parts))))
        return self._fields

    def __repr__(self) -> str:
        return f"Header({self.message_type}, control_id={self.control_id!r}, version={self.version!r})"

    def field(self, number: int) -> str:
        """MSH-n exactly as sent ('' when absent)."""
        return self.fields[number] if number < len(self.fields) else ""

    def _first(self, number: int) -> str:
        return _first_component(self.field(number), self.encoding)

    @property
    def sending_application(self) -> str:
        """MSH-3 (HD namespace id, else universal id)."""
        return _hd(self.field(3), self.encoding)

    @property
    def sending_facility(self) -> str:
        """MSH-4 (HD namespace id, else universal id): part of every result's identity."""
        return _hd(self.field(4), self.encoding)

    @property
    def receiving_application(self) -> str:
        return _hd(self.field(5), self.encoding)

    @property
    def receiving_facility(self) -> str:
        return _hd(self.field(6), self.encoding)

    @property
    def timestamp(self) -> str:
        """MSH-7.1, raw HL7 DTM."""
        return self._first(7)

    @property
    def message_code(self) -> str:
        """MSH-9.1, e.g. ORU."""
        return self._type[0]

    @property
    def trigger_event(self) -> str:
        """MSH-9.2, e.g. R01."""
        return self._type[1]

    @property
    def message_structure(self) -> str:
        """MSH-9.3 (often empty before v2.4)."""
        return self._type[2]

    @property
    def message_type(self) -> str:
        """MSH-9 as `CODE^EVENT` (the structure left out, so `ORU^R01` and `ORU^R01^ORU_R01` match)."""
        code, event, _ = self._type
        return f"{code}^{event}" if event else code

    @property
    def processing_id(self) -> str:
        """MSH-11.1: P, T or D."""
        return self._first(11)

    @property
    def version(self) -> str:
        """MSH-12.1 as sent."""
        return self._first(12)

    @property
    def supported_version(self) -> str:
        return supported_version(self.version)

    @property
    def accept_ack_type(self) -> str:
        """MSH-15: AL, NE, ER, SU, or empty (original acknowledgment mode)."""
        return self._first(15)

    @property
    def application_ack_type(self) -> str:
        """MSH-16."""
        return self._first(16)

    @property
    def enhanced_ack_mode(self) -> bool:
        """MSH-15 or MSH-16 valued: enhanced acknowledgment mode (CA/CE/CR, then application ACK)."""
        return bool(self.accept_ack_type or self.application_ack_type)


def _msh_bytes(raw: bytes) -> bytes:
    if raw.startswith(b"MSH"):
        end = raw.find(b"\r")
        if end >= 0 and raw.find(b"\n", 0, end) < 0:
            return raw[:end]
        start = 0
    else:
        start = raw.find(b"MSH")
        if start < 0 or raw[:start].strip(b" \t\r\n\x0b\x00\xef\xbb\xbf"):
            raise MalformedMessage("not an HL7 message: it does not start with an MSH segment")
    ends = [e for e in (raw.find(b"\r", start), raw.find(b"\n", start)) if e >= 0]
    return raw[start : min(ends)] if ends else raw[start:]


_ENCODINGS: dict[bytes, Encoding] = {}


_CODECS: dict[bytes, str] = {}


def _encoding(sep: bytes, chars: bytes) -> Encoding:
    """The Encoding for MSH-1/MSH-2 (cached: a feed uses one or two), or MalformedMessage."""
    key = sep + chars
    enc = _ENCODINGS.get(key)  # type: ignore[call-overload]
    if enc is not None:
        return enc
    if sep.isalnum() or sep.isspace() or not sep.isascii() or sep in b"\r\n":
        raise MalformedMessage("MSH-1 field separator is missing or a letter, digit or space")
    if (
        not 1 <= len(chars) <= 5
        or not chars.isascii()
        or len(set(chars)) != len(chars)
        or sep in chars
        or any(c in b" \t\r\n" for c in chars)
        or chars.isalnum()
    ):
        raise MalformedMessage("MSH-2 encoding characters are missing, repeated or invalid")
    enc = Encoding.from_msh(sep.decode("ascii"), chars.decode("ascii"))
    if len(_ENCODINGS) < 64:
        _ENCODINGS[key] = enc  # type: ignore[index]
    return enc


def _codec(declared: bytes) -> str:
    codec = _CODECS.get(declared)
    if codec is None:
        codec = codec_for(declared.decode("latin-1")) or "utf-8"
        if len(_CODECS) < 64:
            _CODECS[declared] = codec
    return codec


def parse_header(raw: bytes) -> Header:
    """Read MSH from a message (wire form or not); MalformedMessage when there is no usable MSH."""
    msh = _msh_bytes(raw)
    if len(msh) < 5:
        raise MalformedMessage("MSH segment too short")
    sep = msh[3:4]
    parts = msh.split(sep)
    if len(parts) < 2:
        raise MalformedMessage("MSH segment too short")
    enc = _encoding(sep, parts[1])
    declared = b""
    if len(parts) > 17 and parts[17]:
        declared = parts[17].split(enc.repetition.encode("ascii"), 1)[0].strip()
    codec = _codec(declared) if declared else "utf-8"
    if codec != enc.codec:
        enc = _with_codec(enc, codec)
    return Header(enc, parts, declared.decode("latin-1"))


_WITH_CODEC: dict[tuple[Encoding, str], Encoding] = {}


def _with_codec(enc: Encoding, codec: str) -> Encoding:
    found = _WITH_CODEC.get((enc, codec))
    if found is None:
        found = Encoding(
            enc.field, enc.component, enc.repetition, enc.escape, enc.subcomponent, enc.truncation, codec
        )
        if len(_WITH_CODEC) < 256:
            _WITH_CODEC[(enc, codec)] = found
    return found
