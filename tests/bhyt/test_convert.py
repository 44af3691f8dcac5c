"""`convert_files` for kind bhyt on the synthetic fixtures: golden output, R4 validity, privacy, identity."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapter.bhyt.convert import convert_files
from adapter.cli import app
from adapter.ids import patient_id
from adapter.ndjson import iter_resources
from tests.bhyt.helpers import FIXTURES, assert_golden, context, generator, output_text, secrets, validate

CASES = ["qd130-outpatient", "qd4210-inpatient", "qd4750-reexport", "lieu-dung-forms", "broken"]


@pytest.fixture()
def ctx(study):
    return context(study)


def test_fixtures_are_what_the_generator_writes(tmp_path):
    generator().main(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        assert path.read_bytes() == (FIXTURES / path.name).read_bytes(), f"{path.name}: run generate.py"


@pytest.mark.parametrize("case", CASES)
def test_golden(case, ctx, tmp_path):
    assert_golden(convert_files([FIXTURES / f"{case}.xml"], ctx), FIXTURES / "expected" / case, tmp_path)


@pytest.mark.parametrize("case", CASES)
def test_every_resource_is_valid_r4_and_references_resolve(case, ctx):
    result = convert_files([FIXTURES / f"{case}.xml"], ctx)
    ids = {f"{r['resourceType']}/{r['id']}" for r in result.resources}
    assert len(ids) == len(result.resources), "one resource per id"
    patients = {f"Patient/{patient_id(ctx.study.study.key, s)}" for s in ("S101", "S102")}
    for resource in result.resources:
        validate(resource)
        if resource["resourceType"] == "Provenance":
            assert {t["reference"] for t in resource["target"]} == ids - {f"Provenance/{resource['id']}"}
        else:
            assert resource["subject"]["reference"] in patients


def test_no_identifier_name_or_money_leaves_the_adapter(ctx, caplog):
    caplog.set_level(logging.DEBUG)
    everything = (
        "\n".join(output_text(convert_files([FIXTURES / f"{case}.xml"], ctx)) for case in CASES) + caplog.text
    )
    for value in secrets():
        assert value not in everything, "an identifying or money value was let out"
    # the stranger's encounter key and result are not even mentioned
    assert "24.999999.01" not in everything and "13.9" not in everything


def test_accounts_of_the_outpatient_file(ctx):
    result = convert_files([FIXTURES / "qd130-outpatient.xml"], ctx)
    first, stranger, labs_only = result.accounts
    assert (first.index, first.outcome, first.message_type) == (1, "converted", "BHYT-130")
    assert (stranger.index, stranger.outcome, stranger.segments, stranger.resources) == (
        2,
        "not-enrolled",
        [],
        [],
    )
    assert stranger.as_json().keys() <= {"kind", "source", "index", "outcome", "resources", "sha256"}
    assert labs_only.outcome == "converted"
    by_segment = {s.segment: s for s in first.segments}
    assert by_segment["XML2#6"].status == "ignored"  # oxygen
    assert by_segment["XML4#3-4"].reason == "not a study parameter"  # WBC, creatinine
    assert by_segment["XML4#7"].reason == "GIA_TRI empty: result not yet available"
    assert by_segment["XML3"].reason == "table not used by the study (not decoded)"
    types = [r["resourceType"] for r in result.resources]
    assert types.count("MedicationStatement") == 6 and types.count("Observation") == 6
    assert types.count("Provenance") == 1


def test_provenance_carries_the_sha256_of_the_file(ctx):
    import hashlib

    path = FIXTURES / "qd130-outpatient.xml"
    result = convert_files([path], ctx)
    provenance = next(r for r in result.resources if r["resourceType"] == "Provenance")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance["entity"][0]["what"]["identifier"]["value"] == digest
    assert provenance["recorded"] == "2024-01-17T00:00:00+07:00"  # NGAYLAP, site time
    assert all(a.sha256 == digest for a in result.accounts)


def test_reexport_updates_the_same_resources_with_corrected_content(ctx, tmp_path):
    first = convert_files([FIXTURES / "qd130-outpatient.xml"], ctx)
    again = convert_files([FIXTURES / "qd4750-reexport.xml"], ctx)
    encounter = set(first.accounts[0].resources) - {
        r for r in first.accounts[0].resources if "Provenance" in r
    }
    corrected = set(again.accounts[0].resources) - {
        r for r in again.accounts[0].resources if "Provenance" in r
    }
    assert corrected == encounter, "a re-exported encounter must update, not duplicate"
    by_id = {r["id"]: r for r in again.resources}
    metformin = next(
        r
        for r in again.resources
        if r["resourceType"] == "MedicationStatement"
        and r["medicationCodeableConcept"]["text"] == "Glucophage 850mg"
    )
    assert metformin["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 2  # corrected LIEU_DUNG
    assert metformin["effectivePeriod"]["start"] == "2024-01-15T09:30:00+07:00"  # NGAY_TH_YL preferred
    glucose = [
        r for r in by_id.values() if r["resourceType"] == "Observation" and r["code"]["text"] == "Glucose"
    ]
    assert [g["valueQuantity"]["value"] for g in glucose] == [7.6]
    # both runs merged into one folder: the newer export wins, nothing is duplicated
    out = tmp_path / "out"
    runner = CliRunner()
    for name in ("qd4750-reexport.xml", "qd130-outpatient.xml"):  # order of runs is irrelevant
        res = runner.invoke(
            app,
            [
                "--state-dir",
                str(tmp_path / "state"),
                "convert",
                "bhyt",
                str(FIXTURES / name),
                "--roster",
                str(FIXTURES / "roster.csv"),
                "--out",
                str(out),
            ],
        )
        assert res.exit_code == 0, res.output
    statements = list(iter_resources(out, "MedicationStatement"))
    assert len(statements) == 6
    merged = next(s for s in statements if s["id"] == metformin["id"])
    assert merged["meta"]["lastUpdated"] == "2024-02-20T00:00:00+07:00"
    assert merged["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 2


def test_broken_file_keeps_the_good_hoso_and_rejects_the_rest(ctx):
    result = convert_files([FIXTURES / "broken.xml"], ctx)
    outcomes = [(a.index, a.outcome, a.reason) for a in result.accounts]
    assert outcomes[0][:2] == (1, "converted")
    assert outcomes[1] == (2, "rejected", "XML2: content is not valid base64")
    assert outcomes[2][:2] == (3, "rejected") and outcomes[2][2].startswith("not well-formed XML")
    assert [r["resourceType"] for r in result.resources] == ["Observation", "Provenance"]


def test_unreadable_and_foreign_files_are_rejected_with_index_0(ctx, tmp_path):
    other = tmp_path / "other.xml"
    other.write_text("<?xml version='1.0'?><something/>", encoding="utf-8")
    result = convert_files([other, tmp_path / "missing.xml"], ctx)
    assert [(a.source, a.index, a.outcome) for a in result.accounts] == [
        ("other.xml", 0, "rejected"),
        ("missing.xml", 0, "rejected"),
    ]


def test_cli_convert_writes_ndjson_and_exits_1_when_something_was_rejected(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "--state-dir",
            str(tmp_path / "state"),
            "convert",
            "bhyt",
            str(FIXTURES / "qd4210-inpatient.xml"),
            str(FIXTURES / "broken.xml"),
            "--roster",
            str(FIXTURES / "roster.csv"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert report["inputs"] == {"converted": 2, "rejected": 2}
    assert report["resources"] == {"MedicationStatement": 4, "Observation": 4, "Provenance": 2}
    accounts = [json.loads(line) for line in (out / "messages.ndjson").read_text().splitlines()]
    assert {a["kind"] for a in accounts} == {"bhyt"} and len(accounts) == 4
    assert (out / "MedicationStatement.ndjson").is_file()


def test_nothing_is_sent_for_an_encounter_whose_xml1_is_missing(ctx, tmp_path):
    gen = generator()
    path = tmp_path / "no-xml1.xml"
    tables = [t for t in gen.qd130_outpatient()[0] if t.kind != "XML1"]
    gen.write(path, [tables], "20240117")
    result = convert_files([path], ctx)
    assert result.resources == []
    assert [(a.outcome, a.reason) for a in result.accounts] == [
        ("rejected", "no XML1 (TONG_HOP) in this HOSO: patient unknown")
    ]


def test_enrolled_patient_without_study_data_is_ignored(ctx, tmp_path):
    gen = generator()
    path = tmp_path / "visit.xml"
    xml1 = gen.Table("XML1", [gen.xml1_130("S101", "LK-9", "01", "202401150745", "202401151030")])
    gen.write(
        path,
        [[xml1, gen.Table("XML4", [gen.lab_130("LK-9", 1, "99.1", "WBC", "7", "G/L", "202401150800")])]],
        "20240117",
    )
    result = convert_files([path], ctx)
    assert result.resources == []
    assert [(a.outcome, a.reason) for a in result.accounts] == [
        ("ignored", "nothing for the study in this encounter")
    ]


def test_a_bad_row_rejects_its_hoso_but_the_good_rows_are_kept(ctx, tmp_path):
    gen = generator()
    path = tmp_path / "bad-row.xml"
    xml1 = gen.Table("XML1", [gen.xml1_130("S101", "LK-8", "01", "202401150745", "202401151030")])
    labs = gen.Table(
        "XML4",
        [
            gen.lab_130("LK-8", 1, "23.0083.1523", "HbA1c", "8.1", "%", "2024-01-15"),
            gen.lab_130("LK-8", 2, "23.0075.1494", "Glucose", "7.1", "mmol/L", "202401150800"),
        ],
    )
    gen.write(path, [[xml1, labs]], "20240117")
    result = convert_files([path], ctx)
    (account,) = result.accounts
    assert account.outcome == "rejected"
    assert account.reason == "XML4#1 NGAY_KQ: not yyyyMMdd or yyyyMMddHHmm"
    assert [r["code"]["text"] for r in result.resources if r["resourceType"] == "Observation"] == ["Glucose"]


def test_every_row_of_every_enrolled_hoso_is_accounted_for(ctx):
    result = convert_files([FIXTURES / "qd4210-inpatient.xml"], ctx)
    (account,) = result.accounts
    covered = []
    for segment in account.segments:
        table, _, rows = segment.segment.partition("#")
        first, _, last = rows.partition("-")
        covered += [f"{table}#{i}" for i in range(int(first), int(last or first) + 1)] if rows else [table]
    assert covered == ["XML1"] + [f"XML2#{i}" for i in range(1, 20)] + [f"XML4#{i}" for i in (1, 2, 3)] + [
        "XML5"
    ]
    # consecutive rows of one statement are one range: the 19 daily rows make 4 lines, one per statement
    assert [s.segment for s in account.segments if s.segment.startswith("XML2")] == [
        "XML2#1-5",
        "XML2#6-11",
        "XML2#12-14",
        "XML2#15-19",
    ]


def test_sources_in_accounts_are_file_names_not_paths(ctx):
    result = convert_files([FIXTURES / "qd130-outpatient.xml"], ctx)
    assert {a.source for a in result.accounts} == {"qd130-outpatient.xml"}
    assert not any(str(Path(FIXTURES)) in json.dumps(a.as_json()) for a in result.accounts)


def test_a_hoso_repeated_in_one_file_gives_each_resource_once(ctx, tmp_path):
    gen = generator()
    path = tmp_path / "twice.xml"
    hoso = gen.qd130_outpatient()[0]
    gen.write(path, [hoso, gen.qd130_outpatient()[0]], "20240117")
    result = convert_files([path], ctx)
    keys = [(r["resourceType"], r["id"]) for r in result.resources]
    assert len(keys) == len(set(keys)) == 6 + 4 + 1
    provenance = result.resources[-1]
    assert len(provenance["target"]) == 10
    assert [a.outcome for a in result.accounts] == ["converted", "converted"]
