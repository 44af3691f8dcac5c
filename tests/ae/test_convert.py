"""The CRF adverse-event CSV -> AdverseEvent (R4): golden output, the where-is-what contract, identity."""

from __future__ import annotations

import json

import pytest

from adapter.ae.convert import convert_files
from adapter.ae.terms import RELATED_CAUSALITY
from adapter.ids import patient_id, stable_id
from adapter.mapping.intervention import procedure_id
from tests.meds.helpers import FIXTURES, assert_golden, context, validate

EXPORT = FIXTURES / "ae" / "crf-ae.csv"
HEADER = "subject_id,term,onset,resolved,severity,serious,related,outcome\n"


@pytest.fixture()
def ctx(study):
    return context(study, FIXTURES / "ae" / "roster.csv")


@pytest.fixture()
def converted(ctx):
    result = convert_files([EXPORT], ctx)
    by_line = {
        a.index: r
        for a in result.accounts
        for r in result.resources
        if a.resources == [f"AdverseEvent/{r['id']}"]
    }
    return result, by_line


def _ext(resource, study, name):
    url = study.system(f"StructureDefinition/{name}")
    found = [e for e in resource.get("extension", []) if e["url"] == url]
    return found[0] if found else None


def test_golden_fixture(ctx, tmp_path):
    assert_golden(convert_files([EXPORT], ctx), FIXTURES / "ae" / "expected", tmp_path)


def test_accounts_and_validity(converted):
    result, _ = converted
    assert len(result.accounts) == 16
    assert result.counts() == {"converted": 9, "rejected": 6, "not-enrolled": 1}
    for resource in result.resources:
        validate(resource)
    reasons = {a.index: a.reason for a in result.rejected}
    assert reasons == {
        10: "crf-ae.csv:10: onset: not a date (YYYY-MM-DD, YYYY-MM-DDThh:mm or dd/mm/yyyy)",
        11: "crf-ae.csv:11: severity: not mild, moderate, severe or a CTCAE grade 1-5",
        12: "crf-ae.csv:12: serious: not serious/non-serious (also yes/no, y/n, 1/0, true/false)",
        13: "crf-ae.csv:13: related: not a WHO-UMC causality term (certain, probable/likely, possible, "
        "unlikely, conditional/unclassified, unassessable/unclassifiable)",
        14: "crf-ae.csv:14: resolved: before onset",
        17: "crf-ae.csv:17: subject_id: empty",
    }
    stranger = next(a for a in result.accounts if a.index == 9)
    assert (stranger.outcome, stranger.resources) == ("not-enrolled", [])
    assert "VH-999" not in json.dumps([a.as_json() for a in result.accounts])


def test_cell_therapy_ae_points_at_the_infusion_with_causality(converted, study):
    _, by_line = converted
    fever = by_line[2]
    key = study.study.key
    assert fever["actuality"] == "actual"
    assert fever["event"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "386661006", "display": "Fever (finding)"}],
        "text": "Fever",
    }
    assert fever["subject"] == {"reference": f"Patient/{patient_id(key, 'VH-001')}"}
    assert fever["date"] == "2024-01-15"
    assert _ext(fever, study, "ae-resolved-date")["valueDateTime"] == "2024-01-16"
    assert _ext(fever, study, "ae-ctcae-grade")["valueInteger"] == 1
    assert fever["severity"]["coding"][0]["code"] == "mild"
    assert fever["seriousness"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
        "code": "Non-serious",
        "display": "Non-serious",
    }
    assert fever["outcome"]["coding"][0]["code"] == "resolved"
    suspect = fever["suspectEntity"][0]
    assert suspect["instance"] == {"reference": f"Procedure/{procedure_id(key, 'VH-001', 'cell-infusion')}"}
    assert suspect["causality"][0]["assessment"]["coding"][0]["code"] == "Possible"
    assert fever["study"] == [{"reference": f"ResearchStudy/{stable_id('study', key)}"}]


def test_harvest_site_ae_points_at_the_harvest(converted, study):
    _, by_line = converted
    pain = by_line[3]
    assert pain["suspectEntity"][0]["instance"]["reference"] == (
        f"Procedure/{procedure_id(study.study.key, 'VH-001', 'bm-harvest')}"
    )
    assert pain["suspectEntity"][0]["causality"][0]["assessment"]["coding"][0]["code"] == "Probably-Likely"
    assert "coding" not in pain["event"]  # no verified SNOMED code for it: text only
    assert pain["event"]["text"] == "Bone marrow aspiration site pain"


