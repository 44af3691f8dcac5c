"""Shared plumbing of the command line: the context every command reads, output and exit helpers.

Global options (`--config`, `--fhir-url`, `--state-dir`) are parsed once by the main callback into an
AppContext on `ctx.obj`; settings load lazily so `--help` works even with a broken config file.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from adapter.converters import ConvertContext
from adapter.errors import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, AdapterError
from adapter.roster import Roster, load_roster
from adapter.settings import Settings, load_settings

console = Console(stderr=True)
stdout = Console()


@dataclass
class AppContext:
    config: Path | None = None
    fhir_url: str | None = None
    state_dir: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @cached_property
    def settings(self) -> Settings:
        return self._settings or load_settings(self.config, self.fhir_url, self.state_dir)

    def roster(self, override: Path | None = None) -> Roster:
        """The roster: `--roster` if given, else the one `adapter enroll` keeps in the state dir."""
        settings = self.settings
        path = override or settings.roster_path
        if not path.is_file():
            raise AdapterError(
                f"no roster: {path} does not exist; run `adapter enroll ROSTER.csv` or pass --roster"
            )
        return load_roster(path, settings.study)

    def convert_context(self, roster_override: Path | None = None) -> ConvertContext:
        s = self.settings
        return ConvertContext(
            study=s.study,
            roster=self.roster(roster_override),
            mappings_dir=s.mappings_dir,
            identified=s.identified,
            insulin_pmol_per_uiu=s.insulin_pmol_per_uiu,
        )


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext of the running command (a default one when a sub-app is invoked alone in tests)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def emit_json(data: Any) -> None:
    """Machine output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def exit_code_for(rejected: int) -> int:
    return EXIT_REJECTED if rejected else EXIT_OK


JsonOption = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")
