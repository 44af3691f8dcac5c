"""HL7 v2 acknowledgments (ACK) for received messages, built from the message's own MSH bytes.

The ACK is assembled from the raw bytes of the received MSH fields (sender and receiver swapped, version,
processing id and MSH-18 echoed) plus ASCII text of our own, with the sender's own delimiters. Every
charset we accept is ASCII-compatible, so the ACK is thereby encoded in the message's MSH-18 charset and
the echoed identifiers come back byte for byte, whatever their script.

Modes (HL7 v2.5 ch. 2.9):
- original (MSH-15 and MSH-16 empty): MSA-1 AA (stored), AE (stored but not understood), AR (refused:
  MSH-9/11/12 not acceptable, too large, not HL7; or we could not store it);
- enhanced (MSH-15 or MSH-16 valued): an accept acknowledgment CA/CE/CR, sent or not per MSH-15:
  AL always, NE never, ER only for CE/CR, SU only for CA; an empty MSH-15 counts as AL. Application
  acknowledgments (MSH-16) are not sent: the adapter stores and forwards, it has no return route.
ERR (v2.5+: ERR-2 location, ERR-3 code from HL7 table 0357, ERR-4 severity; earlier: ERR-1) says why,
never quoting content.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

_MSH_AT = re.compile(rb"MSH[^A-Za-z0-9\s]")
_UNSAFE = re.compile(r"[^ -~]|[|^~\\&#]")

# HL7 table 0357 (message error condition codes) used here
ERR_ACCEPTED = "0"
ERR_SEGMENT_SEQUENCE = "100"
ERR_REQUIRED_FIELD = "101"
ERR_DATA_TYPE = "102"
ERR_UNSUPPORTED_MESSAGE_TYPE = "200"
ERR_UNSUPPORTED_EVENT = "201"
ERR_UNSUPPORTED_PROCESSING_ID = "202"
ERR_UNSUPPORTED_VERSION = "203"
ERR_INTERNAL = "207"
_ERR_TEXT = {
    ERR_SEGMENT_SEQUENCE: "Segment sequence error",
    ERR_REQUIRED_FIELD: "Required field missing",
    ERR_DATA_TYPE: "Data type error",
    ERR_UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ERR_UNSUPPORTED_EVENT: "Unsupported event code",
    ERR_UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ERR_UNSUPPORTED_VERSION: "Unsupported version id",
    ERR_INTERNAL: "Application internal error",
}
_ENHANCED = {"AA": "CA", "AE": "CE", "AR": "CR"}


@dataclass(frozen=True)
class AckIdentity:
    """Who we are in ACKs when the message did not name a receiver (MSH-5/6 empty, or garbage)."""

    application: str = "ADAPTER"
    facility: str = ""


@dataclass(frozen=True)
class AckDecision:
    """What to answer: original-mode code (AA/AE/AR), a short reason, an HL7 0357 code, a location."""

    code: str
    reason: str = ""
    error_code: str = ERR_ACCEPTED
    location: str = ""  # ERL, e.g. "MSH^1^12"


def msh_fields(raw: bytes) -> list[bytes] | None:
    """MSH by field number, as raw bytes (`[b'MSH', sep, enc, MSH-3, ...]`), or None without an MSH.

    Tolerates a BOM, whitespace or framing bytes before MSH; needs only a field separator, so a
    control id can be recovered from a message whose MSH-2 is broken.
    """
    match = _MSH_AT.search(raw, 0, 512)
    if match is None or raw[: match.start()].strip(b" \t\r\n\x0b\x00\xef\xbb\xbf"):
        return None
    start = match.start()
    ends = [e for e in (raw.find(b"\r", start), raw.find(b"\n", start)) if e >= 0]
    segment = raw[start : min(ends)] if ends else raw[start:]
    sep = segment[3:4]
    parts = segment.split(sep)
    return [b"MSH", sep, *parts[1:]]


def _field(fields: list[bytes] | None, n: int) -> bytes:
    return fields[n] if fields and n < len(fields) else b""


def _first(value: bytes, enc: bytes) -> bytes:
    for delim in enc[:2]:  # component, repetition
        value = value.split(bytes([delim]), 1)[0]
    return value.strip()


def _safe(text: str) -> bytes:
    """Our own text for MSA-3/ERR: printable ASCII without delimiters (so it needs no escaping)."""
    return _UNSAFE.sub(" ", text)[:200].strip().encode("ascii")


def new_control_id(now: datetime | None = None) -> str:
    """A fresh ACK control id (<= 20 chars, the v2.5 limit): time-ordered and unique."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%y%m%d%H%M%S") + secrets.token_hex(4)


