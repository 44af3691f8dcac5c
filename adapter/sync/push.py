"""Outbox -> FHIR server: transaction bundles, each row settled only after the server confirmed it.

Retries are the FHIR client's (429/5xx/connection errors with exponential backoff, full jitter and
Retry-After, adapter/fhir/retry.py); this module only gives every request the time left in the run's
budget, so the whole push ends within `retry_budget_seconds` of trying. When the server stays down the
rows stay pending for the next run.

A bundle the server refuses (4xx) is atomic: nothing of it was written. The rows the server names (or
that refer to a target it says is missing) become dead letters with its OperationOutcome text and the
rest is sent again; when it names none, the bundle is split in halves until the refused rows are
isolated. 401/403 and refusals of anything but the bundle itself (e.g. /metadata at a wrong base URL)
are configuration problems, never a reason to dead-letter data: the push stops, the rows stay.
A crash between the server's answer and the local commit makes the next run send the rows again: PUT by
deterministic id, so the server ends up with the same resources, not doubles.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from adapter.errors import ServerRejected, ServerUnreachable
from adapter.fhir.client import FhirClient, TransactionRejected
from adapter.logs import event
from adapter.store import OutboxRow, Store

log = logging.getLogger("adapter.sync")

_REF = re.compile(r"\b([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})\b")
_CONFIG_STATUSES = frozenset({401, 403, 405, 406, 407, 415})
_CONFLICT_RETRIES = 3


@dataclass
class PushReport:
    bundles: int = 0
    pushed: int = 0
    superseded: int = 0
    dead: int = 0
    dead_letters: int = 0
    unreachable: str | None = None  # why pushing stopped with rows left (server down, budget spent)
    seconds: float = 0.0


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            if isinstance(value, dict | list):
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def culprits(exc: ServerRejected, rows: list[OutboxRow]) -> list[OutboxRow]:
    """The rows a refusal is about: the entry the server names, or every row referring to a target the
    server says is missing (a target that is not itself in the bundle)."""
    keys = {r.key: r for r in rows}
    named = getattr(exc, "resource", None)
    if named in keys:
        return [keys[named]]
    mentioned = {f"{t}/{i}" for t, i in _REF.findall(exc.outcome or str(exc))}
    direct = [keys[m] for m in mentioned if m in keys]
    if direct:
        return direct
    missing = mentioned - set(keys)
    if not missing:
        return []
    return [r for r in rows if missing & set(_references(r.resource()))]


def _halves(rows: list[OutboxRow]) -> tuple[list[OutboxRow], list[OutboxRow]]:
    """Split at a group boundary when the rows span several inputs, else in the middle."""
    groups: list[list[OutboxRow]] = []
    for row in rows:
        if groups and groups[-1][0].group_key == row.group_key:
            groups[-1].append(row)
        else:
            groups.append([row])
    if len(groups) > 1:
        mid = len(groups) // 2
        return [r for g in groups[:mid] for r in g], [r for g in groups[mid:] for r in g]
    mid = len(rows) // 2
    return rows[:mid], rows[mid:]


class OutboxPusher:
    """Pushes the pending outbox of one store through one client (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        client: FhirClient,
        bundle_size: int,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_rows: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.bundle_size = bundle_size
        self.deadline = deadline
        self.clock = clock
        self.sleep = sleep
        self.on_rows = on_rows
        self.report = PushReport()

    def _budget(self) -> None:
        left = max(0.0, self.deadline - self.clock())
        self.client.retry = dataclasses.replace(self.client.retry, budget_seconds=left)

    def run(self) -> PushReport:
        started = self.clock()
        try:
            self._run()
        finally:
            self.report.seconds = round(self.clock() - started, 3)
        return self.report

    def _run(self) -> None:
        after = 0
        while True:
            batch = self.store.next_batch(self.bundle_size, after)
            if batch is None:
                return
            after = max(r.id for r in (*batch.rows, *batch.superseded, *batch.stale))
            if batch.stale:
                self.store.mark_sent([], batch.stale)
                self.report.superseded += len(batch.stale)
                event(log, "sync.stale-skipped", resources=len(batch.stale))
                if self.on_rows:
                    self.on_rows(len(batch.stale))
            if not batch.rows:
                continue
            older: dict[str, list[OutboxRow]] = defaultdict(list)
            for row in batch.superseded:
                older[row.key].append(row)
            try:
                self._push(batch.rows, older)
            except ServerUnreachable as exc:
                self.report.unreachable = str(exc)
                event(log, "sync.server-unreachable", logging.WARNING, pushed=self.report.pushed)
                return

    def _send(self, rows: list[OutboxRow]) -> None:
        self._budget()
        self.client.transaction([r.resource() for r in rows], chunk_size=len(rows))
        self.report.bundles += 1

    def _push(self, rows: list[OutboxRow], older: dict[str, list[OutboxRow]]) -> None:
        dead: dict[str, list[tuple[OutboxRow, str]]] = defaultdict(list)
        try:
            self._bisect(rows, older, dead)
        finally:  # even when the server goes away half-way, what it refused is settled
            self._bury(dead, older)

    def _bisect(
        self,
        rows: list[OutboxRow],
        older: dict[str, list[OutboxRow]],
        dead: dict[str, list[tuple[OutboxRow, str]]],
    ) -> None:
        todo: list[list[OutboxRow]] = [rows]
        conflicts = 0
        while todo:
            part = todo.pop(0)
            try:
                self._send(part)
            except ServerRejected as exc:
                status = exc.status or 0
                if not isinstance(exc, TransactionRejected) or status in _CONFIG_STATUSES:
                    raise  # credentials, endpoint, capabilities: a configuration problem, not bad data
                if status == 409 and conflicts < _CONFLICT_RETRIES:
                    conflicts += 1  # a concurrent write of the same resource: try again shortly
                    self.sleep(0.5 * conflicts)
                    todo.insert(0, part)
                    continue
                reason = exc.outcome or str(exc)
                found = [] if status == 413 else culprits(exc, part)
                if not found and len(part) == 1:
                    found = part
                if found:
                    ids = {r.id for r in found}
                    for row in found:
                        dead[row.group_key].append((row, f"{row.key}: ({status}) {reason}"))
                    rest = [r for r in part if r.id not in ids]
                    if rest:
                        todo.insert(0, rest)
                    continue
                first, second = _halves(part)
                todo[:0] = [first, second]
                continue
            superseded = [o for r in part for o in older.pop(r.key, [])]
            self.store.mark_sent(part, superseded)
            self.report.pushed += len(part)
            self.report.superseded += len(superseded)
            if self.on_rows:
                self.on_rows(len(part) + len(superseded))

    def _bury(self, dead: dict[str, list[tuple[OutboxRow, str]]], older: dict[str, list[OutboxRow]]) -> None:
        """One dead letter per input for the rows the server refused, with its reasons."""
        for entries in dead.values():
            dead_rows = [row for row, _ in entries]
            reason = "; ".join(text for _, text in entries[:20])
            if len(entries) > 20:
                reason += f"; and {len(entries) - 20} more"
            dl = self.store.mark_dead(dead_rows, reason)
            superseded = [o for r in dead_rows for o in older.pop(r.key, [])]
            if superseded:
                self.store.mark_sent([], superseded)
            self.report.dead += len(dead_rows)
            self.report.dead_letters += 1
            event(log, "sync.dead-letter", logging.WARNING, dead_letter=dl, resources=len(dead_rows))
            if self.on_rows:
                self.on_rows(len(dead_rows) + len(superseded))
