"""Crash safety: SIGKILL the listener and `adapter sync` at random moments, restart, and check that
nothing acknowledged was lost and nothing reached the server twice."""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time

import pytest

from adapter.store import Store
from tests.mllp.helpers import MllpClient
from tests.sync.fakefhir import FakeFhir
from tests.sync.helpers import (
    context,
    expected_resources,
    external_references,
    lab_messages,
    make_settings,
    receive,
)
from tests.sync.procs import Proc, adapter_env, start_listener


def _config(tmp_path, **sync):
    lines = ["[sync]"] + [f"{k} = {v}" for k, v in sync.items()]
    path = tmp_path / "adapter.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _send_all(
    messages: list[bytes], port_of: list[int], acked: dict[str, bytes], stop: threading.Event
) -> None:
    """An interface engine: send in order over one connection; no ACK (listener died) -> reconnect and
    send the same message again, until every message is acknowledged."""
    n = 0
    client = None
    while n < len(messages) and not stop.is_set():
        try:
            if client is None:
                client = MllpClient("127.0.0.1", port_of[0], timeout=5)
            ack = client.send(messages[n])
            assert ack.code == "AA", ack.raw
            acked[ack.acked_id] = ack.raw
            n += 1
        except (OSError, ConnectionError):
            if client is not None:
                client.close()
                client = None
            time.sleep(0.05)
    if client is not None:
        client.close()


def _listener_rounds(tmp_path, rounds: int, count: int, seed: int) -> None:
    rng = random.Random(seed)
    state = tmp_path / "state"
    settings = make_settings(state, "http://127.0.0.1:9/fhir")
    env = adapter_env(state, settings.fhir_url)
    messages = lab_messages(count, prefix=f"K{seed}-")
    acked: dict[str, bytes] = {}
    stop = threading.Event()
    proc, port = start_listener(env)
    port_of = [port]
    sender = threading.Thread(target=_send_all, args=(messages, port_of, acked, stop), daemon=True)
    sender.start()
    try:
        for _ in range(rounds):
            time.sleep(rng.uniform(0.05, 0.6))
            proc.kill()  # SIGKILL: no chance to clean up
            acked_at_kill = set(acked)
            with Store(state / "store.sqlite") as store:  # everything acknowledged is on disk
                stored = {c for (c,) in store.conn.execute("SELECT control_id FROM inbox")}
            assert acked_at_kill <= stored
            proc, port_of[0] = start_listener(env)
        sender.join(timeout=120)
        assert not sender.is_alive()
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not (state / "listen.json").exists()
    finally:
        stop.set()
        if proc.popen.poll() is None:
            proc.kill()
    assert len(acked) == count
    conn = sqlite3.connect(state / "store.sqlite")
    rows = conn.execute("SELECT control_id, count(*) FROM inbox GROUP BY control_id").fetchall()
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert {c for c, _ in rows} == set(acked)
    assert all(n == 1 for _, n in rows), "a message was stored twice"


def test_listener_killed_at_random_loses_nothing_acknowledged(tmp_path):
    _listener_rounds(tmp_path, rounds=3, count=150, seed=1)


@pytest.mark.slow
def test_listener_killed_at_random_many_rounds(tmp_path):
    _listener_rounds(tmp_path, rounds=25, count=3000, seed=2)


def _sync_rounds(tmp_path, fhir_url: str, kills: int, count: int, seed: int, bundle_size: int = 8):
    """Kill `adapter sync` `kills` times at random moments of its work, then let one run finish."""
    rng = random.Random(seed)
    state = tmp_path / "state"
    settings = make_settings(state, fhir_url)
    messages = lab_messages(count, prefix=f"S{seed}-")
    expected = expected_resources(messages, context(settings))
    receive(settings, messages)
    config = _config(tmp_path, bundle_size=bundle_size, retry_budget_seconds=10)
    env = adapter_env(state, fhir_url, config)
    killed = 0
    for _ in range(kills * 3):
        proc = Proc(["sync", "--log-json"], env)
        if proc.wait_for('"sync.started"', 60) is None:
            raise AssertionError(proc.stderr)
        time.sleep(rng.uniform(0.0, 0.8))
        if proc.popen.poll() is None:
            proc.kill()
            killed += 1
            if killed >= kills:
                break
        else:
            proc.wait()
            break
    final = Proc(["sync", "--json"], env)
    assert final.wait(120) == 0, final.stderr
    with Store(state / "store.sqlite") as store:
        counts = store.counts()
        assert (counts.inbox_pending, counts.outbox_pending, counts.dead_letters) == (0, 0, 0)
        statuses = dict(
            store.conn.execute("SELECT status, count(*) FROM sync_runs GROUP BY status").fetchall()
        )
    assert statuses.get("ok", 0) >= 1
    return expected, killed


def test_sync_killed_at_random_delivers_everything_once(tmp_path):
    fake = FakeFhir()
    fake.start()
    try:
        settings = make_settings(tmp_path / "probe", fake.base_url)
        fake.existing = external_references(expected_resources(lab_messages(3), context(settings)))
        expected, killed = _sync_rounds(tmp_path, fake.base_url, kills=3, count=60, seed=3)
        assert killed >= 1
        assert fake.resources == expected
        assert set(fake.versions.values()) == {
            1
        }  # re-sent bundles changed nothing: no doubles, no new versions
    finally:
        fake.stop()


@pytest.mark.slow
def test_sync_killed_at_random_many_rounds(tmp_path):
    fake = FakeFhir()
    fake.start()
    try:
        settings = make_settings(tmp_path / "probe", fake.base_url)
        fake.existing = external_references(expected_resources(lab_messages(3), context(settings)))
        expected, killed = _sync_rounds(tmp_path, fake.base_url, kills=20, count=400, seed=4)
        assert killed >= 10
        assert fake.resources == expected and set(fake.versions.values()) == {1}
    finally:
        fake.stop()


def test_receive_helper_matches_the_listener(tmp_path):
    """The in-process `receive` used above stores what the listener would (same rows, same ACK rules)."""
    settings = make_settings(tmp_path / "state", "http://127.0.0.1:9/fhir")
    receive(settings, lab_messages(2))
    with Store(settings.state_dir / "store.sqlite") as store:
        assert [i.control_id for i in store.pending_items()] == ["M00000", "M00001"]
