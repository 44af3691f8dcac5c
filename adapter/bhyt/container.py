"""Stream a GIAMDINHHS envelope: every HOSO, every table, every record, in bounded memory.

A BHYT file is an XML envelope whose tables (XML1 encounter, XML2 drugs, XML4 results, ...) are each a
standalone XML document, base64-encoded into a `NOIDUNGFILE` element. Files reach 100 MB, so nothing here
holds a whole table: the envelope is read with expat in chunks, each `NOIDUNGFILE`'s text is base64-decoded
as it arrives and fed straight into an incremental parser for the inner document, and each record element
is handed on and freed as soon as it is complete.

Records are found by local element name at any depth (`TONG_HOP`, `CHI_TIET_THUOC`, `CHI_TIET_CLS`), so the
4210 roots (the list element is the root) and the 130-era roots (`CHITIEU_*` wrappers) both work.

The caller (a `Sink`) decides per table whether it is read, skipped undecoded (a stranger's data, tables
we do not use) or deferred: a table that arrives before its HOSO's XML1 is decoded into a spooled temporary
file (in memory up to `spool_bytes`, then an unnamed temporary file) and offered again when the HOSO ends.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Literal, Protocol
from xml.parsers import expat

Decision = Literal["read", "skip", "defer"]

RECORD_TAGS = frozenset({"TONG_HOP", "CHI_TIET_THUOC", "CHI_TIET_CLS"})
CHUNK_BYTES = 1 << 16
SPOOL_BYTES = 1 << 20
TEXT_BATCH = 1 << 18  # base64 text gathered before decoding (expat hands it over line by line)

_ENVELOPE_FIELDS = frozenset({"MACSKCB", "NGAYLAP", "SOLUONGHOSO", "LOAIHOSO"})
_UTF8_BOM = b"\xef\xbb\xbf"
_PREFIX_BYTES = 16


class ContainerError(Exception):
    """The envelope itself cannot be read (not well-formed XML); `hoso` is the HOSO being read, if any."""

    def __init__(self, message: str, hoso: int | None = None) -> None:
        super().__init__(message)
        self.hoso = hoso


class TableError(Exception):
    """One table's content cannot be read (bad base64, not well-formed inner XML)."""


@dataclass
class Envelope:
    """What the envelope says about itself (filled in as it is read)."""

    facility: str | None = None  # THONGTINDONVI/MACSKCB
    built_on: str | None = None  # NGAYLAP, yyyyMMdd
    declared: int | None = None  # SOLUONGHOSO
    hoso_count: int = 0


@dataclass
class Record:
    """One record element of a table: its tag, 1-based position in the table and its child fields."""

    tag: str
    index: int
    fields: dict[str, str]

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


class Sink(Protocol):
    """What the reader reports to; called synchronously while the file is parsed."""

    def begin_table(self, hoso: int, kind: str, envelope: Envelope) -> Decision: ...

    def record(self, hoso: int, kind: str, record: Record) -> None: ...

    def end_table(self, hoso: int, kind: str, error: str | None) -> None: ...

    def end_hoso(self, hoso: int) -> None: ...


@lru_cache(maxsize=1024)
def local_name(tag: str) -> str:
    """`{ns}TAG`, `ns TAG` or `p:TAG` -> `TAG`."""
    return tag.rsplit("}", 1)[-1].rsplit(" ", 1)[-1].rsplit(":", 1)[-1]


class Base64Stream:
    """Decodes base64 text that arrives in arbitrary pieces (line breaks allowed) into bytes."""

    def __init__(self) -> None:
        self._rest = ""

    def feed(self, text: str) -> bytes:
        data = self._rest + "".join(text.split())
        cut = len(data) - len(data) % 4
        self._rest = data[cut:]
        return self._decode(data[:cut])

    def finish(self) -> bytes:
        rest, self._rest = self._rest, ""
        if rest:
            raise TableError("base64 content is truncated (length is not a multiple of 4)")
        return b""

    @staticmethod
    def _decode(text: str) -> bytes:
        if not text:
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TableError("content is not valid base64") from exc


