"""Structured, PHI-free logging: an event name plus ids and counts, as text or JSON lines.

Call `event(log, "mllp.stored", inbox_id=12, control_id="MSG0001")`. Only the fields passed are
written, and callers pass ids, counts, sizes, statuses and reasons we wrote ourselves: never names, MRNs,
values or message bytes. `setup_logging(json_lines=True)` writes one JSON object per line on stderr
(for journald, Loki, ELK); the default is one readable `key=value` line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({})))
_HANDLER_MARK = "_adapter_handler"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, event, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        data.update(_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            data["error"] = record.exc_info[0].__name__  # the type only: messages may quote content
        return json.dumps(data, ensure_ascii=False, default=str)


class KeyValueFormatter(logging.Formatter):
    """`2024-01-01T00:00:00Z info adapter.mllp mllp.stored inbox_id=12 control_id=MSG0001`."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = getattr(record, "event", None) or record.getMessage()
        pairs = " ".join(f"{k}={_text(v)}" for k, v in _fields(record).items())
        line = f"{ts} {record.levelname.lower()} {record.name} {name}" + (f" {pairs}" if pairs else "")
        if record.exc_info and record.exc_info[0] is not None:
            line += f" error={record.exc_info[0].__name__}"
        return line


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        return fields
    return {k: v for k, v in vars(record).items() if k not in _RESERVED and k not in ("event", "fields")}


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (not text or " " in text or '"' in text) else text


def event(log: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields (ids and counts only)."""
    if log.isEnabledFor(level):
        log.log(level, name, extra={"event": name, "fields": fields})


def setup_logging(json_lines: bool = False, level: int | str = logging.INFO) -> None:
    """Route the adapter's loggers to stderr, as JSON lines or key=value text (idempotent)."""
    root = logging.getLogger("adapter")
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonLinesFormatter() if json_lines else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
