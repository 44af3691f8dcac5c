"""The MLLP listener over real sockets on 127.0.0.1, with a real SQLite store file."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import pytest

from adapter.mllp.framing import frame
from adapter.mllp.receive import ReceivePolicy, RosterGate
from adapter.mllp.server import MllpServer
from adapter.store import Store
from tests.mllp.helpers import MllpClient, oru


@pytest.fixture()
def make_server(tmp_path, roster):
    servers = []

    def make(**kwargs) -> MllpServer:
        policy = kwargs.pop("policy", ReceivePolicy(max_bytes=64 * 1024))
        gate = kwargs.pop("gate", RosterGate.fixed(roster))
        server = MllpServer(tmp_path / "store.sqlite", policy, gate, port=0, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()


def _rows(path, sql="SELECT control_id, status FROM inbox ORDER BY id"):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_persistent_connection_each_message_is_on_disk_before_its_ack(make_server, tmp_path):
    server = make_server()
    with MllpClient(*server.address) as client:
        for n in range(5):
            ack = client.send(oru(f"MSG{n}"))
            assert (ack.code, ack.acked_id) == ("AA", f"MSG{n}")
            # a separate connection (another process would see the same) finds it committed already
            assert _rows(tmp_path / "store.sqlite")[-1] == (f"MSG{n}", "pending")
    assert len(_rows(tmp_path / "store.sqlite")) == 5


@pytest.mark.parametrize("per_client", [100, pytest.param(1000, marks=pytest.mark.slow)])
def test_many_concurrent_clients_every_message_acked_once_and_stored(make_server, tmp_path, per_client):
    server = make_server()
    clients = 10
    acks: dict[str, list[str]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def sender(c: int) -> None:
        try:
            with MllpClient(*server.address) as client:
                for n in range(per_client):
                    cid = f"C{c}-{n}"
                    mrn = "MRN1001" if n % 10 else "MRN9999"  # one in ten is a stranger
                    ack = client.send(oru(cid, mrn, facility=f"LAB{c}"))
                    if n % 7 == 0:  # the engine did not see the ACK and sends again
                        again = client.send(oru(cid, mrn, facility=f"LAB{c}"))
                        assert again.raw == ack.raw or mrn == "MRN9999"
                    assert ack.msh(5) == b"LIS" and ack.msh(6) == f"LAB{c}".encode()
                    with lock:
                        acks.setdefault(ack.acked_id, []).append(ack.code)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(acks) == clients * per_client
    assert all(codes == ["AA"] for codes in acks.values())
    stored = _rows(tmp_path / "store.sqlite", "SELECT sending_facility, control_id FROM inbox")
    expected = {(f"LAB{c}", f"C{c}-{n}") for c in range(clients) for n in range(per_client) if n % 10}
    assert len(stored) == len(set(stored)) == len(expected)  # resends not stored twice, strangers not at all
    assert set(stored) == expected
    assert server.writer.commits < len(stored)  # group commit shared fsyncs between connections
    snap = server.snapshot()
    strangers = [n for n in range(per_client) if n % 10 == 0]
    dropped = clients * (len(strangers) + sum(1 for n in strangers if n % 7 == 0))  # resends dropped again
    assert snap["stored"] == len(expected) and snap["dropped"] == dropped


def test_malformed_input_keeps_the_listener_serving(make_server, tmp_path):
    server = make_server()
    host, port = server.address
    with MllpClient(host, port) as client:
        garbage = client.send(b"this is not HL7 at all")
        assert garbage.code == "AR" and garbage.acked_id == ""
        wrong_charset = client.send(oru("BADCS", charset="ASCII"))
        assert (wrong_charset.code, wrong_charset.acked_id) == ("AE", "BADCS")
        huge = oru("HUGE", results=(("GLU-F", "x" * 100_000, "1", "mmol/L"),))
        too_big = client.send(huge)
        assert (too_big.code, too_big.acked_id) == ("AR", "HUGE")
        unsupported = client.send(oru("ADT1", message_type="ADT^A01"))
        assert (unsupported.code, unsupported.acked_id) == ("AR", "ADT1")
        # a frame abandoned half-way (new start block), then a good one on the same connection
        client.send_raw(b"\x0b" + oru("HALF")[:90])
        assert client.send(oru("AFTER")).code == "AA"
    with MllpClient(host, port) as client:  # truncated by a closed connection
        client.send_raw(b"\x0b" + oru("CUT")[:90])
    time.sleep(0.5)
    with MllpClient(host, port) as client:
        assert client.send(oru("LAST")).code == "AA"
    with Store(tmp_path / "store.sqlite") as store:
        letters = store.dead_letters()
        reasons = {d.control_id: d.reason for d in letters}
        assert set(reasons) == {None, "BADCS", "HUGE", "ADT1", "HALF", "CUT"}
        assert "too large" in reasons["HUGE"] and "truncated" in reasons["CUT"]
        huge_item = store.item(next(d.inbox_id for d in letters if d.control_id == "HUGE"), with_body=True)
        assert huge_item.truncated and huge_item.size == len(huge) and len(huge_item.body) < len(huge)
    assert [r for r in _rows(tmp_path / "store.sqlite") if r[1] == "pending"] == [
        ("AFTER", "pending"),
        ("LAST", "pending"),
    ]


def test_enhanced_mode_never_gets_no_ack_but_is_stored(make_server, tmp_path):
    server = make_server()
    with MllpClient(*server.address) as client:
        client.send_raw(frame(oru("NE1", accept_ack="NE", app_ack="NE")))
        ack = client.send(oru("AL1", accept_ack="AL", app_ack="NE"))
        assert (ack.code, ack.acked_id) == ("CA", "AL1")  # the first one got no answer at all
    assert [r[0] for r in _rows(tmp_path / "store.sqlite")] == ["NE1", "AL1"]


def test_idle_connections_are_closed(make_server):
    server = make_server(idle_timeout=0.5)
    with MllpClient(*server.address) as client:
        assert client.send(oru("I1")).code == "AA"
        assert client.closed_by_peer(timeout=5)


def test_connection_limit(make_server):
    server = make_server(max_connections=2)
    a, b = MllpClient(*server.address), MllpClient(*server.address)
    try:
        assert a.send(oru("L1")).code == "AA" and b.send(oru("L2")).code == "AA"
        c = MllpClient(*server.address)
        assert c.closed_by_peer(timeout=5)
        c.close()
    finally:
        a.close()
        b.close()
    time.sleep(0.6)
    with MllpClient(*server.address) as d:
        assert d.send(oru("L3")).code == "AA"


def test_stop_finishes_the_message_in_flight_then_closes(make_server, tmp_path):
    server = make_server()
    client = MllpClient(*server.address)
    message = oru("INFLIGHT")
    client.send_raw(b"\x0b" + message[:30])
    time.sleep(0.3)
    server.request_stop()
    time.sleep(0.3)
    client.send_raw(message[30:] + b"\x1c\r")
    ack = client.recv()
    assert (ack.code, ack.acked_id) == ("AA", "INFLIGHT")
    assert client.closed_by_peer()
    client.close()
    server.shutdown()
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=1).close()
    assert _rows(tmp_path / "store.sqlite") == [("INFLIGHT", "pending")]


def test_store_failure_closes_without_ack(make_server, monkeypatch):
    server = make_server()

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("adapter.mllp.server.commit_message", broken)
    with MllpClient(*server.address) as client:
        client.send_raw(frame(oru("F1")))
        assert client.closed_by_peer()
    monkeypatch.undo()
    with MllpClient(*server.address) as client:  # the listener itself carries on
        assert client.send(oru("F1")).code == "AA"


def test_no_thread_for_a_connection_refuses_it_and_keeps_serving(make_server, monkeypatch):
    server = make_server()
    real_start = threading.Thread.start
    failed = []

    def start_once_failing(self):
        if self.name.startswith("mllp-") and not failed:
            failed.append(self.name)
            raise RuntimeError("can't start new thread")
        return real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start_once_failing)
    with MllpClient(*server.address) as refused:
        assert refused.closed_by_peer()
    with MllpClient(*server.address) as client:  # the listener is still accepting
        assert client.send(oru("AFTER")).code == "AA"
    assert failed
