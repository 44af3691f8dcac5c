"""The MLLP listener: many concurrent clients, persistent connections, durable commit before each ACK.

One thread per connection reads frames and decides what each message is (`receive.assess`); a single
writer thread commits the messages of all connections in small groups (one `BEGIN IMMEDIATE ... COMMIT`
with `synchronous=FULL` for whatever arrived meanwhile: group commit), and only then is each ACK written
to its socket. So an ACK always means "on disk", and ten senders share one fsync instead of queueing for
ten. If the store fails, the connection is closed without an ACK: the sender keeps the message and
resends it, rather than believing a message that was never stored.

Limits: `max_bytes` per message (larger ones are read to their end, answered AR and kept, truncated, in
dead letters), `idle_timeout` per connection, `max_connections` at once. `request_stop()` (SIGTERM) stops
accepting, lets each connection finish the message it is receiving (up to `grace` seconds), answers it,
then drains the writer and closes the store.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from adapter.logs import event
from adapter.mllp.ack import AckDecision, ack_wanted
from adapter.mllp.framing import Frame, FrameReader, Oversize, Truncated, frame
from adapter.mllp.receive import Assessment, Received, ReceivePolicy, RosterGate, assess, commit_message
from adapter.store import Store

log = logging.getLogger("adapter.mllp")

_TICK = 0.25  # seconds between checks of the stop flag while a socket is quiet


@dataclass
class _Job:
    raw: bytes
    assessment: Assessment
    source: str
    size: int
    truncated: bool
    future: Future


class InboxWriter(threading.Thread):
    """The one thread that writes received messages, in groups, each group one durable transaction."""

    def __init__(self, open_store: Callable[[], Store], policy: ReceivePolicy, max_group: int = 256) -> None:
        super().__init__(name="mllp-writer", daemon=True)
        self._open_store = open_store
        self.policy = policy
        self.max_group = max_group
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.commits = 0

    def start_and_wait(self) -> None:
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def submit(self, raw: bytes, assessment: Assessment, source: str, size: int, truncated: bool) -> Future:
        future: Future = Future()
        self._queue.put(_Job(raw, assessment, source, size, truncated, future))
        return future

    def stop(self) -> None:
        """Commit what is queued, then end (the store is closed by the thread itself)."""
        self._queue.put(None)
        self.join()

    def run(self) -> None:
        try:
            store = self._open_store()
        except BaseException as exc:  # reported by start_and_wait
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                jobs = [first]
                while len(jobs) < self.max_group:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    jobs.append(nxt)
                self._commit(store, jobs)
        finally:
            store.close()

    def _commit(self, store: Store, jobs: list[_Job]) -> None:
        results: list[tuple[_Job, Received | BaseException]] = []
        try:
            with store.transaction():
                for job in jobs:
                    try:
                        received = commit_message(
                            store,
                            job.raw,
                            job.assessment,
                            job.source,
                            self.policy,
                            size=job.size,
                            truncated=job.truncated,
                        )
                        results.append((job, received))
                    except Exception as exc:  # one bad message must not sink the group
                        if _is_db_error(exc):
                            raise
                        log.exception("mllp.commit-failed", extra={"event": "mllp.commit-failed"})
                        results.append((job, exc))
        except Exception as exc:
            event(log, "mllp.store-failed", logging.ERROR, messages=len(jobs), error=type(exc).__name__)
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.commits += 1
        for job, result in results:  # only now, after COMMIT, may any ACK go out
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)


def _is_db_error(exc: BaseException) -> bool:
    import sqlite3

    return isinstance(exc, sqlite3.Error)


class MllpServer:
    """A threaded MLLP server in front of the store (see the module docstring)."""

    def __init__(
        self,
        store_path: Path,
        policy: ReceivePolicy,
        gate: RosterGate,
        host: str = "127.0.0.1",
        port: int = 2575,
        idle_timeout: float = 300.0,
        max_connections: int = 100,
        grace: float = 10.0,
    ) -> None:
        self.store_path = Path(store_path)
        self.policy = policy
        self.gate = gate
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.grace = grace
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped_at = 0.0
        self._sock: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._accept_thread: threading.Thread | None = None
        self.writer = InboxWriter(lambda: Store(self.store_path), policy)

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> tuple[str, int]:
        """Open the store and the listening socket, start accepting; returns (host, port)."""
        self.writer.start_and_wait()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            self.writer.stop()
            raise
        sock.listen(128)
        sock.settimeout(_TICK)
        self._sock = sock
        self._accept_thread = threading.Thread(target=self._accept_loop, name="mllp-accept", daemon=True)
        self._accept_thread.start()
        host, port = self.address
        event(log, "mllp.listening", host=host, port=port, max_bytes=self.policy.max_bytes)
        return host, port

    def request_stop(self) -> None:
        """Stop accepting; connections finish the message in flight (safe from a signal handler)."""
        if not self._stop.is_set():
            self._stopped_at = time.monotonic()
            self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def shutdown(self) -> None:
        """After `request_stop`: wait for connections, commit the last messages, close the store."""
        self.request_stop()
        if self._accept_thread is not None:
            self._accept_thread.join()
        deadline = time.monotonic() + self.grace + 2 * _TICK + 1
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.writer.stop()
        event(log, "mllp.stopped", commits=self.writer.commits, **self.snapshot())

    def serve_forever(self) -> None:
        """Block until `request_stop()`, then shut down cleanly."""
        while not self._stop.wait(60.0):
            event(log, "mllp.stats", **self.snapshot())
        self.shutdown()

    def snapshot(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self.stats)

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    # -- connections ------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._sock is not None
        try:
            while not self._stop.is_set():
                try:
                    conn, peer = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stop.is_set():
                        break
                    time.sleep(_TICK)
                    continue
                if not self._slots.acquire(blocking=False):
                    self._count("connections.refused")
                    event(log, "mllp.too-many-connections", logging.WARNING, limit=self.max_connections)
                    conn.close()
                    continue
                thread = threading.Thread(
                    target=self._serve_connection, args=(conn, peer), name=f"mllp-{peer[0]}", daemon=True
                )
                with self._threads_lock:
                    self._threads.add(thread)
                try:
                    thread.start()
                except RuntimeError:  # no thread to be had (limits, memory): refuse this one, keep serving
                    with self._threads_lock:
                        self._threads.discard(thread)
                    self._slots.release()
                    conn.close()
                    self._count("connections.refused")
                    event(log, "mllp.no-thread", logging.ERROR)
        finally:
            self._sock.close()

    def _serve_connection(self, conn: socket.socket, peer: tuple) -> None:
        source = f"mllp:{peer[0]}"
        self._count("connections")
        reader = FrameReader(self.policy.max_bytes)
        conn.settimeout(_TICK)
        last = time.monotonic()
        reason = "closed by peer"
        try:
            while True:
                if self._stop.is_set():
                    if not reader.in_frame:
                        reason = "shutdown"
                        break
                    if time.monotonic() - self._stopped_at > self.grace:
                        reason = "shutdown (message in flight abandoned, not acknowledged)"
                        break
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    if time.monotonic() - last > self.idle_timeout:
                        reason = "idle timeout"
                        break
                    continue
                except OSError:
                    reason = "connection error"
                    break
                if not data:
                    for ev in reader.close():
                        self._handle(ev, source)  # a cut-off message: kept in dead letters, no ACK
                    break
                last = time.monotonic()
                for ev in reader.feed(data):
                    ack = self._handle(ev, source)
                    if ack is None:
                        continue
                    if ack is False:
                        reason = "store failure: closed without ACK"
                        return
                    conn.sendall(frame(ack))
        except OSError:
            reason = "connection error"
        finally:
            if reader.junk:
                self._count("bytes.outside-frames", reader.junk)
            event(log, "mllp.disconnected", logging.DEBUG, source=source, reason=reason)
            conn.close()
            self._slots.release()
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def _handle(self, ev: Frame | Oversize | Truncated, source: str) -> bytes | bool | None:
        """Store one event and return the ACK to send (None: none is due; False: store failed)."""
        if isinstance(ev, Frame):
            raw, size, truncated = ev.payload, len(ev.payload), False
            assessment = assess(raw, self.policy, self.gate)
        elif isinstance(ev, Oversize):
            raw, size, truncated = ev.head, ev.size, True
            assessment = assess(raw, self.policy, self.gate, oversize=ev.size)
        else:
            raw, size, truncated = ev.head, ev.size, True
            if not raw.strip():
                return None
            assessment = assess(raw, self.policy, self.gate)
            reason = f"truncated frame ({ev.size} bytes): {ev.reason}"
            assessment.decision = AckDecision("AR", reason)
            if assessment.disposition != "drop":
                assessment.disposition = "dead"
        try:
            received = self.writer.submit(raw, assessment, source, size, truncated).result()
        except Exception:
            self._count("store-failures")
            return False
        self._count(received.outcome)
        self._count(f"ack.{received.decision.code}")
        event(
            log,
            f"mllp.{received.outcome}",
            logging.DEBUG,
            source=source,
            inbox_id=received.inbox_id,
            control_id=assessment.control_id,
            ack=received.decision.code,
            size=size,
        )
        if isinstance(ev, Truncated):
            return None  # the sender abandoned it (or left): an ACK would answer the wrong message
        return received.ack if ack_wanted(raw, received.decision.code) else None
