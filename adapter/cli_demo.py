"""`adapter demo generate|send`: the synthetic trial and hospital feed (adapter/demo/), for tests, demos and
benchmarks. No real patient data ever enters the repository; this makes data that behaves like it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from adapter.cli_common import JsonOption, app_context, console, emit_json, fail
from adapter.demo.generate import OUTPUTS, generate
from adapter.demo.params import load_params
from adapter.errors import ConfigError

demo_app = typer.Typer(
    help="Synthetic trial data (no real patients): roster, HL7, HIS, CRF, hospital feed.",
    no_args_is_help=True,
)


def _prepare(out: Path, force: bool) -> None:
    """Refuse to mix runs: an output folder must be empty, or hold only our outputs and --force."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    present = sorted(p.name for p in out.iterdir())
    ours = [name for name in present if name in OUTPUTS]
    if ours and not force:
        raise ConfigError(
            f"{out}: already holds generated output ({', '.join(ours)}); use --force to replace it"
        )
    for name in ours:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


@demo_app.command("generate")
def generate_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Output folder (created if missing)."),
    subjects: int = typer.Option(
        60, "--subjects", min=1, help="Enrolled subjects, split across the arms as configured."
    ),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed gives byte-identical output."),
    hospital_feed: int = typer.Option(
        0,
        "--hospital-feed",
        min=0,
        help="Extra lab messages for non-enrolled patients, interleaved in feed/.",
    ),
    params_file: Path = typer.Option(
        None,
        "--params",
        help="YAML overriding distributions, effects, quirk shares (adapter/demo/params.py).",
    ),
    null: bool = typer.Option(
        False, "--null", help="Null scenario: the intervention arm changes exactly like the control arm."
    ),
    faults: float = typer.Option(
        None,
        "--faults",
        min=0.0,
        help="Deliberate faults of each kind per 60 subjects (default 1; 0 = none).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace output a previous run left in --out."),
    as_json: bool = JsonOption,
) -> None:
    """Generate a deterministic synthetic trial: roster.csv, hl7/, meds.csv, pharmacy/, ae.csv, feed/,
    manifest.json (which lists the deliberate faults, so tests know which rejections to expect)."""
    study = app_context(ctx).settings.study
    params = load_params(params_file, "null" if null else None, faults)
    _prepare(out, force)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=as_json,
    ) as progress:
        task = progress.add_task("generating", total=None)
        manifest = generate(
            study,
            params,
            subjects,
            seed,
            out,
            hospital_feed,
            progress=lambda step: progress.update(task, description=step),
        )
    summary = {
        "out": str(out),
        "subjects": manifest["subjects"],
        "arms": manifest["arms"],
        "seed": seed,
        "scenario": manifest["scenario"],
        "hl7_messages": manifest["outputs"]["hl7"]["messages"],
        "hl7_files": manifest["outputs"]["hl7"]["files"],
        "meds_rows": manifest["outputs"]["meds.csv"]["rows"],
        "pharmacy_messages": sum(manifest["outputs"]["pharmacy"]["messages"].values()),
        "ae_rows": manifest["outputs"]["ae.csv"]["rows"],
        "feed_messages": manifest["outputs"]["feed"]["messages"],
        "deliberate_faults": len(manifest["faults"]),
    }
    if as_json:
        emit_json(summary)
        return
    arms = ", ".join(f"{arm} {n}" for arm, n in summary["arms"].items())
    console.print(f"[green]generated[/] {summary['subjects']} subjects ({arms}), seed {seed}, into {out}")
    console.print(
        f"  hl7/ {summary['hl7_messages']} ORU^R01 in {summary['hl7_files']} files;"
        f" meds.csv {summary['meds_rows']} rows; pharmacy/ {summary['pharmacy_messages']} RDE/RAS;"
        f" ae.csv {summary['ae_rows']} rows"
        + (f"; feed/ {summary['feed_messages']} messages" if hospital_feed else "")
    )
    console.print(f"  {summary['deliberate_faults']} deliberate faults, listed in {out / 'manifest.json'}")


@demo_app.command("send")
def send_command(
    paths: list[Path] = typer.Argument(..., help="HL7 files or folders to send."),
    host: str = typer.Option("127.0.0.1", "--host", help="Listener address."),
    port: int = typer.Option(2575, "--port", help="Listener port."),
    as_json: bool = JsonOption,
) -> None:
    """Send HL7 messages over MLLP as an interface engine would, one ACK awaited per message."""
    from adapter.cli_convert import expand_paths
    from adapter.mllp.sender import messages_in, send_messages

    messages = messages_in(expand_paths(paths))
    with Progress(
        TextColumn("[bold]MLLP send"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("send", total=len(messages))
        try:
            report = send_messages(messages, host, port, on_ack=lambda _code: progress.advance(task))
        except OSError as exc:
            fail(f"cannot send to {host}:{port}: {exc}")
    if as_json:
        emit_json({"sent": report.sent, "acks": report.codes, "not_accepted": report.not_accepted})
    else:
        codes = ", ".join(f"{n} {code}" for code, n in sorted(report.codes.items()))
        console.print(f"sent {report.sent} messages over MLLP to {host}:{port}: {codes}", highlight=False)
        for control, code in report.not_accepted:
            console.print(f"  [yellow]{code}[/] for message {control}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")
