"""The MLLP sender (used by `adapter demo send`) against the real listener on 127.0.0.1."""

from __future__ import annotations

import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from adapter.mllp.receive import ReceivePolicy, RosterGate
from adapter.mllp.sender import messages_in, send_messages
from adapter.mllp.server import MllpServer
from adapter.roster import parse_roster
from tests.mllp.helpers import oru

DEMO = Path(__file__).parents[2] / "fixtures" / "demo-small"


def test_messages_in_unwraps_batches_and_line_ends(tmp_path):
    batch = tmp_path / "batch.hl7"
    body = b"\n".join(m.replace(b"\r", b"\n") for m in (oru("A1"), oru("A2")))
    batch.write_bytes(b"FHS|^~\\&\nBHS|^~\\&\n" + body + b"\nBTS|2\nFTS|1\n")
    single = tmp_path / "single.hl7"
    single.write_bytes(oru("B1"))
    messages = messages_in([batch, single])
    assert len(messages) == 3
    assert all(m.startswith(b"MSH|") for m in messages)
    assert [m.split(b"\r")[0].split(b"|")[9] for m in messages] == [b"A1", b"A2", b"B1"]


def test_demo_lab_files_sent_are_each_acked_and_stored(tmp_path, study):
    roster = parse_roster((DEMO / "roster.csv").read_text(encoding="utf-8"), study, "roster.csv")
    server = MllpServer(
        tmp_path / "store.sqlite", ReceivePolicy(max_bytes=1024 * 1024), RosterGate.fixed(roster), port=0
    )
    server.start()
    try:
        messages = messages_in(sorted((DEMO / "hl7").glob("*.hl7")))
        acks: list[str] = []
        report = send_messages(messages, *server.address, on_ack=acks.append)
    finally:
        server.shutdown()
    assert report.sent == len(messages) == len(acks)
    assert "??" not in report.codes
    accepted = report.codes.get("AA", 0) + report.codes.get("CA", 0)  # original or enhanced mode
    assert accepted == len(messages) - len(report.not_accepted) > 0
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    try:
        stored = conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    finally:
        conn.close()
    assert stored == accepted


def test_a_listener_that_hangs_up_is_an_error_not_a_hang():
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(ConnectionError, match="closed the connection"):
            send_messages([oru("X1")], *listener.getsockname(), timeout=5)
    finally:
        listener.close()