def test_controls_and_not_infused_subjects_keep_causality_in_the_extension(converted, study):
    _, by_line = converted
    control = by_line[6]  # VH-002, control, Certain
    assert "suspectEntity" not in control
    assert _ext(control, study, "ae-causality")["valueCodeableConcept"]["coding"][0]["code"] == "Certain"
    assert control["outcome"]["coding"][0]["code"] == "resolvedWithSequelae"
    assert control["seriousness"]["coding"][0]["code"] == "Serious"
    not_infused = by_line[8]  # VH-003: cell-therapy arm, no infusion date yet
    assert "suspectEntity" not in not_infused
    assert _ext(not_infused, study, "ae-causality")["valueCodeableConcept"]["coding"][0]["code"] == (
        "Conditional-Classified"
    )
    assert _ext(not_infused, study, "ae-ctcae-grade")["valueInteger"] == 4


def test_related_is_recoverable_from_the_extension_for_every_ae(converted, study):
    result, _ = converted
    related = {}
    for resource in result.resources:
        ext = _ext(resource, study, "ae-causality")
        code = ext["valueCodeableConcept"]["coding"][0]["code"] if ext else None
        related[(resource["event"]["text"], resource["date"])] = code in RELATED_CAUSALITY
    assert related == {
        ("Fever", "2024-01-15"): True,  # possible
        ("Bone marrow aspiration site pain", "2024-01-15"): True,  # probable/likely
        ("Hypoglycaemia", "2024-02-03"): False,  # unlikely
        ("Headache", "2024-01-20"): False,  # unassessable
        ("Hypoglycemia", "2024-02-10"): True,  # certain
        ("Nausea", "2024-01-15"): True,  # possible
        ("Chills", "2024-02-02"): False,  # conditional
        ("Infusion reaction", "2024-01-15T14:30:00+07:00"): True,  # CERTAIN
        ("Sốt", "2024-03"): False,  # no causality given
    }


def test_unknown_term_is_kept_as_text_and_flagged(converted):
    result, by_line = converted
    nausea = by_line[7]
    assert nausea["event"] == {"text": "Nausea"}
    account = next(a for a in result.accounts if a.index == 7)
    assert account.outcome == "converted"
    assert account.reason == "event: term not in adverse-events.yaml, coded as text only"


def test_partial_dates_and_vietnamese_values(converted, study):
    _, by_line = converted
    sot = by_line[16]
    assert sot["date"] == "2024-03"
    assert sot["event"]["coding"][0]["code"] == "386661006"
    assert sot["event"]["text"] == "Sốt"
    assert sot["severity"]["coding"][0]["code"] == "mild"
    assert sot["seriousness"]["coding"][0]["code"] == "Non-serious"
    assert _ext(sot, study, "ae-causality") is None
    assert sot["outcome"]["coding"][0]["code"] == "unknown"
    timed = by_line[15]
    assert timed["date"] == "2024-01-15T14:30:00+07:00"
    assert _ext(timed, study, "ae-resolved-date")["valueDateTime"] == "2024-01-15T16:00:00+07:00"


def test_reimport_and_corrections_keep_ids(ctx, tmp_path):
    first = tmp_path / "a.csv"
    first.write_text(HEADER + "VH-001,Fever,2024-01-15,,1,no,possible,ongoing\n", encoding="utf-8")
    corrected = tmp_path / "b.csv"
    corrected.write_text(
        HEADER + "VH-001,fever ,2024-01-15,2024-01-17,2,no,probable,resolved\n", encoding="utf-8"
    )
    a = convert_files([first], ctx).resources
    b = convert_files([corrected], ctx).resources
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert b[0]["severity"]["coding"][0]["code"] == "moderate"
    assert convert_files([EXPORT], ctx).resources == convert_files([EXPORT], ctx).resources


def test_two_same_day_events_of_one_term_stay_two(ctx, tmp_path):
    path = tmp_path / "two.csv"
    path.write_text(
        HEADER
        + "VH-001,Headache,2024-01-15,,1,no,possible,resolved\n"
        + "VH-001,Headache,2024-01-15,,2,no,possible,resolved\n",
        encoding="utf-8",
    )
    resources = convert_files([path], ctx).resources
    assert len({r["id"] for r in resources}) == 2
