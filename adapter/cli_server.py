"""`adapter server start|stop|status`: the local HAPI FHIR R4 server (adapter/fhir_server.py).

`start` prints the base URL on stdout (so `URL=$(adapter server start)` works); progress and errors go to
stderr. `status` exits 0 when the server answers, 1 when it does not. Java, Maven or build failures: exit 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from adapter import fhir_server
from adapter.errors import EXIT_USAGE

_err = Console(stderr=True)

server_app = typer.Typer(
    help="The local HAPI FHIR R4 server (fhir-server/, Java): start, stop, status.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")


def _state_dir(ctx: typer.Context) -> Path:
    """The state dir the main app resolved (option > env > adapter.toml > default)."""
    obj = ctx.find_root().obj
    settings = getattr(obj, "settings", None)  # the lead's AppContext resolves it lazily
    state_dir = getattr(settings, "state_dir", None) or getattr(obj, "state_dir", None)
    return Path(state_dir or os.environ.get("ADAPTER_STATE_DIR", ".adapter"))


def _fail(exc: fhir_server.ServerError) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(EXIT_USAGE)


@server_app.command("start")
def start_command(
    ctx: typer.Context,
    port: int = typer.Option(fhir_server.DEFAULT_PORT, "--port", min=1, max=65535, help="TCP port."),
    db: str | None = typer.Option(
        None, "--db", help="H2 database file (default: <state-dir>/server/h2/fhir); 'mem' = in memory."
    ),
    timeout: float = typer.Option(180, "--timeout", help="Seconds to wait for the server to answer."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    """Start the server in the background (if not running) and print its base URL."""
    state_dir = _state_dir(ctx)
    try:
        fhir_server.ensure_built(console=_err)
        before = fhir_server.status(state_dir)
        if not before.running:
            _err.print(f"starting the local FHIR server on port {port} (about 30 s)...", highlight=False)
        base_url = fhir_server.start(state_dir, port=port, db=db, timeout=timeout)
    except fhir_server.ServerError as exc:
        raise _fail(exc) from None
    if as_json:
        current = fhir_server.status(state_dir)
        typer.echo(json.dumps({**current.as_json(), "base_url": base_url, "was_running": before.running}))
    else:
        typer.echo(base_url)


@server_app.command("stop")
def stop_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    """Stop the server this state dir started."""
    try:
        stopped = fhir_server.stop(_state_dir(ctx))
    except fhir_server.ServerError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"stopped": stopped}))
    else:
        _err.print("stopped" if stopped else "not running", highlight=False)


@server_app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    """Exit 0 if the server answers, 1 if not."""
    current = fhir_server.status(_state_dir(ctx))
    if as_json:
        typer.echo(json.dumps(current.as_json(), indent=2))
    elif current.ready:
        typer.echo(f"up: {current.base_url} (pid {current.pid})")
    elif current.running:
        typer.echo(f"starting: pid {current.pid}, port {current.port}, not answering yet")
    else:
        typer.echo("down")
    raise typer.Exit(0 if current.ready else 1)
