"""MedicationStatement shapes other FHIR sources send: an `active` statement dated by effectiveDateTime,
a `stopped` one without an end date, an insulin coded without ATC (RxNorm only)."""

from __future__ import annotations

import pytest

from tests.endpoints.conftest import Run, run_with_extra

E01 = "Patient/pt-e8b0a01dace743f2293f09f4e00161a1"  # Day 1 = 2024-01-10; on oral agents only


def _insulin(
    rid: str, coding: dict, text: str, dose: float, per_day: int, status: str, **when: object
) -> dict:
    return {
        "resourceType": "MedicationStatement",
        "id": rid,
        "status": status,
        "medicationCodeableConcept": {"coding": [coding], "text": text},
        "subject": {"reference": E01},
        **when,
        "dosage": [
            {
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "U"}}],
            }
        ],
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory, study, endpoints_config) -> Run:
    extra = [
        # "is taking" degludec as of 20 Dec: ongoing from then; RxNorm only, an insulin by its name
        _insulin(
            "ms-e01-degludec",
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1670007"},
            "insulin degludec",
            12,
            1,
            "active",
            effectiveDateTime="2023-12-20",
        ),
        # glulisine started on Day 1 and stopped on a date nobody wrote down: that day only
        _insulin(
            "ms-e01-glulisine",
            {"system": "http://www.whocc.no/atc", "code": "A10AB06"},
            "insulin glulisine",
            6,
            3,
            "stopped",
            effectivePeriod={"start": "2024-01-10"},
        ),
    ]
    hplc = {  # HbA1c by HPLC (17856-6) at M1, day 31
        "resourceType": "Observation",
        "id": "e01-a1c-hplc",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "17856-6"}]},
        "subject": {"reference": E01},
        "effectiveDateTime": "2024-02-09",
        "valueQuantity": {"value": 7.9, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }

    def assessed(instance: str, code: str) -> dict:
        system = "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess"
        return {
            "instance": {"reference": instance},
            "causality": [{"assessment": {"coding": [{"system": system, "code": code}]}}],
        }

    rash = {
        "resourceType": "AdverseEvent",
        "id": "ae-e01-rash",
        "actuality": "actual",
        "event": {"text": "Rash"},
        "subject": {"reference": E01},
        "date": "2024-02-01",
        "suspectEntity": [
            assessed("MedicationStatement/ms-e01-metformin", "Probably-Likely"),  # a concomitant drug
            assessed("Procedure/proc-e01-infusion", "Unlikely"),  # the study treatment
        ],
    }
    partial_onsets = [  # onset known to the month only
        {**rash, "id": f"ae-e01-{month}", "date": month, "suspectEntity": []}
        for month in ("2024-01", "2023-12")
    ]
    return run_with_extra(
        tmp_path_factory.mktemp("shapes"),
        study,
        endpoints_config,
        {"MedicationStatement": extra, "Observation": [hplc], "AdverseEvent": [rash, *partial_onsets]},
    )


def test_relatedness_is_to_the_study_treatment_not_a_concomitant_drug(run: Run) -> None:
    (rash,) = [r for r in run.csv("ae_listing.csv") if r["source_id"] == "AdverseEvent/ae-e01-rash"]
    assert (rash["causality"], rash["related"]) == ("Unlikely", "N")


def test_a_synonym_loinc_code_fills_its_parameter(run: Run) -> None:
    m1 = run.endpoint("E01", "HBA1C", "M1")
    assert (m1["value"], m1["study_day"], m1["source_ids"]) == ("7.9", "31", "Observation/e01-a1c-hplc")


def test_insdose_counts_the_ongoing_and_the_one_day_statements(run: Run) -> None:
    baseline = run.endpoint("E01", "INSDOSE", "BASELINE")
    assert float(baseline["value"]) == 12 + 6 * 3
    assert (
        baseline["source_ids"] == "MedicationStatement/ms-e01-degludec;MedicationStatement/ms-e01-glulisine"
    )
    for visit in ("M1", "M3", "M6"):
        assert float(run.endpoint("E01", "INSDOSE", visit)["value"]) == 12


def test_the_assumptions_are_listed_as_data_issues(run: Run) -> None:
    issues = {r["resource_id"]: r["issue"] for r in run.csv("data_issues.csv")}
    assert "taken for an insulin by its name" in issues["ms-e01-degludec"]
    assert "stopped without an end date" in issues["ms-e01-glulisine"]


def test_a_partial_onset_is_judged_by_its_month(run: Run) -> None:
    rows = {r["source_id"]: r for r in run.csv("ae_listing.csv")}
    january = rows["AdverseEvent/ae-e01-2024-01"]  # Day 1 is 10 January: it may have begun on treatment
    december = rows["AdverseEvent/ae-e01-2023-12"]  # over before Day 1
    assert (january["onset"], january["treatment_emergent"]) == ("2024-01", "Y")
    assert (december["onset"], december["treatment_emergent"]) == ("2023-12", "N")


def test_partial_date_range() -> None:
    from datetime import date

    from adapter.endpoints.fhirparse import partial_date_range

    assert partial_date_range("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert partial_date_range("2023") == (date(2023, 1, 1), date(2023, 12, 31))
    assert partial_date_range("2023-13") is None and partial_date_range("2023-02-03") is None
