"""`adapter listen`, `adapter sync`, `adapter status` and `adapter deadletters list|show|retry`.

Exit codes: 0 all done; 1 finished but some inputs were rejected (dead letters); 2 usage or
configuration error, another sync holding the lock, or the FHIR server unreachable (then everything
not sent stays queued for the next run).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapter.cli_common import JsonOption, app_context, console, emit_json, fail, stdout
from adapter.errors import EXIT_OK, EXIT_USAGE, ConfigError
from adapter.fhir.client import client_for
from adapter.fhir.retry import RetryPolicy
from adapter.logs import event, setup_logging
from adapter.settings import Settings
from adapter.store import Store, open_store, store_path
from adapter.sync import WATCH_LOCK_FILE, receive_policy, roster_gate, run_sync

log = logging.getLogger("adapter.listen")
LISTENER_FILE = "listen.json"

RosterOption = typer.Option(None, "--roster", help="Roster CSV (default: the one kept by `adapter enroll`).")
LogJsonOption = typer.Option(False, "--log-json", help="Logs as JSON lines on stderr.")


def _logging(settings: Settings, log_json: bool, verbose: bool = False) -> None:
    setup_logging(json_lines=log_json or settings.log_json, level="DEBUG" if verbose else "INFO")


# -- listen -------------------------------------------------------------------------------------------
def listen(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(2575, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
    roster: Path = RosterOption,
    watch: bool = typer.Option(True, "--watch/--no-watch", help="Also take in the watched folder."),
    log_json: bool = LogJsonOption,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every message (ids only)."),
) -> None:
    """MLLP listener: stores each message durably, then ACKs. Stops cleanly on SIGTERM/SIGINT."""
    from adapter.mllp.server import MllpServer

    settings = app_context(ctx).settings
    _logging(settings, log_json, verbose)
    open_store(settings.state_dir).close()  # create or migrate before any client connects
    policy = receive_policy(settings)
    gate = roster_gate(settings, roster)
    server = MllpServer(
        store_path(settings.state_dir),
        policy,
        gate,
        host=host,
        port=port,
        idle_timeout=settings.sync.idle_timeout_seconds,
        max_connections=settings.sync.max_connections,
    )
    try:
        bound_host, bound_port = server.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.request_stop())
    marker = Path(settings.state_dir) / LISTENER_FILE
    marker.write_text(json.dumps({"pid": os.getpid(), "host": bound_host, "port": bound_port}))
    watcher = None
    if watch and settings.sync.watch_dir is not None:
        watcher = threading.Thread(target=_watch_loop, args=(settings, policy, gate, server), daemon=True)
        watcher.start()
    console.print(f"listening on {bound_host}:{bound_port} (MLLP)", highlight=False)
    try:
        server.serve_forever()
    finally:
        if watcher is not None:
            watcher.join(timeout=30)
        marker.unlink(missing_ok=True)


def _watch_loop(settings: Settings, policy: Any, gate: Any, server: Any) -> None:
    from adapter.watch import scan

    store = Store(store_path(settings.state_dir))
    try:
        every = max(1.0, settings.sync.watch_settle_seconds)
        while not server.wait(every):
            try:
                scan(
                    Path(settings.sync.watch_dir),
                    store,
                    policy,
                    gate,
                    Path(settings.state_dir) / WATCH_LOCK_FILE,
                    settle_seconds=settings.sync.watch_settle_seconds,
                    sleep=lambda s: server.wait(s),
                )
            except Exception as exc:  # e.g. the store busy: the watcher must outlive one bad scan
                event(log, "watch.scan-failed", logging.ERROR, error=type(exc).__name__)
    finally:
        store.close()


# -- sync ---------------------------------------------------------------------------------------------
def sync(
    ctx: typer.Context,
    roster: Path = RosterOption,
    budget: float = typer.Option(
        None,
        "--budget",
        min=0,
        help="Seconds to keep retrying the server (default: sync.retry_budget_seconds).",
    ),
    as_json: bool = JsonOption,
    log_json: bool = LogJsonOption,
) -> None:
    """For cron: take in the watched folder, convert the inbox, push the outbox; never concurrently."""
    app = app_context(ctx)
    settings = app.settings
    _logging(settings, log_json)
    show = console.is_terminal and not as_json
    progress = (
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        if show
        else None
    )
    with progress or nullcontext():
        convert_task = progress.add_task("convert", total=None) if progress else None
        push_task = progress.add_task("push", total=None) if progress else None
        report = run_sync(
            settings,
            lambda: app.convert_context(roster),
            lambda: client_for(settings),
            roster_override=roster,
            budget_seconds=budget,
            on_convert=(lambda n: progress.advance(convert_task, n)) if progress else None,
            on_push=(lambda n: progress.advance(push_task, n)) if progress else None,
        )
    if as_json:
        emit_json(report.as_json())
    else:
        watch = report.watch
        if watch is not None and (watch.files or watch.failed or watch.waiting):
            console.print(
                f"watched folder: {watch.files} file(s) taken in, {watch.failed} refused, "
                f"{watch.waiting} still being written",
                highlight=False,
            )
        console.print(
            f"converted {report.convert.items} input(s) into {report.convert.resources} resource(s); "
            f"pushed {report.push.pushed} in {report.push.bundles} bundle(s); "
            f"{report.new_dead_letters} new dead letter(s); "
            f"left queued: {report.inbox_pending} input(s), {report.outbox_pending} resource(s)",
            highlight=False,
        )
        if report.new_dead_letters:
            console.print("see `adapter deadletters list`", highlight=False)
    if report.push.unreachable:
        console.print(
            f"[bold red]error:[/] {escape(report.push.unreachable)}; "
            f"{report.outbox_pending} resource(s) stay queued for the next run",
            highlight=False,
        )
    raise typer.Exit(report.exit_code)


# -- status -------------------------------------------------------------------------------------------
def _server_reachable(settings: Settings, timeout: float) -> tuple[bool, str | None]:
    client = client_for(settings)
    client.timeout = timeout
    client.retry = RetryPolicy(budget_seconds=0, max_attempts=1)
    try:
        client.capabilities()
    except Exception as exc:  # any failure means "not usable right now"; say which, without secrets
        return False, str(exc) if hasattr(exc, "exit_code") else type(exc).__name__
    finally:
        client.close()
    return True, None


def _listener(state_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((state_dir / LISTENER_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info


def status(
    ctx: typer.Context,
    as_json: bool = JsonOption,
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds to wait for the server."),
) -> None:
    """Inbox, outbox, dead letters, last sync, server reachable."""
    settings = app_context(ctx).settings
    state_dir = Path(settings.state_dir)
    data: dict[str, Any] = {
        "state_dir": str(state_dir),
        "inbox_pending": 0,
        "outbox_pending": 0,
        "dead_letters": 0,
        "last_successful_sync": None,
        "last_sync": None,
        "counters": {},
    }
    if store_path(state_dir).exists():
        with Store(store_path(state_dir)) as store:
            counts = store.counts()
        data.update(
            inbox_pending=counts.inbox_pending,
            outbox_pending=counts.outbox_pending,
            dead_letters=counts.dead_letters,
            last_successful_sync=counts.last_successful_sync,
            last_sync=counts.last_sync.__dict__ if counts.last_sync else None,
            counters=counts.counters,
        )
    reachable, error = _server_reachable(settings, timeout)
    data["server"] = {"url": settings.fhir_url, "reachable": reachable, "error": error}
    data["listener"] = _listener(state_dir)
    if as_json:
        emit_json(data)
        raise typer.Exit(EXIT_OK)
    table = Table(show_header=False, box=None)
    table.add_row("inbox pending", str(data["inbox_pending"]))
    table.add_row("outbox pending", str(data["outbox_pending"]))
    table.add_row("dead letters", str(data["dead_letters"]))
    table.add_row("last successful sync", data["last_successful_sync"] or "never")
    last = data["last_sync"]
    if last:
        table.add_row("last sync", f"{last['finished_at'] or last['started_at']} ({last['status']})")
    table.add_row("server", f"{settings.fhir_url}: {'reachable' if reachable else 'UNREACHABLE'}")
    listener = data["listener"]
    table.add_row(
        "listener",
        f"pid {listener['pid']} on {listener['host']}:{listener['port']}" if listener else "not running",
    )
    for name, value in data["counters"].items():
        table.add_row(name, str(value))
    stdout.print(table)


# -- dead letters ---------------------------------------------------------------------------------------
deadletters_app = typer.Typer(
    help="Inputs the adapter could not use: list, inspect, and queue them again.", no_args_is_help=True
)


def _store(ctx: typer.Context) -> Store:
    settings = app_context(ctx).settings
    if not store_path(settings.state_dir).exists():
        fail(f"no store in {settings.state_dir}: nothing received yet", EXIT_USAGE)
    return Store(store_path(settings.state_dir))


@deadletters_app.command("list")
def deadletters_list(
    ctx: typer.Context,
    include_retried: bool = typer.Option(False, "--all", help="Also those already retried."),
    as_json: bool = JsonOption,
) -> None:
    """Open dead letters, oldest first: id, when, stage, input, reason."""
    with _store(ctx) as store:
        letters = store.dead_letters(include_retried=include_retried)
    if as_json:
        emit_json([d.as_json() for d in letters])
        return
    if not letters:
        console.print("no dead letters")
        return
    table = Table("id", "created", "stage", "kind", "source", "control id", "status", "reason")
    for d in letters:
        table.add_row(
            str(d.id),
            d.created_at[:19],
            d.stage,
            d.kind or "",
            escape(d.source or ""),
            escape(d.control_id or ""),
            d.status,
            escape(d.reason[:120] + ("…" if len(d.reason) > 120 else "")),
        )
    stdout.print(table)


@deadletters_app.command("show")
def deadletters_show(
    ctx: typer.Context,
    dl_id: int = typer.Argument(..., metavar="ID"),
    raw: bool = typer.Option(False, "--raw", help="Write the stored input bytes to stdout (contains PHI)."),
    as_json: bool = JsonOption,
) -> None:
    """One dead letter in full (its reason, the input it came from); `--raw` for the input itself."""
    with _store(ctx) as store:
        letter = store.dead_letter(dl_id)
        if letter is None:
            fail(f"no dead letter {dl_id}", EXIT_USAGE)
        body = store.body(letter.inbox_id) if raw and letter.inbox_id is not None else None
    if raw:
        if body is None:
            fail(f"dead letter {dl_id} has no stored input (resources queued by `ingest`)", EXIT_USAGE)
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return
    if as_json:
        emit_json(letter.as_json())
        return
    for key, value in letter.as_json().items():
        stdout.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)


@deadletters_app.command("retry")
def deadletters_retry(
    ctx: typer.Context,
    dl_id: int = typer.Argument(None, metavar="[ID]"),
    all_: bool = typer.Option(False, "--all", help="Retry every open dead letter."),
    as_json: bool = JsonOption,
) -> None:
    """Queue a dead letter's input again (converted again at the next `adapter sync`)."""
    if (dl_id is None) == (not all_):
        fail("give a dead letter ID or --all (not both)", EXIT_USAGE)
    results: dict[int, str] = {}
    with _store(ctx) as store:
        ids = [d.id for d in store.dead_letters()] if all_ else [dl_id]
        for one in ids:
            try:
                results[one] = store.retry_dead_letter(one)
            except KeyError:
                fail(f"no dead letter {one}", EXIT_USAGE)
    if as_json:
        emit_json({str(k): v for k, v in results.items()})
        return
    for one, what in results.items():
        console.print(f"dead letter {one}: {what}", highlight=False)
    if not results:
        console.print("no open dead letters")


def register(app: typer.Typer) -> None:
    app.command("listen")(listen)
    app.command("sync")(sync)
    app.command("status")(status)
    app.add_typer(deadletters_app, name="deadletters")
