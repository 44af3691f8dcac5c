import json

from fhir.resources.R4B import get_fhir_model_class

from adapter.ids import patient_id
from adapter.mapping.study import study_id, study_resources
from adapter.mapping.subjects import roster_conversion


def _validate(resource):
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_study_resources_are_valid_r4_and_carry_the_protocol(study):
    resources = study_resources(study)
    for resource in resources:
        _validate(resource)
    rs = resources[-1]
    assert rs["resourceType"] == "ResearchStudy" and rs["id"] == study_id(study)
    assert {i["value"] for i in rs["identifier"]} == {"NCT03943940", "TNLS012019-TBG"}
    assert rs["phase"]["coding"][0]["code"] == "phase-1-phase-2"
    assert rs["condition"][0]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "44054006",
        "display": "Diabetes mellitus type 2 (disorder)",
    }
    assert [a["name"] for a in rs["arm"]] == ["cell-therapy", "control"]
    assert len(rs["objective"]) == len(study.outcomes)
    plan = resources[2]
    windows = {
        a["id"]: (a["timingRange"]["low"]["value"], a["timingRange"]["high"]["value"]) for a in plan["action"]
    }
    assert windows == {"BASELINE": (-28, 1), "M1": (23, 37), "M3": (77, 105), "M6": (161, 203)}


def test_subjects_are_pseudonymised(roster, study):
    conversion = roster_conversion(roster, study)
    for resource in conversion.resources:
        _validate(resource)
    text = json.dumps(conversion.resources) + json.dumps([a.as_json() for a in conversion.accounts])
    for subject in roster:
        assert subject.mrn not in text
    patient = next(r for r in conversion.resources if r["resourceType"] == "Patient")
    assert set(patient) == {"resourceType", "id", "identifier", "gender", "birthDate"}
    assert patient["birthDate"] == "1965"
    group = next(r for r in conversion.resources if r["resourceType"] == "Group")
    assert [m["entity"]["reference"] for m in group["member"]] == [
        f"Patient/{patient_id(study.study.key, s)}" for s in ("S001", "S002", "S003")
    ]


def test_identified_mode_adds_the_mrn(roster, study):
    conversion = roster_conversion(roster, study, identified=True)
    assert "MRN1001" in json.dumps(conversion.resources)


def test_ids_are_stable_across_runs(roster, study):
    first = roster_conversion(roster, study).resources
    second = roster_conversion(roster, study).resources
    assert first == second
