"""The SQLite schema of the state store (inbox, outbox, dead letters, sync runs, counters).

One file, `<state_dir>/store.sqlite`, in WAL mode with `synchronous=FULL`: a COMMIT returns only after
the write-ahead log reached the disk, which is what lets the MLLP listener ACK right after it.
`PRAGMA user_version` carries the schema version; `migrate` brings an older file up to date.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                 -- hl7 | meds | ae | bhyt
    source TEXT NOT NULL,               -- 'mllp:<peer ip>' or 'watch:<kind>/<file name>'
    position INTEGER NOT NULL DEFAULT 1,-- message number within a file
    received_at TEXT NOT NULL,
    size INTEGER NOT NULL,              -- bytes received (may exceed len(body) when truncated)
    sha256 TEXT NOT NULL,
    body BLOB NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    sending_app TEXT,                   -- MSH-3, MSH-4, MSH-10 as sent (resend de-dup)
    sending_facility TEXT,
    control_id TEXT,
    message_type TEXT,                  -- MSH-9 code^trigger
    status TEXT NOT NULL,               -- pending | queued | done | dead
    flag TEXT,                          -- 'control-id-reused': MSH-3/4/10 seen before, other content
    ack BLOB,                           -- the ACK sent for it; a resend gets these very bytes
    outcome TEXT,                       -- JSON: conversion account counts
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_message_id ON inbox(control_id, sending_app, sending_facility);
CREATE INDEX IF NOT EXISTS inbox_status ON inbox(status, id);

CREATE TABLE IF NOT EXISTS watched_files (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,               -- 'watch:<kind>/<file name>'
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    kind TEXT NOT NULL,
    messages INTEGER NOT NULL,          -- inbox items it became (HL7 files: one per message)
    picked_at TEXT NOT NULL,
    UNIQUE(source, sha256)
);

CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    inbox_id INTEGER REFERENCES inbox(id),
    origin TEXT NOT NULL,               -- 'sync' or 'ingest <kind>'
    group_key TEXT NOT NULL,            -- resources of one input travel together when they fit a bundle
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    body TEXT NOT NULL,                 -- the resource as JSON
    status TEXT NOT NULL,               -- pending | sent | superseded | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    dead_letter_id INTEGER REFERENCES dead_letters(id),
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox(status, id);
CREATE INDEX IF NOT EXISTS outbox_inbox ON outbox(inbox_id);
CREATE INDEX IF NOT EXISTS outbox_group ON outbox(group_key);

CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    inbox_id INTEGER REFERENCES inbox(id),
    stage TEXT NOT NULL,                -- receive | convert | push
    reason TEXT NOT NULL,
    kind TEXT,
    source TEXT,
    control_id TEXT,
    resources INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,               -- open | retried
    created_at TEXT NOT NULL,
    retried_at TEXT
);
CREATE INDEX IF NOT EXISTS dead_letters_status ON dead_letters(status, id);

CREATE TABLE IF NOT EXISTS sync_runs (
    id INTEGER PRIMARY KEY,
    pid INTEGER,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,               -- running | ok | incomplete | failed
    picked_up INTEGER NOT NULL DEFAULT 0,
    converted INTEGER NOT NULL DEFAULT 0,
    pushed INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    left_queued INTEGER NOT NULL DEFAULT 0,
    error TEXT
);

CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def configure(conn: sqlite3.Connection) -> None:
    """Durability and concurrency settings every connection needs (WAL, FULL sync, busy wait)."""
    conn.execute("PRAGMA busy_timeout = 30000")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch the store to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def migrate(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema; newer files than this code are refused."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"store schema version {version} is newer than this adapter understands ({SCHEMA_VERSION})"
        )
    if version < 1:
        conn.executescript(f"BEGIN IMMEDIATE;{_V1}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
    # idempotent additions, so files made before them get them too:
    # the version last sent of a resource (for stale replays)
    conn.execute("CREATE INDEX IF NOT EXISTS outbox_key ON outbox(resource_type, resource_id, status)")
    # bodies of files taken from the watched folder (inbox.body is then empty): the blob is the row's
    # last column, so SQLite writes and reads it in chunks (a 100 MB claim file never whole in memory)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS file_bodies ("
        "inbox_id INTEGER PRIMARY KEY REFERENCES inbox(id), body BLOB NOT NULL)"
    )
