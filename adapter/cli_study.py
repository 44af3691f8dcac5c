"""`adapter study push` and `adapter enroll`: the protocol and the subjects on the server."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from adapter.cli_common import JsonOption, app_context, console, emit_json, exit_code_for, fail
from adapter.fhir.client import client_for
from adapter.mapping.study import study_resources
from adapter.mapping.subjects import roster_conversion
from adapter.push import push
from adapter.roster import load_roster

study_app = typer.Typer(
    help="The study protocol (ResearchStudy, PlanDefinition, sponsor, site).", no_args_is_help=True
)


@study_app.command("push")
def study_push(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Create or update the ResearchStudy and what it references."""
    settings = app_context(ctx).settings
    resources = study_resources(settings.study)
    result = push(client_for(settings), resources, settings.sync.bundle_size, "study push")
    ids = [f"{r['resourceType']}/{r['id']}" for r in resources]
    if as_json:
        emit_json({"pushed": ids, "statuses": result.statuses})
    else:
        console.print(f"pushed {len(ids)} resources; ResearchStudy: {ids[-1]}")


def enroll(
    ctx: typer.Context,
    roster_csv: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Roster CSV (design page format)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create or update Patients, ResearchSubjects, the cohort Group and intervention records."""
    settings = app_context(ctx).settings
    roster = load_roster(roster_csv, settings.study)
    conversion = roster_conversion(roster, settings.study, settings.identified)
    for error in roster.errors:
        console.print(f"[yellow]rejected[/] {error}")
    if not len(roster):
        fail(f"{roster_csv}: no valid roster rows", 1 if roster.errors else 2)
    result = push(client_for(settings), conversion.resources, settings.sync.bundle_size, "enroll")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    kept = settings.roster_path
    shutil.copyfile(roster_csv, kept)
    kept.chmod(0o600)
    summary = {
        "subjects": len(roster),
        "rejected": len(roster.errors),
        "resources": len(conversion.resources),
        "created": result.created,
        "roster_kept": str(kept),
    }
    if as_json:
        emit_json(summary)
    else:
        console.print(
            f"enrolled {len(roster)} subjects ({result.created} resources created, "
            f"{len(conversion.resources) - result.created} updated or unchanged); "
            f"{len(roster.errors)} rows rejected; roster kept in {kept}"
        )
    raise typer.Exit(exit_code_for(len(roster.errors)))


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
    app.command("enroll")(enroll)
