"""The shared MedicationStatement builder, called the way the BHYT XML2 importer will call it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.ids import patient_id, stable_id
from adapter.meds.dose import Dose, parse_dose
from adapter.meds.drugs import load_drug_map
from adapter.meds.statement import MedicationFacts, medication_administration, medication_statement
from tests.meds.helpers import MAPPINGS, validate


@pytest.fixture(scope="module")
def drugs():
    return load_drug_map(MAPPINGS)


def test_bhyt_style_facts(drugs, study):
    match = drugs.by_code("40.807", "VN")  # MA_THUOC metformin
    facts = MedicationFacts(
        subject_id="VH-002",
        drug=match,
        original_name="Glucophage 850mg",
        identity=(study.study.key, "VH-002", "bhyt-xml2", "MA_LK-1", "3"),
        dose=Dose(Decimal(2), "{tbl}", "tablet"),
        times_per_day=2,
        route_text=drugs.route("1.01").display,
        start="2024-01-10",
        end="2024-01-16",
        text="Sáng: 1 Viên, chiều: 1 Viên [2 Viên/ ngày]",
        source_kind="bhyt-xml2",
    )
    resource = medication_statement(facts, study, drugs)
    validate(resource)
    assert resource["id"] == stable_id("ms", study.study.key, "VH-002", "bhyt-xml2", "MA_LK-1", "3")
    assert resource["status"] == "completed"
    assert resource["subject"]["reference"] == f"Patient/{patient_id(study.study.key, 'VH-002')}"
    assert resource["dosage"][0]["route"] == {"text": "oral"}
    assert resource["dosage"][0]["text"].startswith("Sáng")
    assert resource["extension"][-1] == {
        "url": study.system("StructureDefinition/medication-source"),
        "valueCode": "bhyt-xml2",
    }


def test_insulin_found_by_name_and_strength_pattern(drugs, study):
    match = drugs.by_name("Scilin", strength="M30 (30/70) 400IU/10ml")
    facts = MedicationFacts(
        subject_id="VH-001",
        drug=match,
        original_name="Scilin M30 (30/70)",
        identity=("x",),
        dose=parse_dose("14", "UI", insulin=drugs.is_insulin(match)),
        times_per_day=2,
        start="2024-01-10",
    )
    resource = medication_statement(facts, study, drugs)
    validate(resource)
    assert resource["medicationCodeableConcept"]["coding"][0]["code"] == "A10AD01"
    assert resource["dosage"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "[IU]"
    assert resource["status"] == "active"


def test_minimal_facts_still_make_a_valid_statement(drugs, study):
    facts = MedicationFacts(
        subject_id="VH-001", drug=drugs.by_name("atorvastatin"), original_name="", identity=("y",)
    )
    resource = medication_statement(facts, study, drugs)
    validate(resource)
    assert resource["medicationCodeableConcept"] == {
        "coding": [
            {"system": study.system("CodeSystem/drugs"), "code": "atorvastatin", "display": "atorvastatin"}
        ],
        "text": "atorvastatin",
    }
    assert "dosage" not in resource and "effectivePeriod" not in resource


def test_administration_with_a_period(drugs, study):
    facts = MedicationFacts(
        subject_id="VH-001",
        drug=drugs.by_name("Actrapid"),
        original_name="Actrapid",
        identity=("z",),
        dose=parse_dose("4", "U", insulin=True),
        start="2024-01-10T07:00:00+07:00",
        end="2024-01-10T07:05:00+07:00",
    )
    resource = medication_administration(facts, study, drugs)
    validate(resource)
    assert resource["effectivePeriod"] == {
        "start": "2024-01-10T07:00:00+07:00",
        "end": "2024-01-10T07:05:00+07:00",
    }
    assert resource["dosage"]["dose"]["value"] == 4
