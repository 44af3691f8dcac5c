"""The HIS medication CSV -> MedicationStatement: golden output, accounts, identity, FHIR validity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.ids import patient_id
from adapter.meds.convert import convert_files
from adapter.meds.drugs import ATC_SYSTEM
from tests.meds.helpers import FIXTURES, assert_golden, context, validate

EXPORT = FIXTURES / "meds" / "his-export.csv"
HEADER = "mrn,drug,dose,unit,times_per_day,route,start_date,end_date\n"


@pytest.fixture()
def ctx(study):
    return context(study)


def _write(tmp_path: Path, body: str, name: str = "export.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8")
    return path


def _atc(resource) -> list[str]:
    return [
        c["code"]
        for c in resource["medicationCodeableConcept"].get("coding", [])
        if c["system"] == ATC_SYSTEM
    ]


def test_golden_fixture(ctx, tmp_path):
    assert_golden(convert_files([EXPORT], ctx), FIXTURES / "meds" / "expected", tmp_path)


def test_every_row_is_accounted_for_and_every_resource_validates(ctx):
    result = convert_files([EXPORT], ctx)
    rows = len(EXPORT.read_text(encoding="utf-8").splitlines()) - 1
    assert len(result.accounts) == rows == 20
    assert result.counts() == {"converted": 11, "rejected": 8, "not-enrolled": 1}
    assert len(result.resources) == 11
    assert len({r["id"] for r in result.resources}) == 11
    for resource in result.resources:
        validate(resource)


def test_rejections_name_file_line_and_field(ctx):
    reasons = {a.index: a.reason for a in convert_files([EXPORT], ctx).rejected}
    assert reasons == {
        12: "his-export.csv:12: drug: 'Humalog Mix 25' is not in drugs.yaml",
        13: "his-export.csv:13: dose: not a number",
        14: "his-export.csv:14: unit: an insulin dose must be in units (IU/U/units)",
        15: "his-export.csv:15: end_date: before start_date",
        16: "his-export.csv:16: mrn: empty",
        18: "his-export.csv:18: code_system: 'SNOMED' is not ATC, RxNorm, local or MA_THUOC",
        20: "his-export.csv:20: drug: 'Aspirin 81' is not in drugs.yaml",
        21: "his-export.csv:21: times_per_day: must be a whole number of times per day, 1..24",
    }


def test_accounts_carry_no_mrn_and_strangers_leave_nothing(ctx):
    result = convert_files([EXPORT], ctx)
    dumped = json.dumps([a.as_json() for a in result.accounts]) + json.dumps(result.resources)
    for mrn in ("MRN1001", "MRN1002", "MRN1003", "MRN9999"):
        assert mrn not in dumped
    stranger = next(a for a in result.accounts if a.index == 11)
    assert (stranger.outcome, stranger.resources, stranger.reason) == ("not-enrolled", [], None)


def test_insulin_statement_carries_what_insdose_needs(ctx, study):
    result = convert_files([EXPORT], ctx)
    by_line = {a.index: a.resources[0].split("/")[1] for a in result.accounts if a.resources}
    resources = {r["id"]: r for r in result.resources}
    morning, evening = resources[by_line[2]], resources[by_line[3]]
    # two same-day lines of one insulin (morning 20 U, evening 10 U) stay two statements
    assert morning["id"] != evening["id"]
    assert _atc(morning) == ["A10AD01"]
    assert morning["subject"] == {"reference": f"Patient/{patient_id(study.study.key, 'VH-001')}"}
    assert morning["status"] == "completed"
    assert morning["effectivePeriod"] == {"start": "2023-11-01", "end": "2024-03-31"}
    dosage = morning["dosage"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"]["code"] == "[IU]"
    total = sum(
        r["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"]
        * r["dosage"][0]["timing"]["repeat"]["frequency"]
        for r in (morning, evening)
    )
    assert total == 30  # INSDOSE of VH-001 on 2024-01-15: 20 x 1 + 10 x 1
    assert dosage["route"] == {"text": "subcutaneous"}
    assert dosage["text"] == "20 U, 1 times/day, tiêm dưới da"
    lantus = resources[by_line[4]]
    assert lantus["status"] == "active" and "end" not in lantus["effectivePeriod"]
    assert lantus["medicationCodeableConcept"]["text"] == "Lantus SoloStar"


def test_vietnamese_dates_units_and_decimal_comma(ctx):
    result = convert_files([EXPORT], ctx)
    tresiba = next(r for r in result.resources if r["medicationCodeableConcept"]["text"] == "Tresiba")
    assert tresiba["effectivePeriod"] == {"start": "2024-02-05"}
    assert tresiba["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 10.5
    assert _atc(tresiba) == ["A10AE06"]


def test_codes_given_by_the_his_win_over_the_name(ctx):
    result = convert_files([EXPORT], ctx)
    by_text = {r["medicationCodeableConcept"]["text"]: r for r in result.resources}
    local = by_text["Metformin (local brand X)"]
    assert _atc(local) == ["A10BA02"]
    unmapped = by_text["Glucose-lowering drug Y"]["medicationCodeableConcept"]
    assert unmapped["coding"] == [{"system": ATC_SYSTEM, "code": "A10BX99"}]


def test_combination_carries_component_codes_in_an_extension(ctx, study):
    result = convert_files([EXPORT], ctx)
    combo = next(r for r in result.resources if r["medicationCodeableConcept"]["text"] == "Amaryl M 2/500")
    assert _atc(combo) == []
    components = [
        e["valueCodeableConcept"]
        for e in combo["extension"]
        if e["url"] == study.system("StructureDefinition/medication-component")
    ]
    assert [c["coding"][0]["code"] for c in components] == ["A10BB12", "A10BA02"]
    assert combo["dosage"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 1,
        "unit": "tablet",
        "system": "http://unitsofmeasure.org",
        "code": "{tbl}",
    }


def test_drug_without_rxnorm_gets_atc_only(ctx):
    result = convert_files([EXPORT], ctx)
    galvus = next(
        r for r in result.resources if r["medicationCodeableConcept"]["text"] == "Vildagliptin 50mg"
    )
    systems = [c["system"] for c in galvus["medicationCodeableConcept"]["coding"]]
    assert systems == [ATC_SYSTEM, "https://vanhanh.example.org/fhir/CodeSystem/drugs"]


def test_conversion_is_deterministic_and_reimport_gives_the_same_ids(ctx, tmp_path):
    first = convert_files([EXPORT], ctx)
    copy = tmp_path / "march-export.csv"
    copy.write_bytes(EXPORT.read_bytes())
    second = convert_files([copy], ctx)
    assert first.resources == second.resources


def test_a_corrected_export_updates_the_same_statements(ctx, tmp_path):
    before = convert_files([_write(tmp_path, "MRN1001,Lantus,16,U,1,SC,2024-04-01,\n", "jan.csv")], ctx)
    after = convert_files(
        [_write(tmp_path, "MRN1001,Lantus,18,U,1,SC,2024-04-01,2024-05-01\n", "feb.csv")], ctx
    )
    assert [r["id"] for r in before.resources] == [r["id"] for r in after.resources]
    assert after.resources[0]["status"] == "completed"
    assert after.resources[0]["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 18


def test_a_rejected_row_keeps_the_numbering_of_later_same_day_rows(ctx, tmp_path):
    good = "MRN1001,Lantus,16,U,1,SC,2024-04-01,\nMRN1001,Lantus,4,U,1,SC,2024-04-01,\n"
    bad_first = "MRN1001,Lantus,x,U,1,SC,2024-04-01,\nMRN1001,Lantus,4,U,1,SC,2024-04-01,\n"
    ok = convert_files([_write(tmp_path, good, "a.csv")], ctx)
    partly = convert_files([_write(tmp_path, bad_first, "b.csv")], ctx)
    assert partly.resources[0]["id"] == ok.resources[1]["id"]


def test_semicolon_bom_crlf_and_cp1258_exports(ctx, tmp_path):
    text = (
        "\ufeffmrn;drug;dose;unit;times_per_day;route;start_date;end_date\r\n"
        "MRN1002;Metformin;500;mg;2;uống;2024-01-10;\r\n"
    )
    path = tmp_path / "semi.csv"
    path.write_bytes(text.encode("utf-8"))
    result = convert_files([path], ctx)
    assert result.counts() == {"converted": 1}
    assert result.accounts[0].index == 2
    legacy = tmp_path / "legacy.csv"
    # cp1258 has "ô" precomposed but the tone as a combining mark
    row = "MRN1002,Metformin,500,mg,2,u\u00f4\u0301ng,2024-01-10,\n"
    legacy.write_bytes(HEADER.encode() + row.encode("cp1258"))
    dosage = convert_files([legacy], ctx).resources[0]["dosage"][0]
    assert dosage["route"] == {"text": "oral"}
    assert dosage["text"] == "500 mg, 2 times/day, uống"  # NFC: one precomposed character again


def test_missing_columns_reject_the_file_not_the_run(ctx, tmp_path):
    bad = _write(tmp_path, "MRN1001,Lantus\n", "bad.csv", header="mrn,drug\n")
    good = _write(tmp_path, "MRN1001,Lantus,16,U,1,SC,2024-04-01,\n", "good.csv")
    result = convert_files([bad, good], ctx)
    assert result.accounts[0].outcome == "rejected" and result.accounts[0].index == 0
    assert "bad.csv:1: header lacks column(s): dose, unit" in result.accounts[0].reason
    assert result.counts() == {"rejected": 1, "converted": 1}


def test_times_and_offsets_follow_the_site_timezone(ctx, tmp_path):
    path = _write(tmp_path, "MRN1002,Metformin,500,mg,2,PO,2024-01-10 08:00,2024-02-01T20:00:00+00:00\n")
    resource = convert_files([path], ctx).resources[0]
    assert resource["effectivePeriod"] == {
        "start": "2024-01-10T08:00:00+07:00",
        "end": "2024-02-01T20:00:00+00:00",
    }
    validate(resource)
