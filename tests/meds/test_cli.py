"""`adapter convert meds|ae FILE --out DIR`: offline NDJSON, merged by id, exit 1 when rows were rejected."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from adapter.cli import app
from tests.meds.helpers import FIXTURES

runner = CliRunner()
ROSTER = FIXTURES / "meds" / "roster.csv"


def _convert(tmp_path, kind, path, out):
    args = ["--state-dir", str(tmp_path / "state"), "convert", kind, str(path), "--roster", str(ROSTER)]
    return runner.invoke(app, [*args, "--out", str(out), "--json"])


def test_convert_meds_and_ae_into_one_folder_twice(tmp_path):
    out = tmp_path / "out"
    first = _convert(tmp_path, "meds", FIXTURES / "meds" / "his-export.csv", out)
    assert first.exit_code == 1, first.output
    report = json.loads(first.stdout)
    assert report["inputs"] == {"converted": 11, "rejected": 8, "not-enrolled": 1}
    assert report["resources"] == {"MedicationStatement": 11}
    assert _convert(tmp_path, "ae", FIXTURES / "ae" / "crf-ae.csv", out).exit_code == 1
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(snapshot) == ["AdverseEvent.ndjson", "MedicationStatement.ndjson", "messages.ndjson"]
    # a re-run (and the other order) changes nothing: merged by type and id, accounts by file and line
    assert _convert(tmp_path, "ae", FIXTURES / "ae" / "crf-ae.csv", out).exit_code == 1
    assert _convert(tmp_path, "meds", FIXTURES / "meds" / "his-export.csv", out).exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    accounts = [json.loads(line) for line in (out / "messages.ndjson").read_text().splitlines()]
    assert len(accounts) == 20 + 16
    assert len(snapshot["AdverseEvent.ndjson"].splitlines()) == 9


def test_a_clean_file_exits_zero(tmp_path):
    path = tmp_path / "clean.csv"
    path.write_text(
        "mrn,drug,dose,unit,times_per_day,route,start_date,end_date\nMRN1001,Lantus,16,U,1,SC,2024-04-01,\n",
        encoding="utf-8",
    )
    assert _convert(tmp_path, "meds", path, tmp_path / "out").exit_code == 0
