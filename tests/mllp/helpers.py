"""HL7 test messages and a small blocking MLLP client (real sockets)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from adapter.mllp.framing import Frame, FrameReader, frame

RESULTS = (("GLU-F", "Glucose fasting", "7.2", "mmol/L"), ("HBA1C", "HbA1c", "8.5", "%"))


def oru(
    control_id: str,
    mrn: str = "MRN1001",
    *,
    app: str = "LIS",
    facility: str = "VANHANH",
    receiver: str = "ADAPTER",
    receiver_facility: str = "STUDY",
    version: str = "2.5.1",
    processing: str = "P",
    accept_ack: str = "",
    app_ack: str = "",
    charset: str = "UNICODE UTF-8",
    message_type: str = "ORU^R01^ORU_R01",
    filler: str | None = None,
    results: tuple = RESULTS,
    name: str = "Nguyễn^Văn A",
    when: str = "20190701083000",
    status: str = "F",
) -> bytes:
    """An ORU^R01 lab result message (UTF-8), one OBX per result."""
    msh = (
        f"MSH|^~\\&|{app}|{facility}|{receiver}|{receiver_facility}|{when}||{message_type}|{control_id}|"
        f"{processing}|{version}|||{accept_ack}|{app_ack}||{charset}"
    )
    segments = [
        msh.rstrip("|"),
        f"PID|1||{mrn}^^^VH^MR||{name}||19650302|F",
        f"OBR|1|PLC-{control_id}|{filler or 'FIL-' + control_id}|LAB^Panel^L|||20190701070000",
    ]
    for i, (code, text, value, unit) in enumerate(results, 1):
        segments.append(f"OBX|{i}|NM|{code}^{text}^L||{value}|{unit}|||||{status}|||20190701070000")
    return ("\r".join(segments) + "\r").encode("utf-8")


def segments(message: bytes) -> dict[str, list[bytes]]:
    """Segment name -> its fields (field n of MSH at index n, as HL7 numbers them)."""
    out: dict[str, list[bytes]] = {}
    for seg in message.split(b"\r"):
        if not seg:
            continue
        parts = seg.split(b"|")
        name = parts[0].decode()
        out[name] = [b"MSH", b"|", *parts[1:]] if name == "MSH" else parts
    return out


@dataclass
class Ack:
    raw: bytes

    @property
    def fields(self) -> dict[str, list[bytes]]:
        return segments(self.raw)

    def msh(self, n: int) -> bytes:
        f = self.fields["MSH"]
        return f[n] if n < len(f) else b""

    @property
    def code(self) -> str:
        return self.fields["MSA"][1].decode()

    @property
    def acked_id(self) -> str:
        return self.fields["MSA"][2].decode()


class MllpClient:
    """One persistent MLLP connection: send a message, wait for its ACK."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = FrameReader(16 * 1024 * 1024)
        self._pending: list[bytes] = []

    def send(self, message: bytes) -> Ack:
        self.sock.sendall(frame(message))
        return self.recv()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> Ack:
        while not self._pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the listener")
            self._pending.extend(e.payload for e in self.reader.feed(data) if isinstance(e, Frame))
        return Ack(self._pending.pop(0))

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
