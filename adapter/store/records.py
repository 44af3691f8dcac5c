"""Plain records read from and written to the store (no SQL here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapter.model import Resource


def now_iso() -> str:
    """UTC time in ISO 8601 with milliseconds: sortable as text, unambiguous across machines."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class NewMessage:
    """One received input (an HL7 message or a dropped file) about to enter the inbox."""

    kind: str
    source: str
    body: bytes
    sha256: str
    size: int
    position: int = 1
    truncated: bool = False
    sending_app: str | None = None
    sending_facility: str | None = None
    control_id: str | None = None
    message_type: str | None = None


@dataclass
class InboxItem:
    id: int
    kind: str
    source: str
    position: int
    received_at: str
    size: int
    sha256: str
    truncated: bool
    sending_app: str | None
    sending_facility: str | None
    control_id: str | None
    message_type: str | None
    status: str
    flag: str | None
    body: bytes | None = None


@dataclass
class OutboxRow:
    id: int
    inbox_id: int | None
    group_key: str
    resource_type: str
    resource_id: str
    body: str

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"

    def resource(self) -> Resource:
        return json.loads(self.body)


@dataclass
class Batch:
    """Outbox rows pushed together as one transaction bundle.

    `rows` are what the bundle carries (one per Type/id, the newest); `superseded` are older queued
    versions of the same resources, settled together with the rows they lost to.
    """

    rows: list[OutboxRow]
    superseded: list[OutboxRow] = field(default_factory=list)
    # older (by source time) than the version of the same resource already sent to the server: a
    # preliminary result replayed after its final; settled without being sent
    stale: list[OutboxRow] = field(default_factory=list)

    @property
    def row_ids(self) -> list[int]:
        return [r.id for r in self.rows]

    @property
    def groups(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.setdefault(row.group_key, None)
        return list(seen)


@dataclass
class DeadLetter:
    id: int
    inbox_id: int | None
    stage: str
    reason: str
    kind: str | None
    source: str | None
    control_id: str | None
    resources: int
    status: str
    created_at: str
    retried_at: str | None
    message_type: str | None = None
    size: int | None = None
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class SyncRun:
    id: int
    pid: int | None
    started_at: str
    finished_at: str | None
    status: str
    picked_up: int
    converted: int
    pushed: int
    dead: int
    left_queued: int
    error: str | None


@dataclass
class StoreCounts:
    """What `adapter status` shows: queue depths and the last runs."""

    inbox_pending: int
    outbox_pending: int
    dead_letters: int
    inbox_total: int
    last_successful_sync: str | None
    last_sync: SyncRun | None
    counters: dict[str, int]
