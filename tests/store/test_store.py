"""The SQLite store: durability settings, queue transitions, batching, dead letters, runs, the lock."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from adapter.errors import ConfigError, LockedError
from adapter.store import NewMessage, Store, open_store
from adapter.store.lock import FileLock


def _message(n: int = 1, kind: str = "hl7") -> NewMessage:
    body = f"MSH|^~\\&|LIS|VH|||2024||ORU^R01|M{n}|P|2.5\r".encode()
    return NewMessage(
        kind=kind,
        source="mllp:127.0.0.1",
        body=body,
        sha256=f"sha{n}",
        size=len(body),
        control_id=f"M{n}",
        sending_app="LIS",
        sending_facility="VH",
    )


def _obs(n: int, value: float = 1.0) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"obs-{n}",
        "status": "final",
        "valueQuantity": {"value": value},
    }


@pytest.fixture()
def store(tmp_path):
    with open_store(tmp_path / "state") as s:
        yield s


def test_store_is_wal_full_sync_and_private(tmp_path, store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "store.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigError, match="newer"):
        Store(path)


def test_conversion_queues_resources_and_settles_the_item(store):
    with store.transaction():
        item_id = store.add_message(_message())
    (item,) = store.pending_items()
    assert item.id == item_id and item.body.startswith(b"MSH")
    assert store.record_conversion(item, [_obs(1), _obs(2)], {"converted": 1}) is None
    assert store.pending_items() == []
    assert store.item(item_id).status == "queued"
    batch = store.next_batch(10)
    assert [r.key for r in batch.rows] == ["Observation/obs-1", "Observation/obs-2"]
    store.mark_sent(batch.rows)
    assert store.item(item_id).status == "done"
    assert store.next_batch(10) is None


def test_conversion_with_rejections_and_nothing_to_send(store):
    with store.transaction():
        a = store.add_message(_message(1))
        b = store.add_message(_message(2))
        c = store.add_message(_message(3))
    items = store.pending_items()
    dl = store.record_conversion(items[0], [], {"rejected": 1}, ["mllp#1 M1: unknown unit"])
    store.record_conversion(items[1], [], {"not-enrolled": 1})
    dl2 = store.record_conversion(items[2], [_obs(3)], {"converted": 1, "rejected": 1}, ["row 2: bad date"])
    assert [store.item(i).status for i in (a, b, c)] == ["dead", "done", "queued"]
    letters = {d.id: d for d in store.dead_letters()}
    assert set(letters) == {dl, dl2}
    assert letters[dl].stage == "convert" and letters[dl].reason == "mllp#1 M1: unknown unit"
    assert letters[dl].control_id == "M1" and letters[dl].kind == "hl7"


def test_batches_keep_inputs_whole_and_cut_big_ones(store):
    with store.transaction():
        ids = [store.add_message(_message(n)) for n in range(4)]
    items = store.pending_items()
    for item, size in zip(items, (3, 3, 7, 1), strict=True):
        store.record_conversion(item, [_obs(f"{item.id}-{k}") for k in range(size)], {})
    sizes, groups, after = [], [], 0
    while (batch := store.next_batch(5, after)) is not None:
        sizes.append(len(batch.rows))
        groups.append(batch.groups)
        after = batch.rows[-1].id
    # 3 | 3 | 5 of the 7 | 2 of the 7 + 1 (the big input is cut in order; small ones never split)
    assert sizes == [3, 3, 5, 3]
    assert groups[:3] == [[f"inbox:{ids[0]}"], [f"inbox:{ids[1]}"], [f"inbox:{ids[2]}"]]
    assert groups[3] == [f"inbox:{ids[2]}", f"inbox:{ids[3]}"]


def test_a_batch_names_each_resource_once_newest_wins(store):
    with store.transaction():
        store.add_message(_message(1))
        store.add_message(_message(2))
    first, second = store.pending_items()
    store.record_conversion(first, [_obs(1, 5.0), _obs(2)], {})
    store.record_conversion(second, [_obs(1, 6.0)], {})  # a corrected result
    batch = store.next_batch(10)
    assert [(r.key, r.resource()["valueQuantity"]["value"]) for r in batch.rows] == [
        ("Observation/obs-2", 1.0),
        ("Observation/obs-1", 6.0),
    ]
    assert [r.resource()["valueQuantity"]["value"] for r in batch.superseded] == [5.0]
    store.mark_sent(batch.rows, batch.superseded)
    assert {s for (s,) in store.conn.execute("SELECT status FROM outbox")} == {"sent", "superseded"}
    assert store.item(first.id).status == "done" and store.item(second.id).status == "done"


def test_a_preliminary_replayed_after_its_final_does_not_win_the_batch(store):
    final = {**_obs(1, 6.0), "status": "final", "meta": {"lastUpdated": "2024-03-01T12:00:00+07:00"}}
    prelim = {**_obs(1, 5.0), "status": "preliminary", "meta": {"lastUpdated": "2024-03-01T04:30:00Z"}}
    with store.transaction():
        store.add_message(_message(1))
        store.add_message(_message(2))
    first, second = store.pending_items()
    store.record_conversion(first, [final], {})
    store.record_conversion(second, [prelim], {})  # arrives later, but was sent by the lab earlier
    batch = store.next_batch(10)
    assert [r.resource()["status"] for r in batch.rows] == ["final"]
    assert [r.resource()["status"] for r in batch.superseded] == ["preliminary"]


def test_a_preliminary_replayed_after_its_final_was_sent_is_settled_not_sent(store):
    def obs(status: str, value: float, when: str) -> dict:
        return {**_obs(1, value), "status": status, "meta": {"lastUpdated": when}}

    with store.transaction():
        for n in (1, 2, 3):
            store.add_message(_message(n))
    first, second, third = store.pending_items()
    store.record_conversion(first, [obs("final", 6.0, "2024-03-01T12:00:00+07:00")], {})
    batch = store.next_batch(10)
    store.mark_sent(batch.rows)  # an earlier run sent the final
    store.record_conversion(second, [obs("preliminary", 5.0, "2024-03-01T09:00:00+07:00")], {})
    store.record_conversion(third, [obs("preliminary", 5.5, "2024-03-01T10:00:00+07:00"), _obs(2)], {})
    batch = store.next_batch(10)
    assert [r.key for r in batch.rows] == ["Observation/obs-2"]
    assert sorted(r.resource()["valueQuantity"]["value"] for r in batch.stale) == [5.0, 5.5]
    assert batch.superseded == []
    store.mark_sent(batch.rows, batch.stale)
    assert store.next_batch(10) is None
    assert store.item(second.id).status == "done" and store.item(third.id).status == "done"
    # a correction (newer) after the final is sent as usual
    with store.transaction():
        store.add_message(_message(4))
    (fourth,) = store.pending_items()
    store.record_conversion(fourth, [obs("corrected", 7.0, "2024-03-02T08:00:00+07:00")], {})
    assert [r.resource()["status"] for r in store.next_batch(10).rows] == ["corrected"]


def test_push_dead_letter_and_retry_reconverts_the_item(store):
    with store.transaction():
        item_id = store.add_message(_message(1))
    (item,) = store.pending_items()
    store.record_conversion(item, [_obs(1), _obs(2)], {})
    batch = store.next_batch(10)
    store.mark_sent(batch.rows[:1])
    dl = store.mark_dead(batch.rows[1:], "Observation/obs-2: (422) error: bad code")
    assert store.item(item_id).status == "done"  # nothing left pending; the dead letter holds the rest
    (letter,) = store.dead_letters()
    assert (letter.id, letter.stage, letter.resources, letter.control_id) == (dl, "push", 1, "M1")
    assert store.retry_dead_letter(dl).startswith("input queued")
    assert store.dead_letters() == [] and store.dead_letters(include_retried=True)[0].status == "retried"
    assert [i.id for i in store.pending_items()] == [item_id]
    statuses = store.conn.execute("SELECT status FROM outbox ORDER BY id").fetchall()
    assert statuses == [("sent",)]  # the dead row is gone; conversion queues it afresh
    assert store.retry_dead_letter(dl) == "already retried"
    with pytest.raises(KeyError):
        store.retry_dead_letter(999)


def test_ingest_rows_without_inbox_item_are_requeued_as_they_are(store):
    assert store.queue_resources([_obs(1), _obs(2)], "ingest hl7", "ingest:1") == 2
    batch = store.next_batch(10)
    dl = store.mark_dead(batch.rows, "rejected")
    assert store.next_batch(10) is None
    assert store.dead_letter(dl).source == "ingest:1"
    assert store.retry_dead_letter(dl) == "resources queued for the next sync"
    assert len(store.next_batch(10).rows) == 2


def test_truncated_inputs_cannot_be_retried(store):
    message = _message(1)
    message.truncated = True
    with store.transaction():
        item_id = store.add_message(message, status="dead")
        dl = store.add_dead_letter(item_id, "receive", "too large", "hl7", "mllp:x", "M1")
    assert "not retried" in store.retry_dead_letter(dl)
    assert store.dead_letters()[0].truncated


def test_runs_and_counts(store):
    run = store.start_run()
    assert store.counts().last_sync.status == "running"
    again = store.start_run()  # the first was killed: recorded as interrupted
    assert store.conn.execute("SELECT status, error FROM sync_runs WHERE id = ?", (run,)).fetchone() == (
        "failed",
        "interrupted",
    )
    store.finish_run(again, "ok", pushed=5)
    with store.transaction():
        store.bump("received.not-enrolled", 3)
        store.bump("received.not-enrolled")
    counts = store.counts()
    assert counts.last_successful_sync == counts.last_sync.finished_at
    assert counts.last_sync.pushed == 5
    assert counts.counters == {"received.not-enrolled": 4}


def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.add_message(_message(1))
        raise RuntimeError("crash")
    assert store.pending_items() == []


def test_lock_is_exclusive_and_released_by_death(tmp_path):
    path = tmp_path / "sync.lock"
    with FileLock(path), pytest.raises(LockedError, match=r"another adapter sync is running \(pid"):
        FileLock(path).acquire()
    script = (
        "from adapter.store.lock import FileLock; import time; "
        f"FileLock({str(path)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(LockedError):
            FileLock(path).acquire()
        holder.kill()  # SIGKILL: the kernel drops the lock
        holder.wait()
        FileLock(path).acquire().release()
    finally:
        holder.kill()
        holder.wait()


def test_a_dropped_file_is_stored_and_read_back_in_chunks(store, tmp_path):
    import hashlib
    import io

    data = os.urandom(3 * 1024 * 1024 + 17)  # over the 1 MiB chunk, not a multiple of it
    path = tmp_path / "claims.xml"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    message = NewMessage(kind="bhyt", source="watch:bhyt/claims.xml", body=b"", sha256=digest, size=len(data))
    with store.transaction():
        inbox_id = store.add_file_message(message, path)
    (item,) = store.pending_items()
    assert (item.id, item.size, item.body) == (inbox_id, len(data), None)  # the body stays on disk
    out = io.BytesIO()
    assert store.copy_body(inbox_id, out) == len(data)
    assert out.getvalue() == data
    assert store.body(inbox_id) == data and store.item(inbox_id, with_body=True).body == data
    # a small message keeps travelling with its item
    with store.transaction():
        store.add_message(_message(7))
    assert [i.body is not None for i in store.pending_items()] == [False, True]


def test_a_file_that_changes_while_stored_is_not_half_stored(store, tmp_path):
    path = tmp_path / "growing.csv"
    path.write_bytes(b"mrn,drug\n" * 1000)
    message = NewMessage(kind="meds", source="watch:meds/growing.csv", body=b"", sha256="x", size=100)
    with pytest.raises(OSError, match="grew while it was being read"), store.transaction():
        store.add_file_message(message, path)
    assert store.pending_items() == []


def test_a_failed_commit_leaves_no_open_transaction(store, monkeypatch):
    class FailingCommit:
        """The store's connection, but COMMIT fails as on a full disk."""

        def __init__(self, conn):
            self._conn = conn

        def execute(self, sql, *args):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    real = store.conn
    store.conn = FailingCommit(real)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"), store.transaction():
        store.add_message(_message(1))
    store.conn = real
    assert not real.in_transaction
    with store.transaction():  # the next step works, and the failed one left nothing behind
        store.add_message(_message(2))
    assert [i.control_id for i in store.pending_items()] == ["M2"]


def test_the_lock_creates_a_private_state_directory(tmp_path):
    FileLock(tmp_path / "state" / "sync.lock").acquire().release()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
