"""The local HAPI FHIR R4 server (`fhir-server/`, Java): build it, run it in the background, stop it.

The server is our own small launcher over HAPI FHIR JPA (see fhir-server/README.md). Everything it leaves
on disk lives in `<state_dir>/server/`:

    server.json     {"pid", "port", "base_url", "db", "log", "started_at"} of the running server
    server.log      its output (warnings and errors only); the previous run's is kept as server.log.1
    h2/fhir.mv.db   the H2 database (unless `db` says otherwise, e.g. "mem" for tests)

`start` returns the base URL (`http://127.0.0.1:<port>/fhir`) once `GET <base>/metadata` answers. The
process is detached (its own session), so it outlives the command that started it; `stop` ends it.
Java options come from `ADAPTER_FHIR_SERVER_JAVA_OPTS` (default: `DEFAULT_JAVA_OPTS`), the launcher's
folder from `ADAPTER_FHIR_SERVER_DIR`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import requests

from adapter import errors

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MEMORY_DB = "mem"
# Measured on 2 cores: C1 only + serial GC start in ~25 s and ~600 MB RSS, against ~60 s and ~1.2 GB.
DEFAULT_JAVA_OPTS = ("-Xmx1g", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
SERVER_DIR_ENV = "ADAPTER_FHIR_SERVER_DIR"
JAVA_OPTS_ENV = "ADAPTER_FHIR_SERVER_JAVA_OPTS"
JAR_NAME = "fhir-server.jar"
LOG_TAIL_LINES = 40

# Processes started by this Python process, so their exit is seen (and reaped) rather than left a zombie.
_children: dict[int, subprocess.Popen[bytes]] = {}


class ServerError(errors.ServerError, RuntimeError):
    """The local FHIR server cannot be built, started or stopped; the message says why (exit code 2)."""


class _Printer(Protocol):
    def print(self, *objects: Any, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class ServerStatus:
    running: bool  # the recorded process is alive
    pid: int | None = None
    port: int | None = None
    base_url: str | None = None
    ready: bool = False  # and it answers GET <base_url>/metadata

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# ---- building -------------------------------------------------------------------------------------------


def server_dir() -> Path:
    """The launcher's Maven project: `fhir-server/` beside the package, or `$ADAPTER_FHIR_SERVER_DIR`."""
    override = os.environ.get(SERVER_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "fhir-server"


def jar_path() -> Path:
    return server_dir() / "target" / JAR_NAME


def ensure_built(console: _Printer | None = None) -> Path:
    """The runnable jar, built with Maven first if it is missing or older than its sources."""
    jar = jar_path()
    if jar.is_file() and (jar.parent / "lib").is_dir() and not _sources_newer_than(jar):
        return jar
    project = server_dir()
    if not (project / "pom.xml").is_file():
        raise ServerError(f"no FHIR server project at {project} (pom.xml missing); set {SERVER_DIR_ENV}")
    _java()  # a build without Java to run it is no use
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServerError(
            "Maven (mvn) not found: it builds the local FHIR server; install it "
            "(Debian: apt-get install maven) or run scripts/setup.sh"
        )
    if console is not None:
        console.print("building the local FHIR server with Maven (the first build downloads ~300 MB)")
    command = [mvn, "-q", "-B", "-f", str(project / "pom.xml"), "package", "-DskipTests"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not jar.is_file():
        output = _tail_text(result.stdout + result.stderr)
        raise ServerError(f"building the FHIR server failed ({shlex.join(command)}):\n{output}")
    return jar


def _sources_newer_than(jar: Path) -> bool:
    built = jar.stat().st_mtime
    project = server_dir()
    sources = [project / "pom.xml", *(p for p in (project / "src").rglob("*") if p.is_file())]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise ServerError(
            "Java not found: the local FHIR server needs Java 17 or later "
            "(Debian: apt-get install openjdk-17-jre-headless) or run scripts/setup.sh"
        )
    return java


# ---- running --------------------------------------------------------------------------------------------


def start(state_dir: Path, port: int = DEFAULT_PORT, db: str | None = None, timeout: float = 180) -> str:
    """Start the server in the background (or find it running) and return its base URL once it answers.

    `db`: None = the H2 file under `<state_dir>/server/h2/`, "mem" = in memory (gone at stop), else a path.
    """
    home = _home(state_dir)
    current = _read_record(home)
    if current is not None and _alive(current["pid"]):
        if current["port"] != port:
            raise ServerError(
                f"the local FHIR server already runs on port {current['port']} (pid {current['pid']}); "
                "stop it first to use another port"
            )
        _wait_ready(current, home, timeout, process=None)
        return current["base_url"]

    jar = ensure_built()
    java = _java()
    if not _port_free(port):
        raise ServerError(f"port {port} on {HOST} is already in use; choose another with --port")
    home.mkdir(parents=True, exist_ok=True)
    database = _database(home, db)
    log = home / "server.log"
    if log.exists():
        log.replace(home / "server.log.1")
    command = [java, *_java_opts(), "-jar", str(jar), "--host", HOST, "--port", str(port), "--db", database]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
            start_new_session=True,  # detached: Ctrl-C on the caller does not reach it
        )
    _children[process.pid] = process
    record = {
        "pid": process.pid,
        "port": port,
        "base_url": f"http://{HOST}:{port}/fhir",
        "db": database,
        "log": str(log),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write_record(home, record)
    try:
        _wait_ready(record, home, timeout, process=process)
    except ServerError:
        if process.poll() is not None:
            _record_path(home).unlink(missing_ok=True)
        raise  # a slow start keeps running: `start` again waits for it, `stop` ends it
    return record["base_url"]


def stop(state_dir: Path, timeout: float = 30) -> bool:
    """Stop the recorded server: SIGTERM, then SIGKILL after `timeout` s. False if none was running."""
    home = _home(state_dir)
    record = _read_record(home)
    if record is None:
        return False
    was_running = _alive(record["pid"])
    if was_running:
        _terminate(record["pid"], grace=timeout)
        if _alive(record["pid"]):
            raise ServerError(f"the local FHIR server (pid {record['pid']}) did not stop")
    _record_path(home).unlink(missing_ok=True)
    return was_running


def status(state_dir: Path) -> ServerStatus:
    """Whether the recorded server process is alive, and whether it answers `/metadata`."""
    record = _read_record(_home(state_dir))
    if record is None or not _alive(record["pid"]):
        return ServerStatus(running=False)
    return ServerStatus(
        running=True,
        pid=record["pid"],
        port=record["port"],
        base_url=record["base_url"],
        ready=_answers(record["base_url"]),
    )


# ---- helpers --------------------------------------------------------------------------------------------


def _home(state_dir: Path) -> Path:
    return Path(state_dir).expanduser().resolve() / "server"


def _record_path(home: Path) -> Path:
    return home / "server.json"


def _read_record(home: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(_record_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    return record


def _write_record(home: Path, record: dict[str, Any]) -> None:
    temporary = home / "server.json.tmp"
    temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    temporary.replace(_record_path(home))


def _database(home: Path, db: str | None) -> str:
    if db == MEMORY_DB:
        return MEMORY_DB
    path = Path(db).expanduser().resolve() if db else home / "h2" / "fhir"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def _java_opts() -> list[str]:
    configured = os.environ.get(JAVA_OPTS_ENV)
    return shlex.split(configured) if configured is not None else list(DEFAULT_JAVA_OPTS)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As Jetty does: connections of a just-stopped server in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    """True while `pid` runs and is our server (a recycled pid of another program does not count)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not ours
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True  # no procfs (macOS): trust the pid
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and JAR_NAME.encode() in command


def _terminate(pid: int, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                _children.pop(pid, None)
                return
            time.sleep(0.2)


def _answers(base_url: str, read_timeout: float = 30) -> bool:
    """GET /metadata answers 200. The first one after start-up is slow (it builds the CapabilityStatement):
    wait for it rather than hang up, which would only make the server log a broken pipe and start again."""
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy: the server is on this machine
        try:
            response = session.get(
                f"{base_url}/metadata",
                headers={"Accept": "application/fhir+json"},
                timeout=(3, max(read_timeout, 5)),
            )
        except requests.RequestException:
            return False
    return response.status_code == 200


def _wait_ready(
    record: dict[str, Any], home: Path, timeout: float, process: subprocess.Popen[bytes] | None
) -> None:
    deadline = time.monotonic() + timeout
    log = home / "server.log"
    while True:
        if process is not None and process.poll() is not None:
            raise ServerError(
                f"the local FHIR server exited with code {process.returncode} while starting; "
                f"last lines of {log}:\n{_log_tail(log)}"
            )
        if process is None and not _alive(record["pid"]):
            raise ServerError(f"the local FHIR server (pid {record['pid']}) is gone; see {log}")
        if _answers(record["base_url"], read_timeout=deadline - time.monotonic()):
            return
        if time.monotonic() > deadline:
            raise ServerError(
                f"the local FHIR server (pid {record['pid']}) did not answer {record['base_url']}/metadata "
                f"within {timeout:.0f} s; it is left running: `adapter server status` tells when it is up, "
                f"`adapter server stop` ends it. Last lines of {log}:\n{_log_tail(log)}"
            )
        time.sleep(0.5)


def _log_tail(log: Path) -> str:
    try:
        return _tail_text(log.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return "(no log)"


def _tail_text(text: str) -> str:
    """The last lines worth reading: Java stack frames dropped, the `Caused by:` chain kept."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("at ", "... "))
    ]
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty)"
