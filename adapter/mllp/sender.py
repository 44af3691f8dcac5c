"""An MLLP sender: what an interface engine does, for the demo and for checking a listener by hand.

Sends each message on one persistent connection and waits for its ACK before the next, as Mirth and the
like do in their default mode; reports MSA-1 per message. Only control ids are reported, never content.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from adapter.hl7 import split_messages
from adapter.mllp.framing import Frame, FrameReader, frame


@dataclass
class SendReport:
    """MSA-1 codes received, and the control ids of messages that were not accepted (AE/AR/none)."""

    codes: dict[str, int] = field(default_factory=dict)
    not_accepted: list[tuple[str, str]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.codes.values())


def _msa(ack: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK, or ('??', '') when it has no MSA segment."""
    sep = ack[3:4] or b"|"
    for segment in ack.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            fields = segment.split(sep)
            code = fields[1].decode("ascii", "replace") if len(fields) > 1 else "??"
            control = fields[2].decode("ascii", "replace") if len(fields) > 2 else ""
            return code, control
    return "??", ""


def messages_in(paths: Iterable[Path]) -> list[bytes]:
    """Every HL7 message in the files, in file order (batches and odd line ends are unwrapped)."""
    out: list[bytes] = []
    for path in paths:
        out.extend(m for m in split_messages(path.read_bytes()) if m.startswith(b"MSH"))
    return out


def send_messages(
    messages: Iterable[bytes],
    host: str,
    port: int,
    timeout: float = 30.0,
    on_ack: Callable[[str], None] | None = None,
) -> SendReport:
    """Send messages one by one over one connection, each awaited by its ACK."""
    report = SendReport()
    reader = FrameReader(16 * 1024 * 1024)
    pending: list[bytes] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        for message in messages:
            sock.sendall(frame(message))
            while not pending:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError(f"the listener at {host}:{port} closed the connection")
                pending.extend(e.payload for e in reader.feed(data) if isinstance(e, Frame))
            code, control = _msa(pending.pop(0))
            report.codes[code] = report.codes.get(code, 0) + 1
            if code not in ("AA", "CA"):
                report.not_accepted.append((control, code))
            if on_ack:
                on_ack(code)
    return report