def hl7_timestamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S%z")


def _version_tuple(version: bytes) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.decode("ascii").split(".") if p)
    except (UnicodeDecodeError, ValueError):
        return (2, 5)


def ack_wanted(raw_or_fields: bytes | list[bytes] | None, code: str) -> bool:
    """Whether an accept acknowledgment goes back at all (enhanced mode MSH-15 rules)."""
    fields = msh_fields(raw_or_fields) if isinstance(raw_or_fields, bytes) else raw_or_fields
    enc = _field(fields, 2) or b"^~"
    accept = _first(_field(fields, 15), enc).upper()
    application = _first(_field(fields, 16), enc)
    if not accept and not application:
        return True  # original mode: always
    if accept == b"NE":
        return False
    if accept == b"ER":
        return code != "AA"
    if accept == b"SU":
        return code == "AA"
    return True


def build_ack(
    raw: bytes,
    decision: AckDecision,
    identity: AckIdentity = AckIdentity(),
    control_id: str | None = None,
    tz: tzinfo = UTC,
    now: datetime | None = None,
) -> bytes:
    """The ACK for `raw` (its MSH read as bytes; a generic AR when it has none), segments `\\r`-ended."""
    fields = msh_fields(raw)
    sep = _field(fields, 1) or b"|"
    enc = _field(fields, 2)
    if not (1 <= len(enc) <= 5) or sep in enc:
        enc = b"^~\\&"
    comp = enc[0:1]
    moment = (now or datetime.now(UTC)).astimezone(tz)
    version = _first(_field(fields, 12), enc) or b"2.5"
    enhanced = bool(_first(_field(fields, 15), enc) or _first(_field(fields, 16), enc))
    code = _ENHANCED[decision.code] if enhanced else decision.code
    trigger = _first(_field(fields, 9).split(comp, 1)[1] if comp in _field(fields, 9) else b"", enc)
    msg_type = b"ACK" + (comp + trigger + comp + b"ACK" if trigger else b"")
    msh = [
        b"MSH",
        sep,
        enc,
        _field(fields, 5) or identity.application.encode("ascii", "replace"),
        _field(fields, 6) or identity.facility.encode("ascii", "replace"),
        _field(fields, 3),
        _field(fields, 4),
        hl7_timestamp(moment).encode("ascii"),
        b"",
        msg_type,
        (control_id or new_control_id(moment)).encode("ascii"),
        _field(fields, 11) or b"P",
        _field(fields, 12) or b"2.5",
        b"",
        b"",
        b"",
        b"",
        b"",
        _field(fields, 18),
    ]
    while len(msh) > 13 and not msh[-1]:
        msh.pop()
    segments = [b"MSH" + sep + sep.join(msh[2:])]
    msa = [b"MSA", code.encode("ascii"), _field(fields, 10)]
    if decision.reason and _version_tuple(version) < (2, 7):
        msa.append(_safe(decision.reason))  # MSA-3 text message (withdrawn in v2.7)
    segments.append(sep.join(msa))
    if decision.code != "AA" and decision.error_code != ERR_ACCEPTED:
        segments.append(_err(decision, sep, enc, version))
    return b"\r".join(segments) + b"\r"


def _err(decision: AckDecision, sep: bytes, enc: bytes, version: bytes) -> bytes:
    comp = enc[0:1]
    sub = enc[3:4] or b"&"
    text = _ERR_TEXT.get(decision.error_code, "Error")
    code = decision.error_code.encode("ascii")
    location = [part.encode("ascii") for part in decision.location.split("^")] if decision.location else []
    severity = b"W" if decision.code == "AA" else b"E"
    if _version_tuple(version) >= (2, 5):
        cwe = comp.join([code, _safe(text), b"HL70357"])
        fields = [b"ERR", b"", comp.join(location), cwe, severity]
        if decision.reason:
            fields += [b"", b"", b"", _safe(decision.reason)]  # ERR-8 user message
        return sep.join(fields)
    eld = comp.join([*([*location, b"", b"", b""][:3]), sub.join([code, _safe(text), b"HL70357"])])
    return sep.join([b"ERR", eld])