class RecordParser:
    """Incremental parser of one inner table document; calls `on_record` for each record element.

    Plain expat callbacks, no element tree: only the fields of the record being read are held, so
    memory stays flat however long the table, and nothing else of the document is built.
    """

    def __init__(self, on_record: Callable[[Record], None], tags: frozenset[str] = RECORD_TAGS) -> None:
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = True
        parser.buffer_size = 1 << 16
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._data
        self._parser = parser
        self._on_record = on_record
        self._tags = tags
        self._depth = 0
        self._record: tuple[str, int] | None = None  # (tag, depth) of the record being read
        self._fields: dict[str, str] = {}
        self._field: str | None = None
        self._text: list[str] = []
        self._count = 0
        self._prefix = b""
        self._started = False
        self.bytes_fed = 0

    # -- expat callbacks -------------------------------------------------------------------------------
    def _start(self, name: str, _attrs: dict[str, str]) -> None:
        self._depth += 1
        if self._record is None:
            tag = local_name(name)
            if tag in self._tags:
                self._record, self._fields = (tag, self._depth), {}
        elif self._depth == self._record[1] + 1:
            self._field, self._text = local_name(name), []

    def _data(self, text: str) -> None:
        if self._field is not None:
            self._text.append(text)

    def _end(self, _name: str) -> None:
        record = self._record
        if record is not None:
            if self._field is not None and self._depth == record[1] + 1:
                self._fields[self._field] = "".join(self._text).strip()
                self._field = None
            elif self._depth == record[1]:
                self._count += 1
                self._record = None
                self._on_record(Record(record[0], self._count, self._fields))
        self._depth -= 1

    # -- feeding ---------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.bytes_fed += len(data)
        if not self._started:
            # Some exporters put blank lines or a BOM before `<?xml`; expat refuses both there.
            self._prefix += data
            if len(self._prefix) < _PREFIX_BYTES:
                return
            data, self._prefix, self._started = _strip_prefix(self._prefix), b"", True
        self._parse(data, final=False)

    def close(self) -> int:
        """Finish the document; return the number of records found. An empty table is fine."""
        if not self._started:
            data = _strip_prefix(self._prefix)
            self._started = True
            if not data.strip():
                return 0
            self._parse(data, final=False)
        self._parse(b"", final=True)
        return self._count

    def _parse(self, data: bytes, final: bool) -> None:
        try:
            self._parser.Parse(data, final)
        except expat.ExpatError as exc:
            raise TableError(
                f"inner XML is not well-formed (line {exc.lineno}, column {exc.offset})"
            ) from exc


def _strip_prefix(data: bytes) -> bytes:
    while True:
        stripped = data.lstrip(b" \t\r\n")
        if stripped.startswith(_UTF8_BOM):
            stripped = stripped[len(_UTF8_BOM) :]
        if stripped == data:
            return data
        data = stripped


@dataclass
class _Table:
    hoso: int
    kind: str
    decision: Decision
    decoder: Base64Stream = field(default_factory=Base64Stream)
    parser: RecordParser | None = None
    spool: IO[bytes] | None = None
    error: str | None = None
    pending: list[str] = field(default_factory=list)
    pending_size: int = 0


@dataclass
class _Hoso:
    index: int
    depth: int  # element depth of the HOSO (or, for an implicit HOSO, of the FILEHOSO's parent)
    implicit: bool
    deferred: list[_Table] = field(default_factory=list)


