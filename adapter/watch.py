"""The watched folder: files dropped by the HIS/LIS, taken into the inbox whole, then moved aside.

Layout of `sync.watch_dir` (created on first use):

    watch_dir/hl7/  meds/  ae/  bhyt/     drop files here; the folder names the kind
    watch_dir/*                           or here: the kind comes from the extension or the content
    watch_dir/.processing/<kind>/         claimed by a scan (moved out of the producer's way first)
    watch_dir/done/<kind>/                taken into the inbox (conversion problems: dead letters)
    watch_dir/failed/                     refused (empty, unknown kind, too large, nothing usable),
                                          each with a `<name>.reason.txt` beside it

A file being written is never read half-way: hidden files and names ending in `.part`, `.tmp`,
`.partial`, `.filepart`, `.crdownload` or `~` are skipped (the safe way to drop a file is to write it
under such a name and rename it when complete), and any other file is taken only once its size and
modification time are unchanged across two looks `settle_seconds` apart and it is at least that old.
A file is recorded in the store (name + SHA-256) in the same transaction as its contents, and moved
only after that commit; a crash in between makes the next scan find it recorded and just move it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adapter.errors import LockedError
from adapter.hl7.framing import split_messages
from adapter.ids import sha256_hex
from adapter.logs import event
from adapter.mllp.receive import ReceivePolicy, RosterGate, assess, commit_message
from adapter.store import NewMessage, Store
from adapter.store.lock import FileLock

log = logging.getLogger("adapter.watch")

KINDS = ("hl7", "meds", "ae", "bhyt")
SKIP_SUFFIXES = (".part", ".tmp", ".partial", ".filepart", ".crdownload", "~", ".swp", ".reason.txt")
_EXTENSIONS = {".hl7": "hl7", ".er7": "hl7", ".msg": "hl7", ".xml": "bhyt"}
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
FILE_BATCH_MESSAGES = 500  # HL7 messages of one dropped file committed together


@dataclass
class ScanResult:
    """What one scan did (counts only)."""

    files: int = 0
    messages: int = 0
    dropped: int = 0
    dead: int = 0
    duplicates: int = 0
    failed: int = 0
    waiting: int = 0  # files still being written (or too new): next time
    moved: list[str] = field(default_factory=list)


def ensure_layout(watch_dir: Path) -> None:
    for sub in (*KINDS, "done", "failed"):
        (watch_dir / sub).mkdir(parents=True, exist_ok=True)


def _skipped(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or name.lower().endswith(SKIP_SUFFIXES)


def candidates(watch_dir: Path) -> list[tuple[Path, str | None]]:
    """(file, kind from its folder or None) for every file that may be ready, oldest name first."""
    found: list[tuple[Path, str | None]] = []
    for kind in KINDS:
        folder = watch_dir / kind
        if folder.is_dir():
            found.extend((p, kind) for p in sorted(folder.iterdir()) if p.is_file() and not _skipped(p))
    found.extend((p, None) for p in sorted(watch_dir.iterdir()) if p.is_file() and not _skipped(p))
    return found


def sniff_kind(path: Path, head: bytes) -> str | None:
    """The kind of a file dropped at the top level: extension first, then its first bytes."""
    text = head.lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
    if text.startswith(b"MSH") or text.startswith((b"FHS", b"BHS")):
        return "hl7"
    kind = _EXTENSIONS.get(path.suffix.lower())
    if kind:
        return kind
    if path.suffix.lower() == ".csv":
        header = text.split(b"\n", 1)[0].decode("utf-8", "replace").lower()
        columns = {c.strip() for c in header.split(",")}
        if {"mrn", "drug"} <= columns:
            return "meds"
        if {"subject_id", "term"} <= columns:
            return "ae"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "bhyt"
    return None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def stable_files(
    watch_dir: Path,
    settle_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> tuple[list[tuple[Path, str | None]], int]:
    """Files whose size and mtime held still for `settle_seconds` (and are that old); + how many wait."""
    first = {p: (kind, _stamp(p)) for p, kind in candidates(watch_dir)}
    if not first:
        return [], 0
    sleep(settle_seconds)
    ready: list[tuple[Path, str | None]] = []
    waiting = 0
    for path, (kind, stamp) in first.items():
        again = _stamp(path)
        if stamp is None or again != stamp:
            waiting += again is not None
            continue
        if now() - again[1] / 1e9 < settle_seconds:
            waiting += 1
            continue
        ready.append((path, kind))
    return ready, waiting


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    os.replace(path, target)
    return target


def _fail(watch_dir: Path, path: Path, reason: str, result: ScanResult) -> None:
    target = _move(path, watch_dir / "failed")
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    result.failed += 1
    result.moved.append(str(target))
    event(log, "watch.failed", logging.WARNING, file=path.name, reason=reason)


def _file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def take_file(
    store: Store,
    path: Path,
    kind: str,
    data: bytes | None,
    policy: ReceivePolicy,
    gate: RosterGate,
    result: ScanResult,
) -> None:
    """Store one file's contents (HL7: one inbox item per message) and record the file, atomically.
    Other kinds are one item each, copied from the file in chunks (`data` None: a 100 MB claim file is
    never whole in memory); HL7 files are split into messages, from `data` (read if not given)."""
    source = f"watch:{kind}/{path.name}"
    if kind != "hl7":
        digest, size = _file_sha256(path)
        with store.transaction():
            if store.has_file(source, digest):
                result.duplicates += 1
                return
            store.add_file_message(
                NewMessage(kind=kind, source=source, body=b"", sha256=digest, size=size), path
            )
            store.add_file(source, digest, size, kind, 1)
            result.messages += 1
        return
    data = path.read_bytes() if data is None else data
    digest = sha256_hex(data)
    if store.has_file(source, digest):
        result.duplicates += 1
        return
    messages = split_messages(data)
    # Committed a batch at a time, so a large file never holds the store's write lock for long (the
    # listener commits between batches); the file is recorded with the last batch. A crash half-way makes
    # the next scan take the file again: the messages already stored are recognised as resends.
    for start in range(0, max(len(messages), 1), FILE_BATCH_MESSAGES):
        with store.transaction():
            for position, raw in enumerate(messages[start : start + FILE_BATCH_MESSAGES], start + 1):
                assessment = assess(raw, policy, gate)
                received = commit_message(store, raw, assessment, source, policy, position=position)
                if received.outcome == "dropped":
                    result.dropped += 1
                elif received.outcome == "dead":
                    result.dead += 1
                elif received.outcome == "resend":
                    result.duplicates += 1
                else:
                    result.messages += 1
            if start + FILE_BATCH_MESSAGES >= len(messages):
                store.add_file(source, digest, len(data), kind, len(messages))


PROCESSING = ".processing"  # files claimed by a scan: watch_dir/.processing/<kind or _>/<name>


def leftovers(watch_dir: Path) -> list[tuple[Path, str | None, bool]]:
    """Files a scan claimed but did not finish (a crash): taken first, they were settled already."""
    found = []
    root = watch_dir / PROCESSING
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            kind = folder.name if folder.name in KINDS else None
            found += [(p, kind, True) for p in sorted(folder.iterdir()) if p.is_file()]
    return found


def _claim(watch_dir: Path, path: Path, kind: str | None) -> Path | None:
    """Move a settled file out of the producer's way before reading it: a file re-exported under the
    same name meanwhile is a new file for the next scan, never moved to done/ unread. None when a file
    of that name is still being taken (the next scan will take this one)."""
    folder = watch_dir / PROCESSING / (kind or "_")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        return None
    os.replace(path, target)
    return target


def _take_one(
    watch_dir: Path,
    store: Store,
    path: Path,
    kind: str | None,
    claimed: bool,
    policy: ReceivePolicy,
    gate: RosterGate,
    max_file_bytes: int,
    result: ScanResult,
) -> None:
    if not claimed:
        taken = _claim(watch_dir, path, kind)
        if taken is None:
            result.waiting += 1
            return
        path = taken
    size = path.stat().st_size
    if size == 0:
        _fail(watch_dir, path, "empty file", result)
        return
    if size > max_file_bytes:
        _fail(watch_dir, path, f"too large: {size} bytes, limit {max_file_bytes}", result)
        return
    with path.open("rb") as handle:
        head = handle.read(4096)
    kind = kind or sniff_kind(path, head)
    if kind is None:
        _fail(watch_dir, path, "cannot tell the kind: put it in hl7/, meds/, ae/ or bhyt/", result)
        return
    usable = (result.messages, result.duplicates, result.dropped)
    dead = result.dead
    take_file(store, path, kind, None, policy, gate, result)
    result.files += 1
    if (result.messages, result.duplicates, result.dropped) == usable and result.dead > dead:
        _fail(watch_dir, path, "no usable HL7 message in the file (see dead letters)", result)
        return
    target = _move(path, watch_dir / "done" / kind)
    result.moved.append(str(target))
    event(log, "watch.taken", file=path.name, kind=kind, size=size)


def scan(
    watch_dir: Path,
    store: Store,
    policy: ReceivePolicy,
    gate: RosterGate,
    lock_path: Path,
    settle_seconds: float = 2.0,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    sleep: Callable[[float], None] = time.sleep,
) -> ScanResult:
    """Take every settled file into the inbox and move it to done/ or failed/ (one scanner at a time:
    a scan already running in another process makes this one return at once, with nothing done)."""
    result = ScanResult()
    watch_dir = Path(watch_dir)
    ensure_layout(watch_dir)
    try:
        lock = FileLock(lock_path, "watched-folder scan").acquire()
    except LockedError:
        return result
    try:
        try:
            ready = leftovers(watch_dir)
            settled, result.waiting = stable_files(watch_dir, settle_seconds, sleep)
        except OSError as exc:  # the folder itself is unreadable: say so, let the rest of sync go on
            event(log, "watch.unreadable", logging.ERROR, error=type(exc).__name__)
            return result
        ready += [(path, kind, False) for path, kind in settled]
        for path, kind, claimed in ready:
            try:
                _take_one(watch_dir, store, path, kind, claimed, policy, gate, max_file_bytes, result)
            except FileNotFoundError:
                continue  # taken by someone else meanwhile
            except OSError as exc:  # changed while being read, unreadable, cannot move: next scan
                result.waiting += 1
                event(log, "watch.retry-later", logging.WARNING, file=path.name, error=type(exc).__name__)
    finally:
        lock.release()
    return result
