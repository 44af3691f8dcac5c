"""The front door: framing, header, tokenizer, charsets, escapes, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adapter.hl7 import (
    Encoding,
    MalformedMessage,
    decode,
    escape,
    parse_header,
    parse_message,
    split_messages,
    supported_version,
    unescape,
)
from adapter.hl7.dtm import parse_dtm, to_datetime, to_instant, version_stamp

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MSH = (
    b"MSH|^~\\&|LIS|VANHANH|ADAPTER|TRIAL|20240305083000||ORU^R01^ORU_R01|C1|P|2.5.1|||AL|NE|VN|UNICODE UTF-8"
)
PID = b"PID|1||BN1^^^VH^MR"


def test_split_accepts_every_segment_ending_and_gives_wire_form() -> None:
    expected = MSH + b"\r" + PID + b"\r"
    for end in (b"\r", b"\n", b"\r\n"):
        assert split_messages(MSH + end + PID + end) == [expected]
    assert split_messages(MSH + b"\r\n" + PID + b"\n") == [expected]  # mixed


def test_split_strips_bom_mllp_nuls_blank_lines_and_indentation() -> None:
    one = MSH + b"\r" + PID + b"\r"
    data = (
        b"\xef\xbb\xbf\x0b"
        + MSH
        + b"\r\r\n  "
        + PID
        + b"\x1c\r\n\x00\x00\x0b"
        + MSH
        + b"\r"
        + PID
        + b"\x1c\r"
    )
    assert split_messages(data) == [one, one]


def test_split_drops_batch_envelope_and_separates_messages() -> None:
    data = b"FHS|^~\\&|X\rBHS|^~\\&|X\r" + MSH + b"\r" + PID + b"\r" + MSH + b"\rBTS|2\rFTS|1\r"
    assert split_messages(data) == [MSH + b"\r" + PID + b"\r", MSH + b"\r"]


def test_split_returns_text_before_the_first_msh_so_it_can_be_rejected() -> None:
    parts = split_messages(b"garbage line\r" + MSH + b"\r")
    assert parts == [b"garbage line\r", MSH + b"\r"]
    with pytest.raises(MalformedMessage):
        parse_header(parts[0])
    assert split_messages(b"") == [] and split_messages(b" \r\n\r\n") == []


def test_a_raw_newline_inside_a_field_stays_in_the_field() -> None:
    data = MSH + b"\r" + PID + b"\rNTE|1|L|first line\nsecond line\rOBX|1\r"
    (message,) = split_messages(data)
    parsed = parse_message(message)
    assert [s.name for s in parsed.segments] == ["MSH", "PID", "NTE", "OBX"]
    assert parsed.segments[2].value(3) == "first line\nsecond line"
    # with \n as the terminator, a line that starts a segment still ends the previous one
    (lf,) = split_messages(data.replace(b"\r", b"\n"))
    assert [s.name for s in parse_message(lf).segments] == ["MSH", "PID", "NTE", "OBX"]


def test_header_fields_by_standard_numbering() -> None:
    header = parse_header(MSH + b"\r" + PID + b"\r")
    assert header.fields[1] == "|" and header.fields[2] == "^~\\&" and header.field(3) == "LIS"
    assert (header.sending_application, header.sending_facility) == ("LIS", "VANHANH")
    assert (header.receiving_application, header.receiving_facility) == ("ADAPTER", "TRIAL")
    assert header.timestamp == "20240305083000"
    assert (header.message_code, header.trigger_event, header.message_structure) == ("ORU", "R01", "ORU_R01")
    assert header.message_type == "ORU^R01"
    assert (header.control_id, header.processing_id, header.version) == ("C1", "P", "2.5.1")
    assert (header.accept_ack_type, header.application_ack_type, header.enhanced_ack_mode) == (
        "AL",
        "NE",
        True,
    )
    assert header.charset == "UNICODE UTF-8" and header.encoding.codec == "utf-8"
    assert header.field(40) == ""


def test_header_with_other_delimiters_and_hd_universal_id() -> None:
    raw = b"MSH#$*!@#$1.2.3$ISO#FAC#R#F#2024#S#ORU$R01#ID9#P#2.4\r"
    header = parse_header(raw)
    assert header.encoding.field == "#" and header.encoding.component == "$"
    assert header.sending_application == "1.2.3"  # HD.1 empty -> universal id
    assert header.message_type == "ORU^R01" and header.control_id == "ID9"
    assert not header.enhanced_ack_mode


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"PID|1\r", "does not start with an MSH"),
        (b"MSH", "too short"),
        (b"MSHA^~\\&|X\r", "field separator"),
        (b"MSH|^^\\&|X\r", "encoding characters"),
        (b"MSH||X\r", "encoding characters"),
    ],
)
def test_header_rejects_what_cannot_be_read(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        parse_header(raw)


@pytest.mark.parametrize(
    ("version", "mapped"),
    [
        ("2.5.1", "2.5.1"),
        ("2.3.0", "2.3"),
        ("2.3.1", "2.3.1"),
        ("2.2", "2.3"),
        ("2.1", "2.3"),
        ("2.9", "2.8.2"),
        ("2.5.2", "2.5.1"),
        ("2.10", "2.8.2"),
        ("3.0", "2.8.2"),
        ("", "2.5"),
        ("v2", "2.5"),
    ],
)
def test_versions_map_to_the_nearest_supported(version: str, mapped: str) -> None:
    assert supported_version(version) == mapped


def test_tokenizer_access_by_field_component_repetition_subcomponent() -> None:
    raw = MSH + b"\r" + b'PID|1||BN1^^^VH&1.2&ISO^MR~ID2^^^BCA^NI||""|X\\T\\Y\r'
    msg = parse_message(raw)
    pid = msg.first("PID")
    assert pid is not None and pid.position == 2
    assert pid.value(3) == "BN1" and pid.value(3, 1, 2) == "ID2" and pid.value(3, 5, 2) == "NI"
    assert pid.value(3, 4, 1, 2) == "1.2" and pid.components(3)[3] == "VH&1.2&ISO"
    assert pid.repetitions(3) == ["BN1^^^VH&1.2&ISO^MR", "ID2^^^BCA^NI"]
    assert pid.value(5) == "" and pid.is_null(5)
    assert pid.value(6) == "X&Y" and pid.raw(6) == "X\\T\\Y"
    assert pid.value(99) == "" and pid.components(99) == [] and pid.value(3, 1, 9) == ""
    msh = msg.segments[0]
    assert msh.raw(1) == "|" and msh.value(2) == "^~\\&" and msh.value(9, 2) == "R01"
    assert "BN1" not in repr(pid)  # repr never shows content


def test_message_decodes_by_msh18_and_reports_fallbacks() -> None:
    latin = MSH.replace(b"UNICODE UTF-8", b"8859/1") + b"\rNTE|1||H\xe9molyse\r"
    msg = parse_message(latin)
    assert msg.first("NTE").value(3) == "Hémolyse" and msg.codec == "latin-1" and msg.notes == []
    bad_utf8 = MSH + b"\rNTE|1||M\xe1u\r"
    msg = parse_message(bad_utf8)
    assert msg.first("NTE").value(3) == "Máu" and msg.codec == "cp1258"
    assert msg.notes == ["bytes are not valid UNICODE UTF-8: decoded as cp1258"]
    vietnamese = "NTE|1||Bệnh nhân nhịn ăn".encode()
    assert parse_message(MSH + b"\r" + vietnamese + b"\r").first("NTE").value(3) == "Bệnh nhân nhịn ăn"


def test_charset_table_and_fallbacks() -> None:
    assert decode("Đường".encode(), "UNICODE UTF-8").text == "Đường"
    assert decode("é".encode("latin-1"), "8859/1").codec == "latin-1"
    assert decode(b"abc", "").note is None
    assert (
        decode("ó".encode("cp1258"), "").note
        == "no MSH-18 charset and the bytes are not UTF-8: decoded as cp1258"
    )
    weird = decode(b"abc", "EBCDIC-X")
    assert weird.text == "abc" and weird.note is not None and "unknown MSH-18" in weird.note
    assert decode("中文".encode("gb18030"), "GB 18030-2000").text == "中文"
    assert decode(b"\x81\x8d", "").codec == "latin-1"  # undefined in cp1258 too


ENC = Encoding()


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", "a|b^c&d~e\\f"),
        ("one\\.br\\two", "one\ntwo"),
        ("x\\X0D0A\\y", "x\ny"),
        ("Tr\\XE1BAA7\\n", "Trần"),  # UTF-8 bytes of one character in one escape
        ("V\\XC4\\\\X83\\n", "Văn"),  # ... split over two adjacent escapes
        ("\\H\\bold\\N\\", "bold"),
        ("a\\Q\\b", "a\\Q\\b"),  # unknown: kept
        ("C:\\temp", "C:\\temp"),  # unterminated: kept
        ("sp\\.sp2\\x", "sp\n\nx"),
        ("no escapes", "no escapes"),
    ],
)
def test_unescape(text: str, plain: str) -> None:
    assert unescape(text, ENC) == plain


def test_hex_escape_uses_the_message_charset() -> None:
    assert unescape("\\XE9\\", Encoding(codec="latin-1")) == "é"
    assert unescape("\\XE9\\", Encoding(codec="utf-8")) == "é"  # invalid UTF-8: Latin-1, never lost


def test_escape_is_the_inverse_of_unescape() -> None:
    text = "a|b^c&d~e\\f\nline"
    assert escape(text, ENC) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\line"
    assert unescape(escape(text, ENC), ENC) == text


@pytest.mark.parametrize(
    ("dtm", "fhir"),
    [
        ("20240305083000", "2024-03-05T08:30:00+07:00"),
        ("202403050830", "2024-03-05T08:30:00+07:00"),
        ("2024030508", "2024-03-05T08:00:00+07:00"),
        ("20240305", "2024-03-05"),
        ("202403", "2024-03"),
        ("2024", "2024"),
        ("20240305083000.1234", "2024-03-05T08:30:00.1234+07:00"),
        ("20240305083000+0000", "2024-03-05T08:30:00+00:00"),
        ("20240305083000-0530", "2024-03-05T08:30:00-05:30"),
        ("20240305083000+00", "2024-03-05T08:30:00+00:00"),
        ("20240305+0700", "2024-03-05"),
        ("220240305083000", None),
        ("20241305", None),
        ("20240230", None),
        ("20240305256000", None),
        ("2024-03-05", None),
        ("", None),
    ],
)
def test_dtm_to_fhir_datetime_in_site_timezone(dtm: str, fhir: str | None) -> None:
    assert to_datetime(dtm, HCM) == fhir


def test_instants_and_version_stamps() -> None:
    assert to_instant("20240305", HCM) is None
    assert to_instant("20240305", HCM, date_only_ok=True) == "2024-03-05T00:00:00+07:00"
    moment = datetime(2024, 3, 5, 8, 30, 0, 123400, tzinfo=HCM)
    assert version_stamp(moment, 30) == "2024-03-05T01:30:00.123430Z"
    assert version_stamp(datetime(2024, 3, 5, 1, 30, tzinfo=UTC), 5) == "2024-03-05T01:30:00.000005Z"
    # same source time: the rank orders; a later time always wins over any rank
    assert version_stamp(moment, 20) < version_stamp(moment, 30) < version_stamp(moment.replace(second=1), 0)
    assert parse_dtm("20240305").has_time is False