class _EnvelopeReader:
    """expat handlers for the envelope; keeps only the current HOSO and table."""

    def __init__(self, sink: Sink, spool_bytes: int) -> None:
        self.sink = sink
        self.spool_bytes = spool_bytes
        self.envelope = Envelope()
        self.depth = 0
        self.hoso: _Hoso | None = None
        self.table: _Table | None = None
        self.kind = ""
        self.capture: str | None = None
        self.text: list[str] = []

    # -- expat callbacks -------------------------------------------------------------------------------
    def start(self, name: str, _attrs: dict[str, str]) -> None:
        self.depth += 1
        tag = local_name(name)
        if tag == "HOSO" and self.hoso is None:
            self._open_hoso(self.depth, implicit=False)
        elif tag == "FILEHOSO":
            if self.hoso is None:
                self._open_hoso(self.depth - 1, implicit=True)
            self.kind = ""
        elif tag == "NOIDUNGFILE" and self.hoso is not None:
            self._open_table()
        elif tag in _ENVELOPE_FIELDS:
            self.capture, self.text = tag, []

    def data(self, text: str) -> None:
        if self.table is not None:
            self._table_text(text)
        elif self.capture is not None:
            self.text.append(text)

    def end(self, name: str) -> None:
        tag = local_name(name)
        if self.table is not None and tag == "NOIDUNGFILE":
            self._close_table()
        elif self.capture == tag:
            self._store(tag, "".join(self.text).strip())
            self.capture = None
        elif (
            self.hoso is not None and self.depth == self.hoso.depth and (self.hoso.implicit or tag == "HOSO")
        ):
            self._close_hoso()
        self.depth -= 1

    # -- HOSO and tables -------------------------------------------------------------------------------
    def _open_hoso(self, depth: int, implicit: bool) -> None:
        self.envelope.hoso_count += 1
        self.hoso = _Hoso(self.envelope.hoso_count, depth, implicit)

    def _close_hoso(self) -> None:
        hoso, self.hoso = self.hoso, None
        assert hoso is not None
        for table in hoso.deferred:
            self._replay(table)
        self.sink.end_hoso(hoso.index)

    def _open_table(self) -> None:
        assert self.hoso is not None
        decision = self.sink.begin_table(self.hoso.index, self.kind, self.envelope)
        table = _Table(self.hoso.index, self.kind, decision)
        if decision == "read":
            table.parser = RecordParser(self._deliver(table))
        elif decision == "defer":
            table.spool = tempfile.SpooledTemporaryFile(max_size=self.spool_bytes)  # noqa: SIM115 (closed on replay)
        self.table = table

    def _deliver(self, table: _Table) -> Callable[[Record], None]:
        return lambda record: self.sink.record(table.hoso, table.kind, record)

    def _table_text(self, text: str) -> None:
        table = self.table
        assert table is not None
        if table.decision == "skip" or table.error:
            return
        table.pending.append(text)
        table.pending_size += len(text)
        if table.pending_size >= TEXT_BATCH:
            self._flush(table)

    def _flush(self, table: _Table) -> None:
        """Decode and pass on the text gathered so far (bounded by TEXT_BATCH)."""
        text = "".join(table.pending)
        table.pending.clear()
        table.pending_size = 0
        if table.decision == "skip" or table.error or not text:
            return
        try:
            data = table.decoder.feed(text)
            if table.parser is not None:
                table.parser.feed(data)
            elif table.spool is not None:
                table.spool.write(data)
        except TableError as exc:
            table.error = str(exc)

    def _close_table(self) -> None:
        table, self.table = self.table, None
        assert table is not None and self.hoso is not None
        table.kind = table.kind or self.kind
        self._flush(table)
        if table.decision != "skip" and not table.error:
            try:
                tail = table.decoder.finish()
                if table.parser is not None:
                    table.parser.feed(tail)
                    table.parser.close()
                elif table.spool is not None:
                    table.spool.write(tail)
                    self.hoso.deferred.append(table)
                    return
            except TableError as exc:
                table.error = str(exc)
        if table.spool is not None:
            table.spool.close()
        self.sink.end_table(table.hoso, table.kind, table.error)

    def _replay(self, table: _Table) -> None:
        """A deferred table, offered again now that its HOSO has been read to the end."""
        assert table.spool is not None
        spool, table.spool = table.spool, None
        with spool:
            decision = self.sink.begin_table(table.hoso, table.kind, self.envelope)
            if decision != "skip":
                parser = RecordParser(self._deliver(table))
                spool.seek(0)
                try:
                    while chunk := spool.read(CHUNK_BYTES):
                        parser.feed(chunk)
                    parser.close()
                except TableError as exc:
                    table.error = str(exc)
        self.sink.end_table(table.hoso, table.kind, table.error)

    def _store(self, tag: str, value: str) -> None:
        if tag == "LOAIHOSO":
            self.kind = value.upper()
            if self.table is not None and not self.table.kind:
                self.table.kind = self.kind
        elif tag == "MACSKCB":
            self.envelope.facility = value or None
        elif tag == "NGAYLAP":
            self.envelope.built_on = value or None
        elif tag == "SOLUONGHOSO":
            self.envelope.declared = int(value) if value.isdigit() else None


def read_envelope(
    stream: IO[bytes], sink: Sink, *, chunk_bytes: int = CHUNK_BYTES, spool_bytes: int = SPOOL_BYTES
) -> Envelope:
    """Read a whole GIAMDINHHS file from `stream`, reporting tables and records to `sink`.

    Raises ContainerError when the envelope is not well-formed XML; HOSO completed before that point have
    already been reported (`sink.end_hoso`), the one being read has not.
    """
    reader = _EnvelopeReader(sink, spool_bytes)
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True  # base64 arrives in pieces of up to buffer_size, not line by line
    parser.buffer_size = 1 << 16
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    try:
        while chunk := stream.read(chunk_bytes):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        where = f"line {exc.lineno}, column {exc.offset}"
        current = reader.hoso.index if reader.hoso else None
        raise ContainerError(
            f"not well-formed XML ({expat.ErrorString(exc.code)}) at {where}", current
        ) from exc
    finally:
        if reader.table is not None and reader.table.spool is not None:
            reader.table.spool.close()
        for table in reader.hoso.deferred if reader.hoso else []:
            if table.spool is not None:
                table.spool.close()
    return reader.envelope
