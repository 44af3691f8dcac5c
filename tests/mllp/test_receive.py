"""Deciding what a received message is (AA/AE/AR, stored/dead/dropped) and committing it."""

import pytest

from adapter.mllp.receive import ReceivePolicy, RosterGate, assess, commit_message
from adapter.store import Store
from tests.mllp.helpers import Ack, oru

POLICY = ReceivePolicy()


@pytest.fixture()
def gate(roster):
    return RosterGate.fixed(roster)


@pytest.fixture()
def store(tmp_path):
    with Store(tmp_path / "store.sqlite") as s:
        yield s


def _verdict(raw, gate, **kw):
    a = assess(raw, kw.pop("policy", POLICY), gate, **kw)
    return a.decision.code, a.decision.error_code, a.disposition


def test_a_good_message_for_an_enrolled_subject_is_accepted(gate):
    assert _verdict(oru("M1", "MRN1001"), gate) == ("AA", "0", "pending")


def test_a_stranger_is_acknowledged_and_dropped(gate):
    assert _verdict(oru("M1", "MRN9999"), gate) == ("AA", "0", "drop")


def test_second_pid3_repetition_can_carry_the_enrolled_mrn(gate):
    raw = oru("M1", "OTHER1").replace(b"PID|1||OTHER1^^^VH^MR", b"PID|1||OTHER1^^^X^PI~MRN1002^^^VH^MR")
    assert _verdict(raw, gate)[2] == "pending"


def test_without_a_roster_everything_is_stored():
    assert _verdict(oru("M1", "MRN9999"), RosterGate.fixed(None)) == ("AA", "0", "pending")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"message_type": "ADT^A08^ADT_A01"}, ("AR", "200", "dead")),
        ({"message_type": "ORU^R99"}, ("AR", "201", "dead")),
        ({"version": "3.0"}, ("AR", "203", "dead")),
        ({"version": ""}, ("AR", "203", "dead")),
        ({"processing": "X"}, ("AR", "202", "dead")),
        ({"charset": "KLINGON-8"}, ("AE", "102", "dead")),
        ({"charset": "ASCII"}, ("AE", "102", "dead")),  # the name carries UTF-8 bytes
    ],
)
def test_refused_or_not_understood(gate, kwargs, expected):
    assert _verdict(oru("M1", "MRN1001", **kwargs), gate) == expected


def test_refused_messages_about_strangers_are_still_not_stored(gate):
    assert _verdict(oru("M1", "MRN9999", version="3.0"), gate) == ("AR", "203", "drop")


def test_missing_control_id_or_pid(gate):
    assert _verdict(oru(""), gate)[:2] == ("AR", "101")
    no_pid = b"MSH|^~\\&|LIS|VH|A|B|20240101||ORU^R01|M7|P|2.5\rOBX|1|NM|GLU-F^G^L||1|mmol/L\r"
    assert _verdict(no_pid, gate) == ("AE", "100", "dead")
    empty_pid3 = oru("M8").replace(b"MRN1001^^^VH^MR", b"")
    assert _verdict(empty_pid3, RosterGate.fixed(None)) == ("AE", "101", "dead")


def test_garbage_and_oversize(gate):
    assert _verdict(b"hello world", gate) == ("AR", "100", "dead")
    assert _verdict(b"MSH|", gate)[0] == "AR"
    code, _, disposition = _verdict(oru("M9")[:60], gate, oversize=10_000_000)
    assert (code, disposition) == ("AR", "dead")


def test_undeclared_charset_tolerates_non_utf8(gate):
    raw = oru("M1", charset="").replace("Văn".encode(), "Văn".encode("cp1258"))
    assert _verdict(raw, gate)[0] == "AA"


def test_resend_same_content_gets_the_same_ack_and_is_stored_once(store, gate):
    raw = oru("M1")
    with store.transaction():
        first = commit_message(store, raw, assess(raw, POLICY, gate), "mllp:127.0.0.1", POLICY)
    with store.transaction():
        again = commit_message(store, raw, assess(raw, POLICY, gate), "mllp:10.0.0.9", POLICY)
    assert first.outcome == "stored" and again.outcome == "resend"
    assert again.ack == first.ack  # byte for byte, its control id and timestamp included
    assert store.conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 1
    assert store.counters() == {"mllp.resend": 1}


def test_same_ids_different_content_is_stored_acked_and_flagged(store, gate):
    raw = oru("M1")
    changed = oru("M1", results=(("GLU-F", "Glucose", "9.9", "mmol/L"),))
    with store.transaction():
        commit_message(store, raw, assess(raw, POLICY, gate), "mllp:x", POLICY)
        second = commit_message(store, changed, assess(changed, POLICY, gate), "mllp:x", POLICY)
    assert second.outcome == "stored" and second.flagged
    assert Ack(second.ack).code == "AA"
    flags = store.conn.execute("SELECT flag FROM inbox ORDER BY id").fetchall()
    assert flags == [(None,), ("control-id-reused",)]
    # the same control id from another sending facility is a different message
    other = oru("M1", facility="OTHERLAB")
    with store.transaction():
        third = commit_message(store, other, assess(other, POLICY, gate), "mllp:x", POLICY)
    assert not third.flagged


def test_dead_and_dropped_messages(store, gate):
    bad = oru("M2", version="9.9")
    stranger = oru("M3", "MRN9999")
    with store.transaction():
        dead = commit_message(store, bad, assess(bad, POLICY, gate), "mllp:x", POLICY)
        dropped = commit_message(store, stranger, assess(stranger, POLICY, gate), "mllp:x", POLICY)
    assert dead.outcome == "dead" and Ack(dead.ack).code == "AR"
    assert dropped.outcome == "dropped" and Ack(dropped.ack).code == "AA"
    (letter,) = store.dead_letters()
    assert letter.stage == "receive" and letter.control_id == "M2" and "MSH-12" in letter.reason
    assert store.conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 1  # the stranger is not kept
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # new rows live in the -wal file until then
    assert b"MRN9999" not in store.path.read_bytes()
    assert not any(b"MRN9999" in p.read_bytes() for p in store.path.parent.glob(store.path.name + "-*"))
    assert store.counters()["received.not-enrolled"] == 1


def test_roster_gate_follows_the_file(tmp_path, study):
    from adapter.roster import load_roster

    path = tmp_path / "roster.csv"
    gate = RosterGate(path, lambda p: load_roster(p, study))
    assert gate.enrolled(["MRN1"]) is None  # no roster yet: store everything
    path.write_text("subject_id,mrn,arm,enrolled_on\nS1,MRN1,control,2019-06-01\n")
    gate._checked = 0.0
    assert gate.enrolled(["MRN1"]) is True and gate.enrolled(["MRN2"]) is False
