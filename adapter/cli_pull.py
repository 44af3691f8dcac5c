"""`adapter pull --out DIR [--bulk] [--since INSTANT] [--json]`: the study's resources back as NDJSON."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapter.cli_common import JsonOption, app_context, console, emit_json
from adapter.fhir.client import client_for
from adapter.pull import PullResult, parse_since, pull_bulk, pull_search


class RichProgress:
    """The pull's progress as rich bars on stderr: one per stage (a type, the export, a download)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: int | None = None

    def stage(self, label: str, total: int | None = None) -> None:
        if self._task is not None:  # close the previous stage: a bar without a total shows as done
            done = next(t.completed for t in self._progress.tasks if t.id == self._task)
            self._progress.update(self._task, total=max(done, 1), completed=max(done, 1))
        self._task = self._progress.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def note(self, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=f"$export: {escape(text[:80])}")


def _summary(result: PullResult) -> str:
    made = ", ".join(f"{n} {t}" for t, n in result.counts.items() if n) or "nothing new"
    lines = [
        f"pulled ({result.mode}) {result.subjects} subjects into {result.out}: {made} "
        f"[{result.requests} requests, {result.seconds:.1f} s]"
    ]
    if result.next_since:
        lines.append(f"next incremental pull: --since {result.next_since}")
    lines.extend(f"[yellow]export error[/] {escape(e)}" for e in result.export_errors)
    return "\n".join(lines)


def pull(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", file_okay=False, help="NDJSON output folder (one file per type)."),
    use_bulk: bool = typer.Option(
        False, "--bulk", help="Use Bulk Data export of the cohort Group (Group/<id>/$export)."
    ),
    since: str = typer.Option(
        None, "--since", help="Only what changed since this instant (2024-05-01T00:00:00Z) or date; merged."
    ),
    export_timeout: float = typer.Option(3600.0, "--export-timeout", help="Seconds to wait for $export."),
    poll_max: float = typer.Option(
        10.0, "--poll-max", help="Longest wait between $export status polls (caps Retry-After)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write the study's resources from the FHIR server as NDJSON, one file per resource type."""
    settings = app_context(ctx).settings
    since_at = parse_since(since) if since else None
    client = client_for(settings)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
        disable=as_json and not console.is_terminal,
    ) as bars:
        progress = RichProgress(bars)
        if use_bulk:
            result = pull_bulk(
                client, settings.study, out, since_at, progress, timeout=export_timeout, poll_cap=poll_max
            )
        else:
            result = pull_search(client, settings.study, out, since_at, progress)
    if as_json:
        emit_json(result.as_json())
    else:
        console.print(_summary(result), highlight=False)
    if result.export_errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("pull")(pull)
