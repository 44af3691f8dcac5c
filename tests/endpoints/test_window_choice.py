"""Which value fills a visit when its window holds a defined and an undefined one (HOMA-%B with
glucose <= 3.5 mmol/L): the defined one, even if farther from the target day."""

from __future__ import annotations

import pytest

from tests.endpoints.conftest import Run, run_with_extra

E02 = "Patient/pt-cdf80f5bd352a9ddbdc12370cde3d92a"  # Day 1 = 2024-01-11; M1 target day 30 = 2024-02-09


def _lab(rid: str, loinc: str, when: str, value: float, unit: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": E02},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory, study, endpoints_config) -> Run:
    extra = [  # day 35, still in M1 (23..37): a second fasting pair, this one with glucose above 3.5
        _lab("e02-glu-m1x", "14771-0", "2024-02-14", 5.0, "mmol/L"),
        _lab("e02-ins-m1x", "20448-7", "2024-02-14", 7, "u[IU]/mL"),
    ]
    return run_with_extra(tmp_path_factory.mktemp("window"), study, endpoints_config, {"Observation": extra})


def test_a_defined_value_wins_over_an_undefined_one_closer_to_target(run: Run) -> None:
    homab = run.endpoint("E02", "HOMAB", "M1")
    assert float(homab["value"]) == pytest.approx(20 * 7 / (5.0 - 3.5), abs=6e-5)
    assert (homab["study_day"], homab["n_in_window"]) == ("35", "2")
    assert homab["source_ids"] == "Observation/e02-glu-m1x;Observation/e02-ins-m1x"


def test_between_defined_values_the_closest_to_target_still_wins(run: Run) -> None:
    homair = run.endpoint("E02", "HOMAIR", "M1")  # day 30 (3.5 x 6 / 22.5) against day 35
    assert float(homair["value"]) == pytest.approx(3.5 * 6 / 22.5, abs=6e-5)
    assert homair["study_day"] == "30"
