"""Benchmark of the MLLP listener: messages/s acknowledged with a durable commit, 1 and 10 senders.

    python bench/bench_mllp.py                    # 2,000 messages per scenario
    python bench/bench_mllp.py --messages 10000 --json

The listener runs as it does in production: `adapter listen` in its own process, its store a real
SQLite file in WAL mode with `synchronous=FULL` (every COMMIT waits for the disk) in a fresh state
directory under --dir (default: a temporary directory; put it on the disk you will use). Senders are
threads of this process, each on one persistent connection, sending a message and waiting for its ACK
before the next (what interface engines do). Every message is for an enrolled subject, so every one is
stored. Reported: acknowledged messages/s (wall time), ACK latency p50/p99, and how many commits
(fsyncs) the listener needed: with group commit, concurrent senders share them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROSTER_CSV  # noqa: E402
from tests.mllp.helpers import MllpClient, oru  # noqa: E402
from tests.sync.procs import adapter_env, start_listener  # noqa: E402


def scenario(base: Path, senders: int, total: int) -> dict:
    state = base / f"state-{senders}"
    state.mkdir(parents=True)
    (state / "roster.csv").write_text(ROSTER_CSV)
    proc, port = start_listener(adapter_env(state, "http://127.0.0.1:9/fhir"), timeout=120)
    per_sender = total // senders
    latencies: list[list[float]] = [[] for _ in range(senders)]
    messages = [
        [oru(f"B{senders}-{s}-{n}", ("MRN1001", "MRN1002", "MRN1003")[n % 3]) for n in range(per_sender)]
        for s in range(senders)
    ]
    clients = [MllpClient("127.0.0.1", port) for _ in range(senders)]
    clients[0].send(oru("WARMUP"))
    barrier = threading.Barrier(senders + 1)

    def send(index: int) -> None:
        client, mine, lat = clients[index], messages[index], latencies[index]
        barrier.wait()
        for raw in mine:
            t0 = time.perf_counter()
            ack = client.send(raw)
            lat.append(time.perf_counter() - t0)
            if ack.code != "AA":
                raise RuntimeError(f"unexpected ACK {ack.code}")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    for c in clients:
        c.close()
    proc.popen.send_signal(signal.SIGTERM)
    proc.wait(60)
    commits = None
    for line in proc.lines:
        if "mllp.stopped" in line:
            commits = int(line.split("commits=")[1].split()[0])
    flat = sorted(x for lat in latencies for x in lat)
    acked = len(flat)
    return {
        "senders": senders,
        "messages": acked,
        "seconds": round(wall, 3),
        "messages_per_second": round(acked / wall, 1),
        "ack_p50_ms": round(statistics.median(flat) * 1000, 2),
        "ack_p99_ms": round(flat[int(0.99 * (acked - 1))] * 1000, 2),
        "commits": commits - 1 if commits else None,  # minus the warm-up message
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000, help="messages per scenario")
    parser.add_argument("--dir", type=Path, default=None, help="where the state directories go")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = [scenario(Path(tmp), n, args.messages) for n in (1, 10)]
    results_by = {r["senders"]: r for r in results}
    speedup = results_by[10]["messages_per_second"] / results_by[1]["messages_per_second"]
    if args.json:
        print(json.dumps({"scenarios": results, "speedup_10_vs_1": round(speedup, 2)}, indent=2))
        return
    print(f"MLLP listener, durable commit before ACK (SQLite WAL, synchronous=FULL), cpus={os.cpu_count()}")
    for r in results:
        print(
            f"  {r['senders']:>2} sender(s): {r['messages']:>6} messages in {r['seconds']:>7.2f} s = "
            f"{r['messages_per_second']:>8.1f} msg/s; ACK p50 {r['ack_p50_ms']} ms, "
            f"p99 {r['ack_p99_ms']} ms; {r['commits']} commits"
        )
    print(f"  10 senders vs 1: x{speedup:.1f}")


if __name__ == "__main__":
    main()
