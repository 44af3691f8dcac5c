"""Write GIAMDINHHS files: synthetic fixtures, the demo trial's exports and the 100 MB benchmark.

The output looks like what hospital systems send: each table a standalone UTF-8 document with a BOM, an
XML declaration, CRLF line ends and free text in CDATA, base64-encoded into `NOIDUNGFILE`; roots in the
130-era style (`CHITIEU_*` wrappers) or the 4210 style (the list element is the root). Everything is
streamed: a table is an iterable of records and the base64 is produced as the document is, so a file of
any size is written in constant memory.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Literal
from xml.sax.saxutils import escape

Style = Literal["130", "4210"]

# Free-text fields exporters wrap in CDATA (names, addresses, diagnoses, drug names, doses, results).
CDATA_FIELDS = frozenset(
    {
        "HO_TEN",
        "DIA_CHI",
        "LY_DO_VV",
        "CHAN_DOAN_VAO",
        "CHAN_DOAN_RV",
        "TEN_BENH",
        "GHI_CHU",
        "TEN_THUOC",
        "HAM_LUONG",
        "DANG_BAO_CHE",
        "LIEU_DUNG",
        "CACH_DUNG",
        "TEN_DICH_VU",
        "TEN_CHI_SO",
        "GIA_TRI",
        "MO_TA",
        "KET_LUAN",
    }
)
_NS = 'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
# kind -> (130 wrapper, list element, record element)
_ROOTS: dict[str, tuple[str, str, str]] = {
    "XML2": ("CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC"),
    "XML3": ("CHITIEU_CHITIET_DVKT_VTYT", "DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT"),
    "XML4": ("CHITIEU_CHITIET_DICHVUCANLAMSANG", "DSACH_CHI_TIET_CLS", "CHI_TIET_CLS"),
    "XML5": ("CHITIEU_CHITIET_DIENBIENLAMSANG", "DSACH_CHI_TIET_DIEN_BIEN_BENH", "CHI_TIET_DIEN_BIEN_BENH"),
}
_B64_BLOCK = 3 * 1024 * 16


@dataclass
class Table:
    """One table of a HOSO: its LOAIHOSO and its records (field -> text, in order)."""

    kind: str
    records: Iterable[Mapping[str, str]]


def _field(name: str, value: str, cdata: bool) -> str:
    if cdata and name in CDATA_FIELDS and value:
        return f"<{name}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>"
    return f"<{name}>{escape(value)}</{name}>"


def _record(tag: str, record: Mapping[str, str], cdata: bool, indent: str, attrs: str = "") -> str:
    inner = "".join(f"\r\n{indent}  {_field(k, v, cdata)}" for k, v in record.items())
    return f"{indent}<{tag}{attrs}>{inner}\r\n{indent}</{tag}>\r\n"


def table_document(
    table: Table, style: Style = "130", *, bom: bool = True, cdata: bool = True
) -> Iterator[bytes]:
    """The inner document of one table, as UTF-8 chunks (one per record)."""
    head = '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\r\n'
    yield (b"\xef\xbb\xbf" if bom else b"") + head.encode()
    if table.kind == "XML1":
        attrs = f" {_NS}" if style == "4210" else ""
        for record in table.records:
            yield _record("TONG_HOP", record, cdata, "", attrs).encode()
        return
    wrapper, listing, item = _ROOTS[table.kind]
    if style == "130":
        yield f"<{wrapper}>\r\n  <{listing}>\r\n".encode()
        indent, close = "    ", f"  </{listing}>\r\n</{wrapper}>\r\n"
    else:
        yield f"<{listing} {_NS}>\r\n".encode()
        indent, close = "  ", f"</{listing}>\r\n"
    for record in table.records:
        yield _record(item, record, cdata, indent).encode()
    yield close.encode()


def _base64(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 of a byte stream, in pieces (3-byte aligned), wrapped at 76 characters like MIME exporters."""
    carry = b""
    for chunk in chunks:
        carry += chunk
        if len(carry) >= _B64_BLOCK:
            cut = len(carry) - len(carry) % _B64_BLOCK
            yield base64.encodebytes(carry[:cut])
            carry = carry[cut:]
    if carry:
        yield base64.encodebytes(carry)


def write_envelope(
    out: IO[bytes],
    hosos: Iterable[Iterable[Table]],
    *,
    facility: str,
    built_on: str,
    style: Style = "130",
    declared: int | None = None,
    bom: bool = True,
    cdata: bool = True,
) -> int:
    """Write a GIAMDINHHS file; return the number of HOSO written. `declared` defaults to that number
    when the HOSO are given as a list (a generator cannot be counted beforehand)."""
    if declared is None and isinstance(hosos, list | tuple):
        declared = len(hosos)
    out.write(b'<?xml version="1.0" encoding="utf-8"?>\r\n')
    out.write(
        f"<GIAMDINHHS {_NS}>\r\n  <THONGTINDONVI>\r\n    <MACSKCB>{escape(facility)}</MACSKCB>\r\n".encode()
    )
    out.write(
        f"  </THONGTINDONVI>\r\n  <THONGTINHOSO>\r\n    <NGAYLAP>{escape(built_on)}</NGAYLAP>\r\n".encode()
    )
    if declared is not None:
        out.write(f"    <SOLUONGHOSO>{declared}</SOLUONGHOSO>\r\n".encode())
    out.write(b"    <DANHSACHHOSO>\r\n")
    count = 0
    for tables in hosos:
        count += 1
        out.write(b"      <HOSO>\r\n")
        for table in tables:
            out.write(f"        <FILEHOSO>\r\n          <LOAIHOSO>{table.kind}</LOAIHOSO>\r\n".encode())
            out.write(b"          <NOIDUNGFILE>")
            for piece in _base64(table_document(table, style, bom=bom, cdata=cdata)):
                out.write(piece)
            out.write(b"</NOIDUNGFILE>\r\n        </FILEHOSO>\r\n")
        out.write(b"      </HOSO>\r\n")
    out.write(b"    </DANHSACHHOSO>\r\n  </THONGTINHOSO>\r\n  <CHUKYDONVI />\r\n</GIAMDINHHS>\r\n")
    return count
