"""ACK building: swapped sender/receiver, echoed fields, original and enhanced modes, ERR, charset."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hl7apy.parser import parse_message

from adapter.mllp.ack import (
    ERR_UNSUPPORTED_VERSION,
    AckDecision,
    AckIdentity,
    ack_wanted,
    build_ack,
    msh_fields,
    new_control_id,
)
from tests.mllp.helpers import Ack, oru

NOW = datetime(2024, 3, 1, 5, 6, 7, tzinfo=UTC)
ICT = timezone(timedelta(hours=7))


def test_original_mode_aa_swaps_sender_and_receiver_and_echoes_version_and_charset():
    message = oru("MSG0001", facility="BV Vạn Hạnh", version="2.5.1")
    ack = Ack(build_ack(message, AckDecision("AA"), control_id="ACK1", tz=ICT, now=NOW))
    assert ack.msh(3) == b"ADAPTER" and ack.msh(4) == b"STUDY"  # received MSH-5/6
    assert ack.msh(5) == b"LIS" and ack.msh(6) == "BV Vạn Hạnh".encode()  # received MSH-3/4, bytes intact
    assert ack.msh(7) == b"20240301120607+0700"  # site time with its offset
    assert ack.msh(9) == b"ACK^R01^ACK"
    assert ack.msh(10) == b"ACK1"
    assert ack.msh(11) == b"P" and ack.msh(12) == b"2.5.1"
    assert ack.msh(18) == b"UNICODE UTF-8"
    assert ack.code == "AA" and ack.acked_id == "MSG0001"
    assert b"ERR" not in ack.raw
    ack.raw.decode("utf-8")  # encoded in the message's charset


def test_ack_is_valid_hl7_for_hl7apy():
    message = oru("MSG0002", version="2.5")
    raw = build_ack(message, AckDecision("AE", "PID-3 empty", "101", "PID^1^3"), now=NOW)
    parsed = parse_message(raw.decode(), find_groups=False)
    assert parsed.msh.msh_9.to_er7() == "ACK^R01^ACK"
    assert parsed.msa.msa_1.to_er7() == "AE"
    assert parsed.msa.msa_2.to_er7() == "MSG0002"
    assert parsed.err.err_3.to_er7().startswith("101^")


@pytest.mark.parametrize(
    ("accept", "code", "sent", "wanted"),
    [
        ("AL", "AA", "CA", True),
        ("AL", "AE", "CE", True),
        ("AL", "AR", "CR", True),
        ("NE", "AA", "CA", False),
        ("NE", "AR", "CR", False),
        ("ER", "AA", "CA", False),
        ("ER", "AR", "CR", True),
        ("SU", "AA", "CA", True),
        ("SU", "AE", "CE", False),
    ],
)
def test_enhanced_mode_commit_acks_follow_msh15(accept, code, sent, wanted):
    message = oru("MSG0003", accept_ack=accept, app_ack="NE")
    ack = Ack(build_ack(message, AckDecision(code), now=NOW))
    assert ack.code == sent
    assert ack_wanted(message, code) is wanted


def test_enhanced_mode_with_only_msh16_counts_as_always():
    message = oru("MSG0004", app_ack="AL")
    assert Ack(build_ack(message, AckDecision("AA"), now=NOW)).code == "CA"
    assert ack_wanted(message, "AA")
    assert ack_wanted(oru("MSG0005"), "AR")  # original mode always answers


def test_err_segment_by_version():
    decision = AckDecision("AR", "MSH-12 version is not HL7 v2.x", ERR_UNSUPPORTED_VERSION, "MSH^1^12")
    new = Ack(build_ack(oru("M1", version="2.6"), decision, now=NOW)).fields["ERR"]
    assert new[2] == b"MSH^1^12" and new[3] == b"203^Unsupported version id^HL70357" and new[4] == b"E"
    old = Ack(build_ack(oru("M1", version="2.3"), decision, now=NOW)).fields
    assert old["ERR"][1] == b"MSH^1^12^203&Unsupported version id&HL70357"
    assert old["MSA"][3] == b"MSH-12 version is not HL7 v2.x"  # MSA-3 text before v2.7
    v27 = Ack(build_ack(oru("M1", version="2.7"), decision, now=NOW)).fields
    assert len(v27["MSA"]) == 3  # MSA-3 withdrawn in 2.7


def test_reason_text_never_breaks_the_message_structure():
    decision = AckDecision("AE", "bad | field ^ with ~ delimiters \\ & more\rsegment", "207")
    raw = build_ack(oru("M1", version="2.5"), decision, now=NOW)
    assert raw.count(b"\r") == 3  # MSH, MSA, ERR
    assert Ack(raw).fields["ERR"][8] == b"bad   field   with   delimiters     more segment"


def test_sender_delimiters_are_reused():
    message = b"MSH*:~\\&*LAB*FAC*RCV*RFAC*20240101**ORU:R01*C9*P*2.5\rPID*1**X1\r"
    raw = build_ack(message, AckDecision("AA"), control_id="A9", now=NOW)
    assert raw.startswith(b"MSH*:~\\&*RCV*RFAC*LAB*FAC*")
    assert b"*ACK:R01:ACK*A9*P*2.5" in raw
    assert b"\rMSA*AA*C9\r" in raw


def test_garbage_gets_a_generic_ar_with_our_identity():
    raw = build_ack(b"\x00\x01 not hl7", AckDecision("AR", "not HL7", "100"), AckIdentity("ADAPTER", "SITE"))
    ack = Ack(raw)
    assert ack.msh(3) == b"ADAPTER" and ack.msh(4) == b"SITE"
    assert ack.code == "AR" and ack.acked_id == ""
    assert ack.msh(9) == b"ACK"


def test_control_id_recoverable_from_a_broken_msh2():
    fields = msh_fields(b"\xef\xbb\xbfMSH|^^^^^^|A|B|C|D|2024||ORU^R01|CTRL7|P|2.5\r")
    assert fields is not None and fields[10] == b"CTRL7"
    assert msh_fields(b"PID|1\rMSH|^~\\&|") is None  # MSH must come first


def test_new_control_ids_are_unique_and_short():
    ids = {new_control_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) <= 20 for i in ids)
