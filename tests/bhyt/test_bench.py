"""100 MB files in bounded memory (slow: writes and reads 100 MB files; run with `-m slow`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.bhyt.helpers import REPO


def bench(shape: str, mb: int = 100) -> dict:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_bhyt.py"), "--mb", str(mb), "--shape", shape],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(done.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(("shape", "limit_mb"), [("many", 60), ("stranger", 10), ("one-table", 100)])
def test_a_100_mb_file_does_not_need_100_mb(shape, limit_mb):
    report = bench(shape)
    assert report["file_mb"] > 95
    assert report["rss_growth_mb"] < limit_mb, report
