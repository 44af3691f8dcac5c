"""The cell-therapy intervention: harvest and infusion Procedures with the cell dose, body weight."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import pytest

from adapter.ids import patient_id, stable_id
from adapter.mapping.intervention import intervention_resources, procedure_id, weight_observation_id
from adapter.roster import Subject
from tests.meds.helpers import validate

TREATED = Subject(
    "S001", "MRN1001", "cell-therapy", date(2019, 6, 3), date(2019, 6, 10), "female", None, 61.5
)
CONTROL = Subject("S002", "MRN1002", "control", date(2019, 6, 4), None, "male", None, 70.0)


def _by_code(resources):
    return {
        (r["code"]["coding"][0]["code"] if r["resourceType"] == "Procedure" else r["resourceType"]): r
        for r in resources
    }


def test_treated_subject_gets_harvest_infusion_and_weight(study):
    resources = intervention_resources(TREATED, study)
    assert [r["resourceType"] for r in resources] == ["Procedure", "Procedure", "Observation"]
    for resource in resources:
        validate(resource)
    found = _by_code(resources)
    key = study.study.key
    infusion = found["cell-infusion"]
    assert (
        infusion["id"]
        == stable_id("proc", key, "S001", "cell-infusion")
        == procedure_id(key, "S001", "cell-infusion")
    )
    assert infusion["status"] == "completed"
    assert infusion["code"]["coding"][0]["system"] == "https://vanhanh.example.org/fhir/CodeSystem/procedures"
    assert infusion["subject"] == {"reference": f"Patient/{patient_id(key, 'S001')}"}
    assert infusion["performedDateTime"] == "2019-06-10"
    harvest = found["bm-harvest"]
    assert harvest["id"] == stable_id("proc", key, "S001", "bm-harvest")
    assert (
        harvest["performedDateTime"] == "2019-06-10"
    )  # same day as the infusion: the roster has no harvest date
    assert "extension" not in harvest


def test_cell_dose_per_kg_and_total_cells(study):
    infusion = _by_code(intervention_resources(TREATED, study))["cell-infusion"]
    ext = {e["url"].rsplit("/", 1)[1]: e["valueQuantity"] for e in infusion["extension"]}
    assert ext["cell-dose-per-kg"] == {
        "value": 1500000,
        "unit": "cells/kg",
        "system": "http://unitsofmeasure.org",
        "code": "{cells}/kg",
    }
    # 1.5e6 cells/kg x 61.5 kg = 92,250,000 cells (exact decimal arithmetic, no float residue)
    assert ext["cell-total"]["value"] == 92250000
    assert ext["cell-total"]["code"] == "{cells}"
    assert "61.5 kg" in infusion["note"][0]["text"]


def test_weight_observation(study):
    weight = _by_code(intervention_resources(CONTROL, study))["Observation"]
    validate(weight)
    key = study.study.key
    assert (
        weight["id"]
        == stable_id("obs-weight", key, "S002", "2019-06-04")
        == weight_observation_id(key, "S002", date(2019, 6, 4))
    )
    assert weight["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}
    ]
    assert weight["category"][0]["coding"][0]["code"] == "vital-signs"
    assert weight["effectiveDateTime"] == "2019-06-04"
    assert weight["valueQuantity"] == {
        "value": 70,
        "unit": "kg",
        "system": "http://unitsofmeasure.org",
        "code": "kg",
    }
    assert weight["status"] == "final"


def test_controls_and_not_yet_infused_get_no_procedure(study):
    assert [r["resourceType"] for r in intervention_resources(CONTROL, study)] == ["Observation"]
    waiting = replace(TREATED, infused_on=None)
    assert [r["resourceType"] for r in intervention_resources(waiting, study)] == ["Observation"]
    assert intervention_resources(replace(CONTROL, weight_kg=None), study) == []


def test_no_weight_means_no_total_cells_but_a_note(study):
    infusion = _by_code(intervention_resources(replace(TREATED, weight_kg=None), study))["cell-infusion"]
    urls = [e["url"].rsplit("/", 1)[1] for e in infusion["extension"]]
    assert urls == ["cell-dose-per-kg"]
    assert "total cells not computed" in infusion["note"][0]["text"]


@dataclass(frozen=True)
class _SubjectWithHarvest(Subject):
    harvested_on: date | None = None


def test_a_harvest_date_on_the_roster_is_used(study):
    subject = _SubjectWithHarvest(**{**TREATED.__dict__, "harvested_on": date(2019, 6, 8)})
    found = _by_code(intervention_resources(subject, study))
    assert found["bm-harvest"]["performedDateTime"] == "2019-06-08"
    assert found["cell-infusion"]["performedDateTime"] == "2019-06-10"


def test_deterministic(study):
    assert intervention_resources(TREATED, study) == intervention_resources(TREATED, study)


def test_unknown_procedure_kind(study):
    with pytest.raises(ValueError, match="unknown procedure kind"):
        procedure_id(study.study.key, "S001", "transplant")
