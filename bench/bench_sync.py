"""Benchmark of `adapter sync` into the local HAPI server: transaction bundles vs one request per resource.

    python bench/bench_sync.py                          # starts the local server (in memory) itself
    python bench/bench_sync.py --fhir-url http://127.0.0.1:8080/fhir --messages 500 --json

Same run, same server, same kind of data: lab messages (ORU^R01, a DiagnosticReport, two Observations
and a Provenance each) for the three enrolled subjects are put into the inbox, then `run_sync` (what
`adapter sync` does: convert, queue, push, settle every row only after the server confirmed it) pushes
them with `bundle_size` resources per transaction bundle, and again, with other order numbers (so
every resource is new to the server in both runs), with one resource per request (bundle_size 1).
A warm-up of both kinds comes first (a cold JVM is several times slower), then `--rounds` rounds of
both. Reported: resources/s of each run (wall time of the whole sync: conversion, queueing, pushing,
settling), the medians and their ratio. Target: bundles at least 5x faster.

The server's JVM options matter: the launcher's default (`-XX:TieredStopAtLevel=1`, quick start-up)
caps the JIT, which slows the per-resource work that bundles cannot save; `--java-opts
"-Xmx1g -XX:+UseParallelGC"` lets the full JIT run, as a long-running server would.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from typer.testing import CliRunner  # noqa: E402

from adapter import fhir_server  # noqa: E402
from adapter.cli import app  # noqa: E402
from tests.conftest import ROSTER_CSV  # noqa: E402
from tests.sync.helpers import lab_messages, make_settings, receive, sync_once  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _enroll(base_url: str, tmp: Path) -> None:
    roster = tmp / "roster.csv"
    roster.write_text(ROSTER_CSV)
    runner = CliRunner()
    args = ["--fhir-url", base_url, "--state-dir", str(tmp / "enroll-state")]
    for command in (["study", "push"], ["enroll", str(roster)]):
        result = runner.invoke(app, [*args, *command])
        if result.exit_code != 0:
            raise SystemExit(f"cannot prepare the server ({' '.join(command)}): {result.output}")


def run(base_url: str, tmp: Path, messages: int, bundle_size: int, label: str) -> dict:
    settings = make_settings(
        tmp / f"state-{label}", base_url, bundle_size=bundle_size, retry_budget_seconds=60
    )
    receive(settings, lab_messages(messages, prefix=f"{label}-", facility=f"BENCH-{uuid.uuid4().hex[:8]}"))
    started = time.perf_counter()
    report = sync_once(settings)
    wall = time.perf_counter() - started
    if report.exit_code != 0:
        raise SystemExit(f"sync failed ({label}): {report.as_json()}")
    return {
        "bundle_size": bundle_size,
        "resources": report.push.pushed,
        "requests": report.push.bundles,
        "seconds": round(wall, 3),
        "resources_per_second": round(report.push.pushed / wall, 1),
        "push_seconds": report.push.seconds,
        "push_resources_per_second": round(report.push.pushed / report.push.seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fhir-url", default=os.environ.get("ADAPTER_TEST_FHIR_URL"))
    parser.add_argument("--messages", type=int, default=100, help="lab messages per run (4 resources each)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measured rounds (bundles, then one per request)"
    )
    parser.add_argument("--warmup", type=int, default=100, help="messages per mode before measuring")
    parser.add_argument("--bundle-size", type=int, default=200)
    parser.add_argument(
        "--java-opts",
        default=None,
        help="JVM options for the server this starts (default: the launcher's, tuned for start-up time)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.java_opts is not None:
        os.environ[fhir_server.JAVA_OPTS_ENV] = args.java_opts
    java_opts = os.environ.get(fhir_server.JAVA_OPTS_ENV) or " ".join(fhir_server.DEFAULT_JAVA_OPTS)
    rounds: list[tuple[dict, dict]] = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        started_here = args.fhir_url is None
        base_url = args.fhir_url or fhir_server.start(
            tmp / "server", port=_free_port(), db=fhir_server.MEMORY_DB, timeout=900
        )
        try:
            _enroll(base_url, tmp)
            run(base_url, tmp, args.warmup, args.bundle_size, "warm-bundles")
            run(base_url, tmp, args.warmup, 1, "warm-single")
            for n in range(args.rounds):
                bundles = run(base_url, tmp, args.messages, args.bundle_size, f"bundles{n}")
                single = run(base_url, tmp, args.messages, 1, f"single{n}")
                rounds.append((bundles, single))
        finally:
            if started_here:
                fhir_server.stop(tmp / "server")
    rate_b = statistics.median(b["resources_per_second"] for b, _ in rounds)
    rate_s = statistics.median(s["resources_per_second"] for _, s in rounds)
    ratio = rate_b / rate_s
    if args.json:
        print(
            json.dumps(
                {
                    "server": base_url
                    if not started_here
                    else "local HAPI (in memory), started by the bench",
                    "java_opts": java_opts if started_here else None,
                    "rounds": [{"bundles": b, "one_per_request": s} for b, s in rounds],
                    "median_resources_per_second": {"bundles": rate_b, "one_per_request": rate_s},
                    "ratio": round(ratio, 2),
                },
                indent=2,
            )
        )
        return
    where = f"local HAPI started here, JVM {java_opts!r}" if started_here else base_url
    print(f"adapter sync into {where}; cpus={os.cpu_count()}")
    for n, (b, s) in enumerate(rounds, 1):
        for label, r in (("transaction bundles", b), ("one request per resource", s)):
            print(
                f"  round {n} {label:<25} bundle_size={r['bundle_size']:<4} {r['resources']:>6} resources, "
                f"{r['requests']:>5} requests, {r['seconds']:>7.2f} s = {r['resources_per_second']:>8.1f} /s"
            )
    print(f"  median: bundles {rate_b:.1f} resources/s, one per request {rate_s:.1f} resources/s")
    print(f"  bundles vs one per request: x{ratio:.1f} (target >= 5)")


if __name__ == "__main__":
    main()
