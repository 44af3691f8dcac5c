"""`adapter endpoints` end to end through the CLI: files, exit codes, JSON, the report page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from tests.endpoints.conftest import FIXTURE

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("cli") / "out"
    state = tmp_path_factory.mktemp("state")
    result = runner.invoke(
        app, ["--state-dir", str(state), "endpoints", "--source", str(FIXTURE), "--out", str(out), "--json"]
    )
    return out, result


def test_exit_1_when_some_resources_were_rejected(cli_run: tuple[Path, object]) -> None:
    out, result = cli_run
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    summary = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert summary["subjects"] == 6
    assert summary["without_day1"] == ["E03"]
    assert summary["cutoff"] == "2024-07-31"  # the latest date in the data
    assert summary["issues"] == {"rejected": 2, "excluded": 5}
    for name in (
        "endpoints.csv",
        "summary.csv",
        "comparisons.csv",
        "adverse_events.csv",
        "ae_listing.csv",
        "medications.csv",
        "data_issues.csv",
        "report.html",
        "run.json",
        "sdtm/dm.csv",
        "sdtm/lb.csv",
        "sdtm/ae.csv",
        "sdtm/cm.csv",
        "sdtm/ex.csv",
    ):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["settings"]["insulin_pmol_per_uiu"] == 6.0
    assert run["config"]["statistics"]["quantile_method"] == "linear"


def test_report_is_self_contained_and_states_its_methods(cli_run: tuple[Path, object]) -> None:
    out, _ = cli_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=['"]https?://""", html)  # nothing loaded from elsewhere
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == 10 + 1  # one figure per parameter, one AE chart
    for section in (
        "Methods",
        "Visit compliance and missingness",
        "Results by parameter",
        "Adverse events",
        "Data issues",
        "Antidiabetic medication",
    ):
        assert section in html
    assert "Hyndman &amp; Fan type 7" in html  # the quantile method is stated
    assert "no infusion recorded" in html  # E03 is reported
    assert "6 pmol/L per \u00b5IU/mL" in html


def test_write_back_needs_a_server(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["endpoints", "--source", str(FIXTURE), "--out", str(tmp_path / "o"), "--write-back"]
    )
    assert result.exit_code == 2
    assert "--write-back needs a FHIR server" in " ".join(result.output.split())


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["endpoints", "--source", str(empty), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no enrolled ResearchSubject" in " ".join(result.output.split())
    result = runner.invoke(
        app, ["endpoints", "--source", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "not a folder" in " ".join(result.output.split())
    result = runner.invoke(
        app, ["endpoints", "--source", str(FIXTURE), "--out", str(tmp_path / "o"), "--cutoff", "31/07/2024"]
    )
    assert result.exit_code == 2
