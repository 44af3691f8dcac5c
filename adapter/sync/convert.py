"""Inbox -> outbox: convert each pending input and queue its resources in the same transaction.

Each item is converted outside any transaction (the converter is pure), then one transaction queues the
resulting resources in dependency order and settles the item (queued / done / dead) with a dead letter
naming every rejected message or row. A crash before that commit leaves the item pending; after it, the
item is never converted again unless a dead letter is retried.
"""

from __future__ import annotations

import importlib
import io
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from adapter.converters import ConvertContext, converter
from adapter.errors import AdapterError, ConfigError
from adapter.hl7.framing import split_messages
from adapter.logs import event
from adapter.model import Conversion, Resource
from adapter.push import dedupe, dependency_order
from adapter.store import InboxItem, Store

log = logging.getLogger("adapter.sync")


@dataclass
class ConvertReport:
    items: int = 0
    queued: int = 0  # items that produced resources
    empty: int = 0  # items with nothing to send (e.g. every message about a stranger)
    dead: int = 0  # items with at least one rejected message/row (dead letter)
    resources: int = 0
    seconds: float = 0.0


def _file_name(item: InboxItem) -> str:
    name = item.source.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name or f"inbox-{item.id}"


def _hl7_message_converter() -> Callable | None:
    try:
        module = importlib.import_module("adapter.hl7.convert")
    except ModuleNotFoundError as exc:
        if exc.name != "adapter.hl7.convert":
            raise
        return None
    return getattr(module, "convert_message", None)


def convert_item(
    item: InboxItem,
    ctx: ConvertContext,
    work_dir: Path,
    copy_body: Callable[[int, BinaryIO], int] | None = None,
) -> Conversion:
    """The converter for the item's kind applied to its stored bytes (a large body, not loaded with the
    item, is streamed from the store by `copy_body`)."""
    if item.body is None and item.kind == "hl7" and copy_body is not None:
        buffer = io.BytesIO()
        copy_body(item.id, buffer)
        item.body = buffer.getvalue()
    if item.body is None and copy_body is None:
        raise ValueError(f"inbox item {item.id} has no body and no store to read it from")
    if item.kind == "hl7":
        assert item.body is not None
        convert_message = _hl7_message_converter()
        if convert_message is not None:
            conversion = Conversion()
            messages = split_messages(item.body) or [item.body]
            for offset, raw in enumerate(messages):
                conversion.extend(convert_message(raw, ctx, item.source, item.position + offset))
            return conversion
    # file converters read paths: hand them the stored bytes under the original name, in the (private)
    # state directory rather than /tmp, and remove the copy at once
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".convert-") as tmp:
        path = Path(tmp) / _file_name(item)
        if item.body is not None:
            path.write_bytes(item.body)
        else:
            assert copy_body is not None
            with path.open("wb") as handle:
                copy_body(item.id, handle)
        return converter(item.kind)([path], ctx)


def _problems(item: InboxItem, conversion: Conversion) -> list[str]:
    out = []
    for account in conversion.rejected:
        ident = f" {account.control_id}" if account.control_id else ""
        out.append(f"{item.source}#{account.index}{ident}: {account.reason}")
    return out


def _convert(
    item: InboxItem,
    ctx: ConvertContext,
    work_dir: Path,
    copy_body: Callable[[int, BinaryIO], int] | None = None,
) -> tuple[list[Resource], dict, list[str]]:
    """(resources in dependency order, account counts, problems) of one item; a converter crash is a
    problem of that item, a ConfigError (missing converter, broken mapping) stops the run."""
    try:
        conversion = convert_item(item, ctx, work_dir, copy_body)
    except ConfigError:
        raise
    except Exception as exc:  # a converter bug must not block the queue: dead-letter the item
        reason = f"converter failed: {type(exc).__name__}"
        if isinstance(exc, AdapterError):
            reason += f": {exc}"
        event(log, "sync.convert-failed", logging.ERROR, inbox_id=item.id, error=type(exc).__name__)
        return [], {"rejected": 1}, [reason]
    resources: list[Resource] = dependency_order(dedupe(conversion.resources))
    return resources, conversion.counts(), _problems(item, conversion)


def convert_pending(
    store: Store,
    context: Callable[[], ConvertContext],
    work_dir: Path,
    on_item: Callable[[int], None] | None = None,
    page: int = 50,
) -> ConvertReport:
    """Convert every pending inbox item, oldest first (the context is built only if there is work).

    A page of items is converted, then recorded in one transaction (one fsync for the page instead of
    one per item): each item still moves atomically, and a crash leaves the whole page pending.
    """
    report = ConvertReport()
    started = time.monotonic()
    ctx: ConvertContext | None = None
    after = 0
    while True:
        items = store.pending_items(limit=page, after_id=after)
        if not items:
            report.seconds = round(time.monotonic() - started, 3)
            return report
        if ctx is None:
            ctx = context()
        results = [(item, *_convert(item, ctx, work_dir, store.copy_body)) for item in items]
        after = items[-1].id
        with store.transaction():
            for item, resources, counts, problems in results:
                dl = store.record_conversion(item, resources, counts, problems)
                report.items += 1
                report.resources += len(resources)
                report.queued += bool(resources)
                report.empty += not resources and not problems
                report.dead += dl is not None
                event(
                    log,
                    "sync.converted",
                    logging.DEBUG,
                    inbox_id=item.id,
                    kind=item.kind,
                    resources=len(resources),
                    rejected=len(problems),
                    dead_letter=dl,
                )
        if on_item:
            on_item(len(items))
