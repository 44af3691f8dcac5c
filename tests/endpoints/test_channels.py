"""A result that reaches the server twice (the lab's HL7 feed and the HIS's BHYT claim export) is one
sample: the claim copy is left out where the lab's own value exists for that day, and used where not."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.endpoints.conftest import run_with_extra

BHYT_SERVICE = "https://vanhanh.example.org/fhir/CodeSystem/bhyt-ma-dich-vu"
C01 = "Patient/pt-39604d2713fee6597e8638c9ecb44a7a"  # Day 1 = 2024-01-05


def _claim_hba1c(rid: str, when: str, value: float) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "4548-4"},
                {"system": BHYT_SERVICE, "code": "23.0083.1523"},
            ]
        },
        "subject": {"reference": C01},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory, study, endpoints_config) -> Path:
    extra = [
        # the lab said 8.2 % on 2024-04-04 (M3); the claim rounds and stamps the result time
        _claim_hba1c("claim-a1c-m3", "2024-04-04T16:20:00+07:00", 8.3),
        # no lab value at M1: the claim's is the only one
        _claim_hba1c("claim-a1c-m1", "2024-02-04T09:00:00+07:00", 8.4),
        # a glucose only the claims report (M3): used, but its fasting state is not known
        {
            **_claim_hba1c("claim-glu-m3", "2024-04-04T11:00:00+07:00", 7.1),
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "14771-0"},
                    {"system": BHYT_SERVICE, "code": "23.0075.1494"},
                ]
            },
            "valueQuantity": {
                "value": 7.1,
                "unit": "mmol/L",
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
        },
    ]
    root = tmp_path_factory.mktemp("channels")
    return run_with_extra(root, study, endpoints_config, {"Observation": extra}).out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_claim_copy_of_a_lab_result_is_left_out_and_listed(run: Path) -> None:
    m3 = next(
        r
        for r in _rows(run / "endpoints.csv")
        if (r["subject_id"], r["param"], r["visit"]) == ("C01", "HBA1C", "M3")
    )
    assert (m3["value"], m3["source_ids"], m3["n_in_window"]) == ("8.2", "Observation/c01-a1c-m3", "1")
    issues = [r for r in _rows(run / "data_issues.csv") if r["resource_id"] == "claim-a1c-m3"]
    assert len(issues) == 1 and "secondary channel" in issues[0]["issue"]


def test_a_claim_result_alone_on_its_day_is_used(run: Path) -> None:
    m1 = next(
        r
        for r in _rows(run / "endpoints.csv")
        if (r["subject_id"], r["param"], r["visit"]) == ("C01", "HBA1C", "M1")
    )
    assert (m1["value"], m1["source_ids"], m1["study_day"]) == ("8.4", "Observation/claim-a1c-m1", "31")


def test_a_claim_value_does_not_claim_to_be_fasting_in_sdtm(run: Path) -> None:
    lb = {r["LBSPID"]: r for r in _rows(run / "sdtm" / "lb.csv")}
    assert (lb["claim-glu-m3"]["LBTESTCD"], lb["claim-glu-m3"]["LBFAST"]) == ("GLUC", "")
    assert (lb["c01-glu-m1"]["LBTESTCD"], lb["c01-glu-m1"]["LBFAST"]) == ("GLUC", "Y")
