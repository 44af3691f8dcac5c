"""The `adapter` command: a thin Typer shell over the engine (see ../shared/design.md, "Command line").

Exit codes: 0 all done; 1 finished but some inputs were rejected; 2 usage or configuration error.
Each area of the tool registers its commands from its own `cli_<area>` module.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click
import typer
from rich.markup import escape
from typer.core import TyperGroup

from adapter.cli_common import AppContext, console
from adapter.errors import AdapterError


class _AdapterGroup(TyperGroup):
    """Turns every AdapterError into a one-line message and its exit code, instead of a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except AdapterError as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_AdapterGroup,
    help="FHIR R4 adapter for the trial: HL7 v2 / HIS / CRF data in, trial endpoints out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Path = typer.Option(
        None, "--config", envvar="ADAPTER_CONFIG", help="Config file (adapter.toml)."
    ),
    fhir_url: str = typer.Option(None, "--fhir-url", envvar="ADAPTER_FHIR_URL", help="FHIR server base URL."),
    state_dir: Path = typer.Option(None, "--state-dir", envvar="ADAPTER_STATE_DIR", help="State directory."),
) -> None:
    ctx.obj = AppContext(config=config, fhir_url=fhir_url, state_dir=state_dir)


# Each area adds its commands here; a module missing from this build is skipped.
_AREAS = (
    "adapter.cli_server",
    "adapter.cli_study",
    "adapter.cli_convert",
    "adapter.cli_sync",
    "adapter.cli_pull",
    "adapter.cli_endpoints",
    "adapter.cli_demo",
)

for _name in _AREAS:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
