"""`adapter sync`, the cron job: watched folder -> inbox -> convert -> outbox -> FHIR server.

Safe to run at any time and never concurrently with itself (an flock on `<state_dir>/sync.lock`; a
second run raises LockedError at once). Every step is a store transaction, so a run killed at any
moment loses nothing and the next run carries on; re-pushing after a crash is harmless because every
write is a PUT by deterministic id.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from adapter.converters import ConvertContext
from adapter.errors import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, AdapterError
from adapter.fhir.client import FhirClient
from adapter.logs import event
from adapter.mllp.ack import AckIdentity
from adapter.mllp.receive import ReceivePolicy, RosterGate
from adapter.model import Resource
from adapter.push import dedupe, dependency_order
from adapter.settings import Settings
from adapter.store import Store, open_store
from adapter.store.lock import FileLock
from adapter.sync.convert import ConvertReport, convert_pending
from adapter.sync.push import OutboxPusher, PushReport
from adapter.watch import ScanResult, scan

log = logging.getLogger("adapter.sync")

LOCK_FILE = "sync.lock"
WATCH_LOCK_FILE = "watch.lock"


@dataclass
class SyncReport:
    """What one run did (counts only), and how it ended."""

    run_id: int = 0
    watch: ScanResult | None = None
    convert: ConvertReport = field(default_factory=ConvertReport)
    push: PushReport = field(default_factory=PushReport)
    new_dead_letters: int = 0
    inbox_pending: int = 0
    outbox_pending: int = 0
    error: str | None = None
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Everything this run found was converted and pushed or dead-lettered (the server answered)."""
        return not self.error and not self.push.unreachable

    @property
    def exit_code(self) -> int:
        """0 all done; 1 done but inputs were rejected (dead letters); 2 could not finish (kept queued)."""
        if self.error or self.push.unreachable:
            return EXIT_USAGE
        return EXIT_REJECTED if self.new_dead_letters else EXIT_OK

    def as_json(self) -> dict:
        data = asdict(self)
        if data["watch"]:
            data["watch"].pop("moved", None)
        data["complete"] = self.complete
        data["exit_code"] = self.exit_code
        return data


def receive_policy(settings: Settings) -> ReceivePolicy:
    """The listener's (and the watched folder's) acceptance rules from the settings."""
    sync = settings.sync
    types = sync.accept_message_types
    kwargs: dict = {
        "max_bytes": sync.max_message_bytes,
        "message_types": frozenset(t.strip().upper() for t in types) if types is not None else None,
        "processing_ids": frozenset(p.strip().upper() for p in sync.accept_processing_ids),
    }
    study = settings.study
    kwargs["identity"] = AckIdentity("ADAPTER", study.site.id)
    kwargs["tz"] = study.tz
    return ReceivePolicy(**kwargs)


def queue_unsent(settings: Settings, resources: Sequence[Resource], origin: str) -> int:
    """Keep resources that could not be pushed (server down) in the outbox for the next `adapter sync`."""
    ordered = dependency_order(dedupe(resources))
    with open_store(Path(settings.state_dir)) as store:
        return store.queue_resources(ordered, origin, f"{origin}:{uuid.uuid4().hex[:12]}")


def roster_gate(settings: Settings, override: Path | None = None) -> RosterGate:
    """The roster check of received messages: `--roster` if given, else the kept roster (re-read when
    `adapter enroll` replaces it); no roster file means every message is stored."""
    from adapter.roster import load_roster

    return RosterGate(override or settings.roster_path, lambda p: load_roster(p, settings.study))


def run_sync(
    settings: Settings,
    context: Callable[[], ConvertContext],
    client: Callable[[], FhirClient],
    *,
    roster_override: Path | None = None,
    budget_seconds: float | None = None,
    settle_seconds: float | None = None,
    on_convert: Callable[[int], None] | None = None,
    on_push: Callable[[int], None] | None = None,
) -> SyncReport:
    """One sync run under the lock (see the module docstring); never raises for a server outage."""
    started = time.monotonic()
    budget = settings.sync.retry_budget_seconds if budget_seconds is None else budget_seconds
    state_dir = Path(settings.state_dir)
    report = SyncReport()
    with FileLock(state_dir / LOCK_FILE, "adapter sync"), open_store(state_dir) as store:
        report.run_id = store.start_run()
        first_new_dl = store.conn.execute("SELECT coalesce(max(id), 0) FROM dead_letters").fetchone()[0]
        event(log, "sync.started", run_id=report.run_id)
        failure: AdapterError | None = None
        try:
            watch_dir = settings.sync.watch_dir
            if watch_dir is not None:
                report.watch = scan(
                    Path(watch_dir),
                    store,
                    receive_policy(settings),
                    roster_gate(settings, roster_override),
                    state_dir / WATCH_LOCK_FILE,
                    settle_seconds=(
                        settings.sync.watch_settle_seconds if settle_seconds is None else settle_seconds
                    ),
                )
            try:
                report.convert = convert_pending(store, context, state_dir, on_convert)
            except AdapterError as exc:  # no roster, converter missing: still push what is queued
                failure = exc
            # the retry budget is the server's: it starts when pushing does
            deadline = time.monotonic() + budget
            pusher = OutboxPusher(store, client(), settings.sync.bundle_size, deadline, on_rows=on_push)
            report.push = pusher.run()
            if failure is not None:
                raise failure
        except BaseException as exc:
            report.error = str(exc) if isinstance(exc, AdapterError) else type(exc).__name__
            _finish(store, report, first_new_dl, started, "failed")
            raise
        _finish(store, report, first_new_dl, started, "ok" if report.complete else "incomplete")
    return report


def _finish(store: Store, report: SyncReport, first_new_dl: int, started: float, status: str) -> None:
    counts = store.counts()
    report.inbox_pending = counts.inbox_pending
    report.outbox_pending = counts.outbox_pending
    report.new_dead_letters = store.conn.execute(
        "SELECT count(*) FROM dead_letters WHERE id > ? AND status = 'open'", (first_new_dl,)
    ).fetchone()[0]
    report.seconds = round(time.monotonic() - started, 3)
    if status == "ok" and not report.complete:
        status = "incomplete"
    store.finish_run(
        report.run_id,
        status,
        error=report.error or report.push.unreachable,
        picked_up=report.watch.files if report.watch else 0,
        converted=report.convert.items,
        pushed=report.push.pushed,
        dead=report.new_dead_letters,
        left_queued=report.outbox_pending,
    )
    event(
        log,
        "sync.finished",
        run_id=report.run_id,
        status=status,
        converted=report.convert.items,
        pushed=report.push.pushed,
        dead_letters=report.new_dead_letters,
        left_queued=report.outbox_pending,
        seconds=report.seconds,
    )
