"""`adapter convert KIND PATH... --out DIR` (offline, NDJSON) and `adapter ingest KIND PATH...` (push).

Both run the same converter (adapter/converters.py); only the destination differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape

from adapter.cli_common import JsonOption, app_context, console, emit_json, exit_code_for
from adapter.converters import ConvertContext, converter
from adapter.errors import ConfigError, ServerUnreachable
from adapter.fhir.client import client_for
from adapter.model import Conversion
from adapter.ndjson import merge_accounts, merge_resources
from adapter.push import push
from adapter.roster import Roster, load_roster


class ConvertKind(StrEnum):
    roster = "roster"
    hl7 = "hl7"
    meds = "meds"
    bhyt = "bhyt"
    ae = "ae"


class IngestKind(StrEnum):
    hl7 = "hl7"
    meds = "meds"
    bhyt = "bhyt"
    ae = "ae"


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; folders expand to the files below them (sorted, hidden files skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.parts[len(path.parts) :])
            )
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    return files


def run_conversion(ctx: typer.Context, kind: str, paths: Sequence[Path], roster: Path | None) -> Conversion:
    app = app_context(ctx)
    files = expand_paths(paths)
    if kind == "roster":
        settings = app.settings
        base = load_roster(roster, settings.study) if roster else Roster([], source="")
        context = ConvertContext(
            settings.study, base, settings.mappings_dir, settings.identified, settings.insulin_pmol_per_uiu
        )
    else:
        context = app.convert_context(roster)
    return converter(kind)(files, context)


def report(conversion: Conversion, as_json: bool, extra: dict | None = None) -> int:
    """Print what happened to every input (rejections one per line) and return the exit code."""
    counts = conversion.counts()
    by_type: dict[str, int] = {}
    for resource in conversion.resources:
        by_type[resource["resourceType"]] = by_type.get(resource["resourceType"], 0) + 1
    rejected = conversion.rejected
    if as_json:
        emit_json(
            {
                "inputs": counts,
                "resources": by_type,
                "rejected": [
                    {"source": a.source, "index": a.index, "control_id": a.control_id, "reason": a.reason}
                    for a in rejected
                ],
                **(extra or {}),
            }
        )
    else:
        for account in rejected:
            ident = f" ({account.control_id})" if account.control_id else ""
            console.print(
                f"[yellow]rejected[/] {account.source}#{account.index}{ident}: {account.reason}",
                highlight=False,
            )
        inputs = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no inputs"
        made = ", ".join(f"{n} {t}" for t, n in sorted(by_type.items())) or "no resources"
        console.print(f"inputs: {inputs}; resources: {made}", highlight=False)
    return exit_code_for(len(rejected))


def convert(
    ctx: typer.Context,
    kind: ConvertKind = typer.Argument(..., help="Input kind."),
    paths: list[Path] = typer.Argument(..., help="Input files or folders."),
    out: Path = typer.Option(..., "--out", help="NDJSON output folder (merged by type and id)."),
    roster: Path = typer.Option(
        None, "--roster", help="Roster CSV (default: the one kept by `adapter enroll`)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Convert inputs offline into FHIR R4 NDJSON files, one per resource type (no server)."""
    conversion = run_conversion(ctx, kind.value, paths, roster)
    out.mkdir(parents=True, exist_ok=True)
    totals = merge_resources(out, conversion.resources)
    merge_accounts(out, conversion.accounts)
    raise typer.Exit(report(conversion, as_json, {"out": str(out), "files": totals}))


def ingest(
    ctx: typer.Context,
    kind: IngestKind = typer.Argument(..., help="Input kind."),
    paths: list[Path] = typer.Argument(..., help="Input files or folders."),
    roster: Path = typer.Option(
        None, "--roster", help="Roster CSV (default: the one kept by `adapter enroll`)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Convert inputs and push them to the FHIR server in transaction bundles."""
    conversion = run_conversion(ctx, kind.value, paths, roster)
    settings = app_context(ctx).settings
    try:
        result = push(
            client_for(settings), conversion.resources, settings.sync.bundle_size, f"ingest {kind.value}"
        )
    except ServerUnreachable as exc:  # design: queued in the outbox if the server is down
        from adapter.sync import queue_unsent

        queued = queue_unsent(settings, conversion.resources, f"ingest {kind.value}")
        console.print(
            f"[yellow]warning:[/] {escape(str(exc))}; {queued} resource(s) queued in the outbox "
            "for the next `adapter sync`",
            highlight=False,
        )
        raise typer.Exit(report(conversion, as_json, {"created": 0, "sent": 0, "queued": queued})) from None
    raise typer.Exit(report(conversion, as_json, {"created": result.created, "sent": len(result.statuses)}))


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
    app.command("ingest")(ingest)
