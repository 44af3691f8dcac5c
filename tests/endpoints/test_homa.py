"""HOMA1 formulas, same-day pairing, the insulin-treated flag, and the derived Observation resource."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from fhir.resources.R4B import get_fhir_model_class

from adapter.endpoints import homa
from adapter.endpoints.config import EndpointsConfig
from adapter.endpoints.records import Candidate, MedStatement
from adapter.study import StudyConfig

TZ = timezone(timedelta(hours=7))


def test_formulas() -> None:
    assert homa.homa_ir(8.5, 10) == pytest.approx(85 / 22.5)
    assert homa.homa_beta(8.5, 10) == pytest.approx(40.0)
    assert homa.homa_beta(3.5, 6) is None  # denominator zero
    assert homa.homa_beta(3.2, 6) is None  # negative
    assert homa.homa_beta(3.6, 6) == pytest.approx(1200.0)


def _c(param: str, day: date, value: float, rid: str, hour: int | None = None, unit: str = "") -> Candidate:
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=TZ) if hour is not None else None
    stamp = moment.timestamp() if moment else float("-inf")
    return Candidate(
        param, day, moment, value, source_ids=(f"Observation/{rid}",), orig_unit=unit, stamp=stamp
    )


def _insulin(start: date, end: date | None) -> MedStatement:
    return MedStatement(
        "S1",
        "ms1",
        "active",
        "glargine",
        "A10AE04",
        "insulin",
        ("A10AE04",),
        start,
        end,
        20.0,
        20.0,
        "[IU]",
        1.0,
        None,
    )


def test_pairs_same_day_only_and_later_sample() -> None:
    d1, d2 = date(2024, 1, 1), date(2024, 1, 2)
    glucose = [_c("GLUC", d1, 6.0, "g1", 7), _c("GLUC", d1, 6.4, "g2", 9), _c("GLUC", d2, 7.0, "g3")]
    insulin = [_c("INS", d1, 9.0, "i1", 8)]
    pairs = homa.pairs("S1", glucose, insulin, [])
    assert len(pairs) == 1  # day 2 has glucose only
    assert pairs[0].glucose.key == "Observation/g2"
    assert not pairs[0].insulin_treated


def test_insulin_treated_on() -> None:
    med = _insulin(date(2024, 4, 19), date(2024, 7, 31))
    assert not homa.insulin_treated_on([med], date(2024, 4, 18))
    assert homa.insulin_treated_on([med], date(2024, 4, 19))
    assert homa.insulin_treated_on([med], date(2024, 7, 31))
    assert not homa.insulin_treated_on([med], date(2024, 8, 1))
    assert homa.insulin_treated_on([_insulin(date(2024, 1, 1), None)], date(2030, 1, 1))


def test_observations_validate_and_point_at_inputs(
    study: StudyConfig, endpoints_config: EndpointsConfig
) -> None:
    day = date(2024, 1, 10)
    pair = homa.HomaPair(
        "E01", day, _c("GLUC", day, 8.5, "g"), _c("INS", day, 10.0, "i", unit="pmol/L"), True
    )
    ir, beta = homa.candidates(pair, endpoints_config.homa)
    assert ir.value == pytest.approx(85 / 22.5) and beta.value == pytest.approx(40.0)
    assert "insulin-treated" in ir.flags
    obs_ir = homa.observation(study, pair, ir, 6.0)
    obs_b = homa.observation(study, pair, beta, 6.0)
    for obs in (obs_ir, obs_b):
        get_fhir_model_class("Observation").model_validate(obs)
        assert obs["derivedFrom"] == [{"reference": "Observation/g"}, {"reference": "Observation/i"}]
        assert obs["effectiveDateTime"] == "2024-01-10"
    assert obs_ir["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "47214-2",
        "display": "Homeostasis model assessment",
    }
    assert (
        obs_b["code"]["coding"][0]["system"]
        == "https://vanhanh.example.org/fhir/CodeSystem/NCT03943940-parameters"
    )
    assert obs_b["code"]["coding"][0]["code"] == "HOMAB"
    assert obs_b["valueQuantity"] == {
        "value": 40.0,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }
    assert obs_ir["id"] != obs_b["id"]
    assert (
        obs_ir["id"] == homa.observation(study, pair, ir, 6.0)["id"]
    )  # deterministic: re-sent, never duplicated
    assert any("not valid" in n["text"] for n in obs_ir["note"])
