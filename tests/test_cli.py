"""The command line as scripts and cron jobs use it: exit codes, outputs, messages."""

import json

from typer.testing import CliRunner

from adapter.cli import app

runner = CliRunner()


def test_help_lists_the_contract_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("study", "enroll", "convert", "ingest"):
        assert command in result.output


def test_convert_roster_writes_the_bulk_layout(tmp_path, roster_file):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "--state-dir",
            str(tmp_path / "state"),
            "convert",
            "roster",
            str(roster_file),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["inputs"] == {"converted": 3}
    assert summary["files"]["Patient"] == 3 and summary["files"]["ResearchStudy"] == 1
    names = sorted(p.name for p in out.iterdir())
    assert "Patient.ndjson" in names and "ResearchSubject.ndjson" in names and "messages.ndjson" in names
    text = "".join(p.read_text() for p in out.iterdir())
    assert "MRN1001" not in text
    again = runner.invoke(app, ["convert", "roster", str(roster_file), "--out", str(out)])
    assert again.exit_code == 0
    assert (out / "Patient.ndjson").read_text().count("\n") == 3, "a re-run must not duplicate"


def test_rejected_rows_give_exit_1_and_name_the_row(tmp_path, roster_file):
    roster_file.write_text(roster_file.read_text() + "S009,MRN9,placebo,2019-07-01,,F,1960-01-01,55\n")
    result = runner.invoke(app, ["convert", "roster", str(roster_file), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "roster.csv#5" in result.output and "placebo" in result.output


def test_bad_config_is_exit_2_with_the_file_named(tmp_path, roster_file):
    config = tmp_path / "adapter.toml"
    config.write_text('fhir_url = "http://x"\npage_size = "many"\n')
    result = runner.invoke(
        app, ["--config", str(config), "convert", "roster", str(roster_file), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "adapter.toml" in result.output and "page_size" in result.output


def test_missing_roster_for_hl7_is_a_clear_usage_error(tmp_path):
    message = tmp_path / "m.hl7"
    message.write_text("MSH|^~\\&|LIS|LAB|||20190603||ORU^R01|1|P|2.5\r")
    result = runner.invoke(
        app,
        [
            "--state-dir",
            str(tmp_path / "empty"),
            "convert",
            "hl7",
            str(message),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "no roster" in result.output
