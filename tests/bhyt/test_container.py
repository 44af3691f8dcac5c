"""The streaming GIAMDINHHS reader: every HOSO, both root styles, BOM/CDATA, chunking, deferral, errors."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import pytest

from adapter.bhyt.container import (
    Base64Stream,
    ContainerError,
    Decision,
    Envelope,
    Record,
    RecordParser,
    TableError,
    read_envelope,
)
from adapter.bhyt.writer import Table, write_envelope


@dataclass
class Recorder:
    """A Sink that records what the reader reports; `decide` picks the decision per (hoso, kind)."""

    decide: dict[tuple[int, str], Decision] = field(default_factory=dict)
    default: Decision = "read"
    events: list[tuple] = field(default_factory=list)

    def begin_table(self, hoso: int, kind: str, envelope: Envelope) -> Decision:
        decision = self.decide.get((hoso, kind), self.default)
        self.events.append(("begin", hoso, kind, decision))
        return decision

    def record(self, hoso: int, kind: str, record: Record) -> None:
        self.events.append(("record", hoso, kind, record.tag, record.index, dict(record.fields)))

    def end_table(self, hoso: int, kind: str, error: str | None) -> None:
        self.events.append(("end", hoso, kind, error))

    def end_hoso(self, hoso: int) -> None:
        self.events.append(("hoso", hoso))

    def records(self) -> list[tuple]:
        return [e[1:] for e in self.events if e[0] == "record"]


def _file(hosos, style="130", **kw) -> bytes:
    out = io.BytesIO()
    write_envelope(out, hosos, facility="79999", built_on="20240117", style=style, **kw)
    return out.getvalue()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode()


XML1 = Table("XML1", [{"MA_LK": "LK1", "MA_BN": "BN1", "HO_TEN": "Nguyễn Văn A"}])
XML2 = Table(
    "XML2",
    [
        {"MA_LK": "LK1", "STT": "1", "LIEU_DUNG": "Sáng: 1 viên <sau ăn> & tối: 1 viên ]]> x"},
        {"MA_LK": "LK1", "STT": "2", "TEN_THUOC": "Glucophage"},
    ],
)


@pytest.mark.parametrize("style", ["130", "4210"])
@pytest.mark.parametrize("chunk", [7, 1 << 16])
def test_every_hoso_table_and_record_in_both_root_styles(style, chunk):
    data = _file([[XML1, XML2], [XML1, Table("XML4", [{"MA_LK": "LK1", "GIA_TRI": "7,8"}])]], style=style)
    sink = Recorder()
    envelope = read_envelope(io.BytesIO(data), sink, chunk_bytes=chunk)
    assert (envelope.facility, envelope.built_on, envelope.declared, envelope.hoso_count) == (
        "79999",
        "20240117",
        2,
        2,
    )
    assert sink.records() == [
        (1, "XML1", "TONG_HOP", 1, {"MA_LK": "LK1", "MA_BN": "BN1", "HO_TEN": "Nguyễn Văn A"}),
        (
            1,
            "XML2",
            "CHI_TIET_THUOC",
            1,
            {"MA_LK": "LK1", "STT": "1", "LIEU_DUNG": "Sáng: 1 viên <sau ăn> & tối: 1 viên ]]> x"},
        ),
        (1, "XML2", "CHI_TIET_THUOC", 2, {"MA_LK": "LK1", "STT": "2", "TEN_THUOC": "Glucophage"}),
        (2, "XML1", "TONG_HOP", 1, {"MA_LK": "LK1", "MA_BN": "BN1", "HO_TEN": "Nguyễn Văn A"}),
        (2, "XML4", "CHI_TIET_CLS", 1, {"MA_LK": "LK1", "GIA_TRI": "7,8"}),
    ]
    assert [e for e in sink.events if e[0] == "hoso"] == [("hoso", 1), ("hoso", 2)]


def test_bom_cdata_and_crlf_are_what_the_writer_produces():
    data = _file([[XML2]])
    inner = base64.b64decode(data.split(b"<NOIDUNGFILE>")[1].split(b"</NOIDUNGFILE>")[0])
    assert inner.startswith(b"\xef\xbb\xbf<?xml")
    assert b"<![CDATA[" in inner and b"\r\n" in inner


def test_skipped_table_is_never_decoded_even_if_it_is_garbage():
    data = _file([[XML1, XML2]]).replace(b"<LOAIHOSO>XML2</LOAIHOSO>", b"<LOAIHOSO>XML3</LOAIHOSO>")
    start = data.index(b"<LOAIHOSO>XML3</LOAIHOSO>")
    body_start = data.index(b"<NOIDUNGFILE>", start) + len(b"<NOIDUNGFILE>")
    body_end = data.index(b"</NOIDUNGFILE>", start)
    data = data[:body_start] + b"%%% not base64 at all %%%" + data[body_end:]
    sink = Recorder(decide={(1, "XML3"): "skip"})
    read_envelope(io.BytesIO(data), sink)
    assert ("end", 1, "XML3", None) in sink.events
    assert [r[1] for r in sink.records()] == ["XML1"]


def test_deferred_table_is_offered_again_when_its_hoso_ends():
    data = _file([[XML2, XML1]])

    class Deferring(Recorder):
        def begin_table(self, hoso, kind, envelope):
            seen_xml1 = any(e[0] == "record" and e[2] == "XML1" for e in self.events)
            decision: Decision = "read" if kind == "XML1" or seen_xml1 else "defer"
            self.events.append(("begin", hoso, kind, decision))
            return decision

    sink = Deferring()
    read_envelope(io.BytesIO(data), sink, spool_bytes=64)  # small spool: rolls over to a temporary file
    kinds = [(e[0], e[2]) for e in sink.events if e[0] in ("begin", "record")]
    assert kinds == [
        ("begin", "XML2"),
        ("begin", "XML1"),
        ("record", "XML1"),
        ("begin", "XML2"),
        ("record", "XML2"),
        ("record", "XML2"),
    ]
    assert sink.events[-1] == ("hoso", 1)


def test_records_are_found_at_any_depth_and_namespaces_are_ignored():
    inner = (
        '<?xml version="1.0"?><x:ROOT xmlns:x="urn:x"><A><B><x:CHI_TIET_CLS><x:GIA_TRI>5</x:GIA_TRI>'
        "</x:CHI_TIET_CLS></B></A></x:ROOT>"
    )
    envelope = (
        '<?xml version="1.0"?><g:GIAMDINHHS xmlns:g="urn:g"><g:HOSO><g:FILEHOSO><g:LOAIHOSO>XML4</g:LOAIHOSO>'
        f"<g:NOIDUNGFILE>{_b64(inner)}</g:NOIDUNGFILE></g:FILEHOSO></g:HOSO></g:GIAMDINHHS>"
    )
    sink = Recorder()
    read_envelope(io.BytesIO(envelope.encode()), sink)
    assert sink.records() == [(1, "XML4", "CHI_TIET_CLS", 1, {"GIA_TRI": "5"})]


def test_filehoso_without_hoso_wrapper_forms_one_implicit_hoso():
    files = "".join(
        f"<FILEHOSO><LOAIHOSO>{k}</LOAIHOSO><NOIDUNGFILE>{_b64(x)}</NOIDUNGFILE></FILEHOSO>"
        for k, x in (("XML1", "<TONG_HOP><MA_BN>1</MA_BN></TONG_HOP>"), ("XML4", "<L><CHI_TIET_CLS/></L>"))
    )
    data = f"<GIAMDINHHS><DANHSACHHOSO>{files}</DANHSACHHOSO></GIAMDINHHS>".encode()
    sink = Recorder()
    envelope = read_envelope(io.BytesIO(data), sink)
    assert envelope.hoso_count == 1
    assert [(r[0], r[1]) for r in sink.records()] == [(1, "XML1"), (1, "XML4")]


def test_bad_base64_and_bad_inner_xml_are_table_errors_and_the_file_goes_on():
    bad_inner = _b64("<TONG_HOP><MA_BN>1</MA_BN>")  # never closed
    data = (
        "<GIAMDINHHS><HOSO><FILEHOSO><LOAIHOSO>XML2</LOAIHOSO><NOIDUNGFILE>@@@@</NOIDUNGFILE></FILEHOSO>"
        f"<FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>{bad_inner}</NOIDUNGFILE></FILEHOSO></HOSO>"
        f"<HOSO><FILEHOSO><LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>{_b64('<TONG_HOP/>')}</NOIDUNGFILE>"
        "</FILEHOSO></HOSO></GIAMDINHHS>"
    ).encode()
    sink = Recorder()
    read_envelope(io.BytesIO(data), sink)
    ends = [e for e in sink.events if e[0] == "end"]
    assert ends[0] == ("end", 1, "XML2", "content is not valid base64")
    assert ends[1][3].startswith("inner XML is not well-formed")
    assert ends[2] == ("end", 2, "XML1", None)


def test_truncated_envelope_names_the_hoso_being_read():
    data = _file([[XML1], [XML1, XML2]])
    cut = data[: data.rindex(b"<NOIDUNGFILE>") + 40]
    sink = Recorder()
    with pytest.raises(ContainerError) as err:
        read_envelope(io.BytesIO(cut), sink)
    assert err.value.hoso == 2
    assert ("hoso", 1) in sink.events and ("hoso", 2) not in sink.events


def test_empty_table_and_leading_blank_lines_before_the_declaration():
    text = (
        "\r\n\r\n  \ufeff<?xml version='1.0' encoding='utf-8'?>"
        "<L><CHI_TIET_THUOC><STT>1</STT></CHI_TIET_THUOC></L>"
    )
    data = (
        "<GIAMDINHHS><HOSO><FILEHOSO><LOAIHOSO>XML2</LOAIHOSO><NOIDUNGFILE></NOIDUNGFILE></FILEHOSO>"
        f"<FILEHOSO><LOAIHOSO>XML2</LOAIHOSO><NOIDUNGFILE>{_b64(text)}</NOIDUNGFILE></FILEHOSO>"
        "</HOSO></GIAMDINHHS>"
    ).encode()
    sink = Recorder()
    read_envelope(io.BytesIO(data), sink)
    assert [e[3] for e in sink.events if e[0] == "end"] == [None, None]
    assert sink.records() == [(1, "XML2", "CHI_TIET_THUOC", 1, {"STT": "1"})]


def test_base64_stream_decodes_across_arbitrary_pieces_and_line_breaks():
    payload = bytes(range(256)) * 3
    text = base64.encodebytes(payload).decode()  # MIME style, a line break every 76 characters
    for size in (1, 3, 5, 77, 1000):
        stream = Base64Stream()
        out = b"".join(stream.feed(text[i : i + size]) for i in range(0, len(text), size)) + stream.finish()
        assert out == payload
    stream = Base64Stream()
    stream.feed("QUJD" + "RA")
    with pytest.raises(TableError, match="truncated"):
        stream.finish()


def test_record_parser_hands_records_on_as_it_goes():
    seen = []
    parser = RecordParser(seen.append)
    parser.feed(b"<L>")
    for i in range(1000):
        parser.feed(f"<CHI_TIET_CLS><STT>{i}</STT></CHI_TIET_CLS>".encode())
    # every record was handed on as soon as it ended; nothing of them is kept while the list goes on
    assert len(seen) == 1000 and parser._record is None and parser._depth == 1
    parser.feed(b"</L>")
    assert parser.close() == 1000
    assert seen[-1].fields == {"STT": "999"}
