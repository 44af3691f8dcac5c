"""`adapter endpoints --source URL|DIR --out DIR`: the trial's endpoints from a FHIR server or a folder."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapter.cli_common import JsonOption, app_context, console, emit_json, exit_code_for, stdout
from adapter.errors import ConfigError

if TYPE_CHECKING:  # the engine (numpy, scipy, matplotlib) loads only when the command runs
    from adapter.endpoints.pipeline import EndpointsResult


def _cutoff(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--cutoff {text!r} is not an ISO 8601 date (YYYY-MM-DD)") from exc


def _table(result: EndpointsResult) -> Table:
    """Per parameter and visit: n and mean (SD) of the value by arm, and the ANCOVA difference in change."""
    from adapter.endpoints.dataset import unit_label
    from adapter.endpoints.output import fmt_p

    study = result.analysis.study
    cfg = result.analysis.config
    reference = cfg.statistics.reference_arm
    others = [a for a in study.arms if a.id != reference]
    table = Table(title=f"{study.study.key} endpoints (value: n, mean (SD); change: ANCOVA vs {reference})")
    table.add_column("param")
    table.add_column("visit")
    for arm in study.arms:
        table.add_column(arm.id, justify="right")
    for arm in others:
        table.add_column(f"\u0394 {arm.id} (95% CI), p", justify="right")
    stats = {(s.arm, s.param, s.visit, s.variable): s for s in result.summary}
    comps = {(c.arm, c.param, c.visit, c.method): c for c in result.comparisons}
    for param in study.parameters:
        d = cfg.output.display_decimals.get(param.id, 2) + 1
        for i, visit in enumerate(study.visits):
            cells = []
            for arm in study.arms:
                s = stats.get((arm.id, param.id, visit.id, "value"))
                if s is None or not s.n:
                    cells.append("0")
                else:
                    sd = f" ({s.sd:.{d}f})" if s.sd is not None else ""
                    cells.append(f"{s.n}  {s.mean:.{d}f}{sd}")
            for arm in others:
                c = comps.get((arm.id, param.id, visit.id, "ancova"))
                if c is None or c.estimate is None:
                    cells.append("\u2013")
                else:
                    cells.append(
                        f"{c.estimate:.{d}f} ({c.ci_low:.{d}f}; {c.ci_high:.{d}f}), p={fmt_p(c.p_value)}"
                    )
            unit = unit_label(param)
            label = f"{param.id} ({unit})" if unit and i == 0 else (param.id if i == 0 else "")
            table.add_row(label, visit.id, *cells, end_section=i == len(study.visits) - 1)
    return table


def endpoints(
    ctx: typer.Context,
    source: str = typer.Option(..., "--source", help="FHIR server base URL, or an NDJSON folder."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Output folder (created if needed)."),
    write_back: bool = typer.Option(
        False, "--write-back", help="PUT the derived HOMA Observations to the server (server source only)."
    ),
    cutoff: str = typer.Option(
        None, "--cutoff", help="Data cut-off date (YYYY-MM-DD); default: the latest date in the data."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Analysis dataset, summaries, comparisons, AE tables, report and SDTM from FHIR data."""
    from adapter.endpoints import load_endpoints_config, open_source, run_endpoints
    from adapter.endpoints.source import ServerSource, is_url

    settings = app_context(ctx).settings
    study = settings.study
    config = load_endpoints_config(settings.mappings_dir, study)
    cut = _cutoff(cutoff)
    if write_back and not is_url(source):
        raise ConfigError(
            "--write-back needs a FHIR server as --source; the derived Observations are written to "
            f"{out / 'derived' / 'Observation.ndjson'} either way"
        )
    src = open_source(source, settings)
    factors = {"insulin_pmol_per_uiu": settings.insulin_pmol_per_uiu}
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]endpoints[/] {task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as progress:
        task = progress.add_task("reading", total=None)
        read: dict[str, int] = {}

        def tick(resource_type: str, n: int) -> None:
            read[resource_type] = read.get(resource_type, 0) + n
            progress.update(task, description=f"reading {resource_type}: {read[resource_type]:,}")

        result = run_endpoints(src, out, study, config, factors, cutoff=cut, progress=tick)
    written = None
    if write_back:
        from adapter.push import push

        assert isinstance(src, ServerSource)
        pushed = push(src.client, result.derived, settings.sync.bundle_size, "write-back")  # type: ignore[arg-type]
        written = {"resources": len(result.derived), "created": pushed.created}
    summary = {
        "out": str(out),
        "source": src.description,
        "subjects": len(result.analysis.subjects),
        "without_day1": [s.subject_id for s in result.analysis.subjects if s.day1 is None],
        "cutoff": str(result.analysis.cutoff) if result.analysis.cutoff else None,
        "files": result.files,
        "issues": {"rejected": result.rejected, "excluded": len(result.issues) - result.rejected},
        "written_back": written,
    }
    if as_json:
        emit_json(summary)
    else:
        stdout.print(_table(result))
        console.print(
            f"{summary['subjects']} subjects, {result.files['endpoints.csv']} endpoint rows -> {out}"
            + (f"; {len(summary['without_day1'])} without Day 1" if summary["without_day1"] else "")
        )
        if result.rejected:
            console.print(
                f"[yellow]{result.rejected} resource(s) could not be used[/]: see {out / 'data_issues.csv'}"
            )
        if written:
            console.print(
                f"wrote back {written['resources']} derived Observations ({written['created']} new)"
            )
    raise typer.Exit(exit_code_for(result.rejected))


def register(app: typer.Typer) -> None:
    app.command("endpoints")(endpoints)
