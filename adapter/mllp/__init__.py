"""MLLP: framing on a byte stream, ACK building, and the listener that stores before it acknowledges."""

from adapter.mllp.ack import AckDecision, AckIdentity, ack_wanted, build_ack, msh_fields
from adapter.mllp.framing import FrameReader, frame
from adapter.mllp.receive import ReceivePolicy, RosterGate, assess, commit_message
from adapter.mllp.server import MllpServer

__all__ = [
    "AckDecision",
    "AckIdentity",
    "FrameReader",
    "MllpServer",
    "ReceivePolicy",
    "RosterGate",
    "ack_wanted",
    "assess",
    "build_ack",
    "commit_message",
    "frame",
    "msh_fields",
]
