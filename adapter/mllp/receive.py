"""What to do with one received HL7 message: store it, store it as a dead letter, or drop it; and the ACK.

`assess` reads only MSH and the PID-3 identifiers (cheap, no full parse). `commit_message` then applies
the decision inside a store transaction: resend de-duplication (same MSH-3, MSH-4, MSH-10 and the same
bytes -> the very ACK sent the first time, nothing stored again), the insert, the dead letter, the ACK.
The same path serves MLLP frames and HL7 files dropped in the watched folder.

Privacy: a message about someone not on the roster is acknowledged and dropped: not stored, only
counted. Without a roster everything is stored (conversion filters later).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Literal

from adapter.errors import AdapterError
from adapter.hl7.charset import codec_for
from adapter.hl7.framing import wire_form
from adapter.hl7.header import Header, MalformedMessage, parse_header
from adapter.hl7.route import patient_ids
from adapter.ids import sha256_hex
from adapter.mllp.ack import (
    ERR_DATA_TYPE,
    ERR_INTERNAL,
    ERR_REQUIRED_FIELD,
    ERR_SEGMENT_SEQUENCE,
    ERR_UNSUPPORTED_EVENT,
    ERR_UNSUPPORTED_MESSAGE_TYPE,
    ERR_UNSUPPORTED_PROCESSING_ID,
    ERR_UNSUPPORTED_VERSION,
    AckDecision,
    AckIdentity,
    build_ack,
    msh_fields,
)
from adapter.roster import Roster
from adapter.store import NewMessage, Store

Disposition = Literal["pending", "dead", "drop"]

# Messages the HL7 converter maps (design: lab results; pharmacy orders/administrations carry meds)
DEFAULT_MESSAGE_TYPES = ("ORU^R01", "ORU^R30", "ORU^R31", "ORU^R32", "RDE^O11", "RAS^O17")
DEFAULT_PROCESSING_IDS = ("P", "T", "D")


@dataclass(frozen=True)
class ReceivePolicy:
    """What the listener accepts; everything else gets AR and lands in dead letters."""

    max_bytes: int = 4 * 1024 * 1024
    message_types: frozenset[str] | None = frozenset(DEFAULT_MESSAGE_TYPES)  # None: any
    processing_ids: frozenset[str] = frozenset(DEFAULT_PROCESSING_IDS)
    identity: AckIdentity = field(default_factory=AckIdentity)
    tz: tzinfo = UTC


@dataclass
class Assessment:
    """The verdict on one message, before it touches the store."""

    decision: AckDecision
    disposition: Disposition
    header: Header | None = None
    enrolled: bool | None = None  # None: no roster, or no identifier to check

    @property
    def control_id(self) -> str | None:
        return (self.header.control_id or None) if self.header else None


class RosterGate:
    """Is a message about an enrolled subject? PID-3 identifiers against the kept roster.

    The roster file is re-read when it changes (`adapter enroll` may run while the listener does),
    checked at most once a second. Without a roster file every message passes (None).
    """

    def __init__(self, path: Path | None, load: Callable[[Path], Roster] | None) -> None:
        self.path = path
        self._load = load
        self._roster: Roster | None = None
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    @classmethod
    def fixed(cls, roster: Roster | None) -> RosterGate:
        gate = cls(None, None)
        gate._roster = roster
        return gate

    def roster(self) -> Roster | None:
        if self.path is None or self._load is None:
            return self._roster
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= 1.0:
                self._checked = now
                try:
                    st = os.stat(self.path)
                    stamp = (st.st_mtime, st.st_size)
                except OSError:
                    stamp = None
                if stamp != self._stamp:
                    try:
                        self._roster = self._load(self.path) if stamp else None
                    except AdapterError:
                        self._roster = None  # unreadable roster: store everything, conversion filters
                    self._stamp = stamp
            return self._roster

    def enrolled(self, identifiers: Iterable[str]) -> bool | None:
        roster = self.roster()
        if roster is None:
            return None
        ids = [i for i in identifiers if i]
        if not ids:
            return None
        return any(roster.by_mrn(i) is not None for i in ids)


def pid3_identifiers(raw: bytes, header: Header) -> list[str] | None:
    """The PID-3 id numbers (CX.1 of every repetition of every PID); None when there is no PID."""
    per_pid = patient_ids(wire_form(raw), header)
    if not per_pid:
        return None
    return [number for ids in per_pid for number in ids]


def _version_ok(version: str) -> bool:
    parts = version.split(".")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        return False
    return len(numbers) >= 2 and numbers[0] == 2 and 1 <= numbers[1] <= 9


def assess(raw: bytes, policy: ReceivePolicy, gate: RosterGate, oversize: int | None = None) -> Assessment:
    """Decide AA/AE/AR and pending/dead/drop for one message (`oversize`: its real size when cut)."""
    if msh_fields(raw) is None:
        return Assessment(
            AckDecision("AR", "not an HL7 message: no MSH segment", ERR_SEGMENT_SEQUENCE, "MSH^1"), "dead"
        )
    try:
        header = parse_header(raw)
    except MalformedMessage as exc:
        return Assessment(AckDecision("AR", exc.reason, ERR_DATA_TYPE, "MSH^1^2"), "dead")
    ids = pid3_identifiers(raw, header)
    enrolled = gate.enrolled(ids or [])
    verdict = _verdict(raw, header, policy, ids, oversize)
    disposition: Disposition = "pending" if verdict.code == "AA" else "dead"
    if enrolled is False:
        disposition = "drop"
    return Assessment(verdict, disposition, header, enrolled)


def _verdict(
    raw: bytes, header: Header, policy: ReceivePolicy, ids: list[str] | None, oversize: int | None
) -> AckDecision:
    if oversize is not None:
        return AckDecision(
            "AR", f"message too large: {oversize} bytes, limit {policy.max_bytes}", ERR_INTERNAL, "MSH^1"
        )
    if not header.control_id:
        return AckDecision("AR", "MSH-10 message control id is empty", ERR_REQUIRED_FIELD, "MSH^1^10")
    if not _version_ok(header.version):
        return AckDecision("AR", "MSH-12 version is not HL7 v2.x", ERR_UNSUPPORTED_VERSION, "MSH^1^12")
    if header.processing_id and header.processing_id.upper() not in policy.processing_ids:
        return AckDecision(
            "AR",
            f"MSH-11 processing id is not one of {', '.join(sorted(policy.processing_ids))}",
            ERR_UNSUPPORTED_PROCESSING_ID,
            "MSH^1^11",
        )
    if policy.message_types is not None and header.message_type not in policy.message_types:
        known_codes = {t.split("^")[0] for t in policy.message_types}
        code = ERR_UNSUPPORTED_EVENT if header.message_code in known_codes else ERR_UNSUPPORTED_MESSAGE_TYPE
        return AckDecision("AR", "MSH-9 message type not accepted here", code, "MSH^1^9")
    if header.charset:
        codec = codec_for(header.charset)
        if codec is None:
            return AckDecision("AE", "MSH-18 character set is unknown", ERR_DATA_TYPE, "MSH^1^18")
        try:
            raw.decode(codec)
        except UnicodeDecodeError:
            return AckDecision(
                "AE", "the bytes are not valid in the MSH-18 character set", ERR_DATA_TYPE, "MSH^1^18"
            )
    if ids is None:
        return AckDecision("AE", "no PID segment: the subject cannot be identified", ERR_SEGMENT_SEQUENCE)
    if not ids:
        return AckDecision("AE", "PID-3 patient identifier is empty", ERR_REQUIRED_FIELD, "PID^1^3")
    return AckDecision("AA")


@dataclass
class Received:
    """The outcome of committing one message: the ACK and what happened to it."""

    ack: bytes
    outcome: Literal["stored", "dead", "dropped", "resend"]
    inbox_id: int | None = None
    flagged: bool = False
    decision: AckDecision = field(default_factory=lambda: AckDecision("AA"))


def commit_message(
    store: Store,
    raw: bytes,
    assessment: Assessment,
    source: str,
    policy: ReceivePolicy,
    position: int = 1,
    size: int | None = None,
    truncated: bool = False,
) -> Received:
    """Apply an assessment inside the caller's store transaction (the ACK goes out after COMMIT)."""
    header = assessment.header
    fields = msh_fields(raw)
    app = fields[3].decode("latin-1") if fields and len(fields) > 3 else None
    fac = fields[4].decode("latin-1") if fields and len(fields) > 4 else None
    control_id = assessment.control_id
    if control_id is None and fields and len(fields) > 10 and fields[10].strip():
        control_id = fields[10].strip().decode("latin-1")
    digest = sha256_hex(raw)
    flag = None
    if control_id:
        earlier = store.find_by_message_id(app, fac, control_id)
        for _id, sha, ack in earlier:
            if sha == digest and ack is not None:
                store.bump("mllp.resend")
                return Received(bytes(ack), "resend", _id, decision=assessment.decision)
        flag = "control-id-reused" if earlier else None
    ack = build_ack(raw, assessment.decision, policy.identity, tz=policy.tz)
    if assessment.disposition == "drop":
        store.bump("received.not-enrolled")
        return Received(ack, "dropped", decision=assessment.decision)
    message = NewMessage(
        kind="hl7",
        source=source,
        body=raw,
        sha256=digest,
        size=size if size is not None else len(raw),
        position=position,
        truncated=truncated,
        sending_app=app,
        sending_facility=fac,
        control_id=control_id,
        message_type=header.message_type if header else None,
    )
    status = "pending" if assessment.disposition == "pending" else "dead"
    inbox_id = store.add_message(message, status=status, ack=ack, flag=flag)
    if flag:
        store.bump("received.control-id-reused")
    if status == "dead":
        store.add_dead_letter(inbox_id, "receive", assessment.decision.reason, "hl7", source, control_id)
        return Received(ack, "dead", inbox_id, flag is not None, assessment.decision)
    return Received(ack, "stored", inbox_id, flag is not None, assessment.decision)
