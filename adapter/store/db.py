"""The durable state of the adapter: inbox, outbox, dead letters, sync runs (SQLite, WAL, FULL sync).

Every state transition is one SQLite transaction (`BEGIN IMMEDIATE ... COMMIT`), so a crash at any
moment leaves each input either before or after a step, never half-way. One `Store` is one connection
and belongs to one thread; several processes (listener, sync, ingest) share the file safely through
SQLite's locking.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from adapter.errors import ConfigError
from adapter.model import Resource, source_time, supersedes
from adapter.store.records import (
    Batch,
    DeadLetter,
    InboxItem,
    NewMessage,
    OutboxRow,
    StoreCounts,
    SyncRun,
    now_iso,
)
from adapter.store.schema import configure, migrate

STORE_FILE = "store.sqlite"

INLINE_BODY_BYTES = 1024 * 1024  # pending_items carries bodies up to this size
CHUNK_BYTES = 1024 * 1024

_BODY = "COALESCE((SELECT f.body FROM file_bodies f WHERE f.inbox_id = inbox.id), inbox.body)"
_INBOX_COLS = (
    "id, kind, source, position, received_at, size, sha256, truncated, sending_app, sending_facility, "
    "control_id, message_type, status, flag"
)
_DL_COLS = (
    "d.id, d.inbox_id, d.stage, d.reason, d.kind, d.source, d.control_id, d.resources, d.status, "
    "d.created_at, d.retried_at, i.message_type, i.size, i.truncated"
)


def store_path(state_dir: Path) -> Path:
    return Path(state_dir) / STORE_FILE


def open_store(state_dir: Path) -> Store:
    """Open (creating if needed) the store of a state directory; private to its owner (it holds PHI)."""
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"{state_dir}: cannot create the state directory: {exc.strerror}") from exc
    return Store(store_path(state_dir))


class Store:
    """One connection to the store file; use from a single thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        fresh = not self.path.exists()
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            if fresh:
                os.chmod(self.path, 0o600)
            configure(self.conn)
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: cannot open the store: {exc}") from exc
        self._depth = 0

    # -- plumbing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close cleanly; the last connection checkpoints the WAL into the main file."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable step (nested calls join the outer transaction)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            # a COMMIT that failed (disk full, I/O error) can leave the transaction open, holding the
            # write lock: end it, so this connection and every other process can go on
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.conn.in_transaction:  # SQLite may have rolled back by itself already
            self.conn.execute("ROLLBACK")

    def bump(self, name: str, by: int = 1) -> None:
        """Add to a named counter (counts without identifiers, e.g. messages dropped as not enrolled)."""
        self.conn.execute(
            "INSERT INTO counters(name, value) VALUES(?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def counters(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT name, value FROM counters ORDER BY name").fetchall())

    # -- inbox ------------------------------------------------------------------------------------
    def find_by_message_id(
        self, sending_app: str | None, sending_facility: str | None, control_id: str
    ) -> list[tuple[int, str, bytes | None]]:
        """(id, sha256, ack) of earlier messages with the same MSH-3, MSH-4 and MSH-10, oldest first."""
        return self.conn.execute(
            "SELECT id, sha256, ack FROM inbox WHERE control_id = ? AND sending_app IS ? "
            "AND sending_facility IS ? ORDER BY id",
            (control_id, sending_app, sending_facility),
        ).fetchall()

    def has_file(self, source: str, sha256: str) -> bool:
        """Whether this very file (same name, same bytes) was taken in already (crash before its move)."""
        row = self.conn.execute(
            "SELECT 1 FROM watched_files WHERE source = ? AND sha256 = ?", (source, sha256)
        ).fetchone()
        return row is not None

    def add_file(self, source: str, sha256: str, size: int, kind: str, messages: int) -> None:
        """Record a watched-folder file as taken in (inside the transaction storing its messages)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO watched_files(source, sha256, size, kind, messages, picked_at) "
            "VALUES(?,?,?,?,?,?)",
            (source, sha256, size, kind, messages, now_iso()),
        )

    def add_message(
        self,
        message: NewMessage,
        status: str = "pending",
        ack: bytes | None = None,
        flag: str | None = None,
    ) -> int:
        """Insert one input; call inside `transaction()` together with whatever goes with it."""
        now = now_iso()
        cursor = self.conn.execute(
            "INSERT INTO inbox(kind, source, position, received_at, size, sha256, body, truncated, "
            "sending_app, sending_facility, control_id, message_type, status, flag, ack, updated_at) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                message.kind,
                message.source,
                message.position,
                now,
                message.size,
                message.sha256,
                message.body,
                int(message.truncated),
                message.sending_app,
                message.sending_facility,
                message.control_id,
                message.message_type,
                status,
                flag,
                ack,
                now,
            ),
        )
        return int(cursor.lastrowid or 0)

    def set_ack(self, inbox_id: int, ack: bytes) -> None:
        self.conn.execute("UPDATE inbox SET ack = ? WHERE id = ?", (ack, inbox_id))

    def pending_items(self, limit: int = 100, after_id: int = 0) -> list[InboxItem]:
        """Inputs waiting for conversion, oldest first, with their bytes when small (a large file's body
        stays on disk: read it with `copy_body`, so a page of 100 MB claim files is not all in memory)."""
        rows = self.conn.execute(
            f"SELECT {_INBOX_COLS}, CASE WHEN size <= ? AND NOT EXISTS "
            "(SELECT 1 FROM file_bodies f WHERE f.inbox_id = inbox.id) THEN body END FROM inbox "
            "WHERE status = 'pending' AND id > ? ORDER BY id LIMIT ?",
            (INLINE_BODY_BYTES, after_id, limit),
        ).fetchall()
        return [_item(r[:-1], r[-1]) for r in rows]

    def add_file_message(self, message: NewMessage, path: Path) -> int:
        """Insert one input whose body is a file's bytes, copied in chunks (never whole in memory);
        `message.size` must be the file's size. Call inside `transaction()`."""
        inbox_id = self.add_message(dataclasses.replace(message, body=b""))
        self.conn.execute(
            "INSERT INTO file_bodies(inbox_id, body) VALUES(?, zeroblob(?))", (inbox_id, message.size)
        )
        with path.open("rb") as source, self.conn.blobopen("file_bodies", "body", inbox_id) as blob:
            copied = 0
            while chunk := source.read(CHUNK_BYTES):
                if copied + len(chunk) > message.size:
                    raise OSError(f"{path.name} grew while it was being read")
                blob.write(chunk)
                copied += len(chunk)
        if copied != message.size:
            raise OSError(f"{path.name} shrank while it was being read")
        return inbox_id

    def copy_body(self, inbox_id: int, target: BinaryIO) -> int:
        """Write an input's stored bytes to `target` in chunks; returns how many."""
        copied = 0
        in_files = self.conn.execute("SELECT 1 FROM file_bodies WHERE inbox_id = ?", (inbox_id,)).fetchone()
        table = "file_bodies" if in_files else "inbox"
        with self.conn.blobopen(table, "body", inbox_id, readonly=True) as blob:
            while chunk := blob.read(CHUNK_BYTES):
                target.write(chunk)
                copied += len(chunk)
        return copied

    def item(self, inbox_id: int, with_body: bool = False) -> InboxItem | None:
        row = self.conn.execute(
            f"SELECT {_INBOX_COLS}, {_BODY if with_body else 'NULL'} FROM inbox WHERE id = ?", (inbox_id,)
        ).fetchone()
        return _item(row[:-1], row[-1]) if row else None

    def record_conversion(
        self,
        item: InboxItem,
        resources: Sequence[Resource],
        counts: dict[str, int],
        problems: Sequence[str] = (),
    ) -> int | None:
        """Queue an item's resources and settle the item, atomically; problems become a dead letter.

        An item that produced nothing and has problems is dead; one that produced resources keeps them
        queued even if some of its rows were rejected (those are the dead letter). Returns the dead
        letter id, if any.
        """
        with self.transaction():
            self._queue(resources, origin="sync", group_key=f"inbox:{item.id}", inbox_id=item.id)
            status = "queued" if resources else "dead" if problems else "done"
            self.conn.execute(
                "UPDATE inbox SET status = ?, outcome = ?, updated_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (status, json.dumps(counts, sort_keys=True), now_iso(), item.id),
            )
            if problems:
                return self.add_dead_letter(
                    item.id, "convert", "; ".join(problems), item.kind, item.source, item.control_id
                )
        return None

    # -- outbox -----------------------------------------------------------------------------------
    def _queue(self, resources: Iterable[Resource], origin: str, group_key: str, inbox_id: int | None) -> int:
        now = now_iso()
        rows = [
            (
                inbox_id,
                origin,
                group_key,
                r["resourceType"],
                r["id"],
                json.dumps(r, ensure_ascii=False, separators=(",", ":")),
                now,
            )
            for r in resources
        ]
        self.conn.executemany(
            "INSERT INTO outbox(inbox_id, origin, group_key, resource_type, resource_id, body, status, "
            "created_at) VALUES(?,?,?,?,?,?,'pending',?)",
            rows,
        )
        return len(rows)

    def queue_resources(self, resources: Sequence[Resource], origin: str, group_key: str) -> int:
        """Queue resources that have no inbox item (e.g. `ingest` while the server is down)."""
        with self.transaction():
            return self._queue(resources, origin, group_key, None)

    def next_batch(self, bundle_size: int, after_id: int = 0) -> Batch | None:
        """The next pending rows for one bundle: whole input groups when they fit, oldest first.

        Rows of one input are queued in dependency order in one transaction, so they are contiguous;
        a group larger than a bundle is cut into bundle-size pieces in that order.
        """
        rows = [
            OutboxRow(*r)
            for r in self.conn.execute(
                "SELECT id, inbox_id, group_key, resource_type, resource_id, body FROM outbox "
                "WHERE status = 'pending' AND id > ? ORDER BY id LIMIT ?",
                (after_id, bundle_size + 1),
            ).fetchall()
        ]
        if not rows:
            return None
        if len(rows) > bundle_size:
            cut = bundle_size
            if rows[cut].group_key == rows[cut - 1].group_key:
                start = cut - 1
                while start > 0 and rows[start - 1].group_key == rows[cut].group_key:
                    start -= 1
                if start > 0:
                    cut = start
            rows = rows[:cut]
        batch = dedupe_batch(rows)
        stale = [r for r in batch.rows if self._older_than_sent(r)]
        if stale:  # with the even older versions of the same resources in this batch
            keys = {r.key for r in stale}
            batch.rows = [r for r in batch.rows if r.key not in keys]
            batch.stale = stale + [r for r in batch.superseded if r.key in keys]
            batch.superseded = [r for r in batch.superseded if r.key not in keys]
        return batch

    def _older_than_sent(self, row: OutboxRow) -> bool:
        """Whether the server already has a newer version (by source time) of this row's resource from
        us: a replayed preliminary must not overwrite the final sent in an earlier run."""
        resource = row.resource()
        if not source_time(resource):
            return False
        sent = self.conn.execute(
            "SELECT body FROM outbox WHERE resource_type = ? AND resource_id = ? AND status = 'sent' "
            "ORDER BY id DESC LIMIT 1",
            (row.resource_type, row.resource_id),
        ).fetchone()
        return sent is not None and not supersedes(resource, json.loads(sent[0]))

    def mark_sent(self, rows: Sequence[OutboxRow], superseded: Sequence[OutboxRow] = ()) -> None:
        """The server confirmed these rows: settle them and finish inputs with nothing left queued."""
        now = now_iso()
        with self.transaction():
            self.conn.executemany(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                [(now, r.id) for r in rows],
            )
            self.conn.executemany(
                "UPDATE outbox SET status = 'superseded', sent_at = ? WHERE id = ?",
                [(now, r.id) for r in superseded],
            )
            self._settle_items({r.inbox_id for r in (*rows, *superseded) if r.inbox_id is not None})

    def mark_dead(self, rows: Sequence[OutboxRow], reason: str) -> int:
        """The server refused these rows (one input's): one dead letter holds them and the reason."""
        first = rows[0]
        item = self.item(first.inbox_id) if first.inbox_id is not None else None
        with self.transaction():
            dl = self.add_dead_letter(
                first.inbox_id,
                "push",
                reason,
                item.kind if item else None,
                item.source if item else first.group_key,
                item.control_id if item else None,
                resources=len(rows),
            )
            self.conn.executemany(
                "UPDATE outbox SET status = 'dead', dead_letter_id = ?, attempts = attempts + 1 WHERE id = ?",
                [(dl, r.id) for r in rows],
            )
            if first.inbox_id is not None:
                self._settle_items({first.inbox_id})
        return dl

    def _settle_items(self, inbox_ids: Iterable[int]) -> None:
        for inbox_id in inbox_ids:
            left = self.conn.execute(
                "SELECT count(*) FROM outbox WHERE inbox_id = ? AND status = 'pending'", (inbox_id,)
            ).fetchone()[0]
            if not left:
                self.conn.execute(
                    "UPDATE inbox SET status = 'done', updated_at = ? WHERE id = ? AND status = 'queued'",
                    (now_iso(), inbox_id),
                )

    # -- dead letters -----------------------------------------------------------------------------
    def add_dead_letter(
        self,
        inbox_id: int | None,
        stage: str,
        reason: str,
        kind: str | None = None,
        source: str | None = None,
        control_id: str | None = None,
        resources: int = 0,
    ) -> int:
        cursor = self.conn.execute(
            "INSERT INTO dead_letters(inbox_id, stage, reason, kind, source, control_id, resources, "
            "status, created_at) VALUES(?,?,?,?,?,?,?,'open',?)",
            (inbox_id, stage, reason[:4000], kind, source, control_id, resources, now_iso()),
        )
        return int(cursor.lastrowid or 0)

    def dead_letters(self, include_retried: bool = False, limit: int = 1000) -> list[DeadLetter]:
        where = "" if include_retried else "WHERE d.status = 'open'"
        rows = self.conn.execute(
            f"SELECT {_DL_COLS} FROM dead_letters d LEFT JOIN inbox i ON i.id = d.inbox_id {where} "
            "ORDER BY d.id LIMIT ?",
            (limit,),
        ).fetchall()
        return [_dead_letter(r) for r in rows]

    def dead_letter(self, dl_id: int) -> DeadLetter | None:
        row = self.conn.execute(
            f"SELECT {_DL_COLS} FROM dead_letters d LEFT JOIN inbox i ON i.id = d.inbox_id WHERE d.id = ?",
            (dl_id,),
        ).fetchone()
        return _dead_letter(row) if row else None

    def retry_dead_letter(self, dl_id: int) -> str:
        """Put a dead letter's input back in line for the next sync; returns what was done.

        With an inbox item the item is converted again (a fixed roster or mapping then applies);
        resources queued by `ingest` are pushed again as they are. Truncated inputs cannot be retried.
        """
        letter = self.dead_letter(dl_id)
        if letter is None:
            raise KeyError(dl_id)
        if letter.status != "open":
            return "already retried"
        now = now_iso()
        with self.transaction():
            if letter.inbox_id is not None:
                if letter.truncated:
                    return "not retried: only the first bytes of this oversized message were kept"
                self.conn.execute(
                    "DELETE FROM outbox WHERE inbox_id = ? AND status IN ('pending', 'dead')",
                    (letter.inbox_id,),
                )
                self.conn.execute(
                    "UPDATE inbox SET status = 'pending', updated_at = ? WHERE id = ?", (now, letter.inbox_id)
                )
                self.conn.execute(
                    "UPDATE dead_letters SET status = 'retried', retried_at = ? "
                    "WHERE inbox_id = ? AND status = 'open'",
                    (now, letter.inbox_id),
                )
                return "input queued for conversion at the next sync"
            self.conn.execute(
                "UPDATE outbox SET status = 'pending', dead_letter_id = NULL WHERE dead_letter_id = ?",
                (dl_id,),
            )
            self.conn.execute(
                "UPDATE dead_letters SET status = 'retried', retried_at = ? WHERE id = ?", (now, dl_id)
            )
            return "resources queued for the next sync"

    def body(self, inbox_id: int) -> bytes | None:
        row = self.conn.execute(f"SELECT {_BODY} FROM inbox WHERE id = ?", (inbox_id,)).fetchone()
        return bytes(row[0]) if row else None

    # -- sync runs and status ---------------------------------------------------------------------
    def start_run(self) -> int:
        with self.transaction():
            # a run still 'running' was killed: say so instead of leaving it open forever
            self.conn.execute(
                "UPDATE sync_runs SET status = 'failed', error = 'interrupted', finished_at = ? "
                "WHERE status = 'running'",
                (now_iso(),),
            )
            cursor = self.conn.execute(
                "INSERT INTO sync_runs(pid, started_at, status) VALUES(?, ?, 'running')",
                (os.getpid(), now_iso()),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, error: str | None = None, **counts: int) -> None:
        sets = ", ".join(f"{k} = ?" for k in counts)
        with self.transaction():
            self.conn.execute(
                f"UPDATE sync_runs SET status = ?, error = ?, finished_at = ?{', ' + sets if sets else ''} "
                "WHERE id = ?",
                (status, error, now_iso(), *counts.values(), run_id),
            )

    def last_run(self, status: str | None = None) -> SyncRun | None:
        query = "SELECT * FROM sync_runs"
        args: tuple = ()
        if status:
            query += " WHERE status = ?"
            args = (status,)
        row = self.conn.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return SyncRun(*row) if row else None

    def counts(self) -> StoreCounts:
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        ok = self.last_run("ok")
        return StoreCounts(
            inbox_pending=one("SELECT count(*) FROM inbox WHERE status = 'pending'"),
            outbox_pending=one("SELECT count(*) FROM outbox WHERE status = 'pending'"),
            dead_letters=one("SELECT count(*) FROM dead_letters WHERE status = 'open'"),
            inbox_total=one("SELECT count(*) FROM inbox"),
            last_successful_sync=ok.finished_at if ok else None,
            last_sync=self.last_run(),
            counters=self.counters(),
        )


def dedupe_batch(rows: Sequence[OutboxRow]) -> Batch:
    """One row per Type/id (a transaction may not name a resource twice): the newest version by source
    time, the later row on a tie (see adapter.model.supersedes)."""
    last: dict[str, OutboxRow] = {}
    for row in rows:
        kept = last.get(row.key)
        if kept is None or supersedes(row.resource(), kept.resource()):
            last[row.key] = row
    keep = {r.id for r in last.values()}
    return Batch(rows=[r for r in rows if r.id in keep], superseded=[r for r in rows if r.id not in keep])


def _item(row: Sequence, body: bytes | None) -> InboxItem:
    values = list(row)
    values[7] = bool(values[7])
    return InboxItem(*values, body=bytes(body) if body is not None else None)


def _dead_letter(row: Sequence) -> DeadLetter:
    values = list(row)
    values[-1] = bool(values[-1])
    return DeadLetter(*values)
