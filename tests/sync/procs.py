"""Running `adapter listen` and `adapter sync` as real subprocesses (for SIGKILL crash tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def adapter_env(state_dir: Path, fhir_url: str, config: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ADAPTER_STATE_DIR=str(state_dir), ADAPTER_FHIR_URL=fhir_url, PYTHONUNBUFFERED="1")
    if config is not None:
        env["ADAPTER_CONFIG"] = str(config)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Proc:
    """A child `python -m adapter.cli ...` whose stderr is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "adapter.cli", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip())
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<eof>")
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match | None:
        """The first stderr line matching `pattern` (None if the process ended or time ran out)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                    if line == "<eof>":
                        return None
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()

    def wait(self, timeout: float = 60.0) -> int:
        return self.popen.wait(timeout)

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


def start_listener(env: dict[str, str], timeout: float = 60.0) -> tuple[Proc, int]:
    proc = Proc(["listen", "--host", "127.0.0.1", "--port", "0", "--no-watch"], env)
    match = proc.wait_for(r"listening on 127\.0\.0\.1:(\d+)", timeout)
    if match is None:
        proc.kill()
        raise RuntimeError(f"listener did not start:\n{proc.stderr}")
    return proc, int(match.group(1))
