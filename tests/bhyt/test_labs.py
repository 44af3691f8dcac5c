"""XML4 rows -> Observations: which rows are study parameters, LOINC by unit, values, times, identity."""

from __future__ import annotations

from datetime import date

import pytest

from adapter.bhyt.config import load_bhyt_config
from adapter.bhyt.labs import LabRow, map_lab_rows
from adapter.bhyt.meds import Encounter
from adapter.bhyt.times import TimeError, fhir_time, parse_local
from adapter.hl7.codes import dictionary_for
from tests.bhyt.helpers import MAPPINGS, validate

ENC = Encounter("S101", "79999", "LK-1", "01", date(2024, 1, 17), "2024-01-17T00:00:00+07:00")


def lab(
    index=1,
    service="23.0075.1494",
    name="Glucose",
    value="7.8",
    unit="mmol/L",
    when="202401150815",
    indicator="",
) -> LabRow:
    return LabRow(index, str(index), service, indicator, name, value, unit, when)


@pytest.fixture(scope="module")
def cfg():
    return load_bhyt_config(MAPPINGS)


def convert(rows, study, cfg):
    resources, outcomes = map_lab_rows(rows, ENC, study, cfg, dictionary_for(MAPPINGS, study))
    for resource in resources:
        validate(resource)
    return resources, outcomes


def loinc(obs) -> str:
    return next(c["code"] for c in obs["code"]["coding"] if c["system"] == "http://loinc.org")


@pytest.mark.parametrize(
    ("service", "name", "unit", "expected"),
    [
        ("23.0075.1494", "Glucose", "mmol/L", "14771-0"),  # by service code, substance concentration
        ("23.0075.1494", "Glucose", "mg/dl", "1558-6"),  # mass concentration: the other LOINC
        ("23.0083.1523", "HbA1c", "%", "4548-4"),
        ("23.0083.1523", "HbA1c", "mmol/mol", "59261-8"),
        ("HIS-77", "Định lượng Glucose [Máu]", "mmol/L", "14771-0"),  # a local code: by name and unit
        ("HIS-78", "C-Peptide", "ng/mL", "1986-9"),
        ("HIS-78", "C-peptid", "pmol/L", "14633-2"),
        ("HIS-79", "Insulin", "µIU/mL", "20448-7"),
        ("HIS-80", "TNF-α", "pg/mL", "3074-2"),
        ("HIS-81", "IL-1β", "pg/mL", "13629-1"),
    ],
)
def test_study_parameters_by_code_name_and_unit(service, name, unit, expected, study, cfg):
    (obs,), _ = convert([lab(service=service, name=name, unit=unit)], study, cfg)
    assert loinc(obs) == expected
    assert {"system": cfg.systems.service, "code": service} in obs["code"]["coding"]
    assert obs["code"]["text"] == name


@pytest.mark.parametrize(
    ("service", "name", "unit"),
    [
        ("99.1", "WBC", "G/L"),
        ("23.0051.1494", "Creatinin", "µmol/L"),
        ("99.2", "Glucose niệu", "mmol/L"),  # urine glucose is not the study's plasma glucose
        ("99.3", "Kháng thể kháng insulin", "u[IU]/mL"),
        ("99.4", "Insulin", "mg/dL"),  # right name, unit of no study LOINC
    ],
)
def test_other_rows_are_not_sent(service, name, unit, study, cfg):
    resources, outcomes = convert([lab(service=service, name=name, unit=unit)], study, cfg)
    assert resources == []
    assert outcomes[1].status == "ignored"


def test_values_like_obx_plus_the_decimal_comma(study, cfg):
    rows = [
        lab(1, value="7,8"),
        lab(2, value="<2,5", when="202401160815"),
        lab(3, value="065.88", when="202401170815"),
        lab(4, value="Tăng", when="202401180815"),
    ]
    resources, outcomes = convert(rows, study, cfg)
    values = [r.get("valueQuantity") or r.get("valueString") for r in resources]
    original = "http://hl7.org/fhir/StructureDefinition/originalText"
    assert values[0] == {
        "extension": [{"url": original, "valueString": "7,8"}],
        "value": 7.8,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert (values[1]["comparator"], values[1]["value"]) == ("<", 2.5)
    assert values[2]["value"] == 65.88 and values[2]["extension"][0]["valueString"] == "065.88"
    assert values[3] == "Tăng"
    assert outcomes[4].reason == "GIA_TRI is not a number: sent as text"


def test_ngay_kq_is_the_time_in_the_site_timezone(study, cfg):
    (obs,), _ = convert([lab(when="202401150815")], study, cfg)
    assert obs["effectiveDateTime"] == "2024-01-15T08:15:00+07:00"
    assert obs["issued"] == "2024-01-15T08:15:00+07:00"
    (day_only,), _ = convert([lab(when="20240115")], study, cfg)
    assert day_only["effectiveDateTime"] == "2024-01-15" and "issued" not in day_only


def test_4210_rows_without_unit_take_the_service_default(study, cfg):
    (obs,), outcomes = convert([lab(unit="")], study, cfg)
    assert loinc(obs) == "14771-0"
    assert obs["valueQuantity"]["code"] == "mmol/L"
    assert outcomes[1].reason == "DON_VI_DO empty: unit from lab-codes.yaml"
    # a name-matched row has no default unit: without DON_VI_DO it cannot be placed
    resources, _ = convert([lab(service="HIS-78", name="C-Peptide", unit="")], study, cfg)
    assert resources == []


def test_identity_is_per_parameter_occurrence_in_time_order(study, cfg):
    rows = [lab(1, value="9.1", when="202401220630"), lab(2, value="11.4", when="202401200630")]
    first, _ = convert(rows, study, cfg)
    # a corrected re-export, rows renumbered and listed the other way, values corrected
    rows2 = [lab(1, value="11,3", when="202401200630"), lab(2, value="9.1", when="202401220630")]
    second, _ = convert(rows2, study, cfg)
    by_time = {o["effectiveDateTime"]: o for o in first}
    again = {o["effectiveDateTime"]: o for o in second}
    assert {k: v["id"] for k, v in by_time.items()} == {k: v["id"] for k, v in again.items()}
    assert len({o["id"] for o in first}) == 2
    assert again["2024-01-20T06:30:00+07:00"]["valueQuantity"]["value"] == 11.3


def test_fasting_parameters_say_the_fasting_state_is_not_recorded(study, cfg):
    (glucose,), _ = convert([lab()], study, cfg)
    (hba1c,), _ = convert([lab(service="23.0083.1523", name="HbA1c", unit="%")], study, cfg)
    assert glucose["note"] == [
        {"text": "Fasting state is not recorded in BHYT XML4 (NGAY_KQ is the result time)."}
    ]
    assert "note" not in hba1c


def test_empty_value_is_not_yet_a_result(study, cfg):
    resources, outcomes = convert([lab(value="", when="")], study, cfg)
    assert resources == [] and outcomes[1].reason == "GIA_TRI empty: result not yet available"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("202401150815", "2024-01-15T08:15:00+07:00"),
        ("20240115", "2024-01-15"),
        ("20240115081530", "2024-01-15T08:15:30+07:00"),
        (" 202412312359 ", "2024-12-31T23:59:00+07:00"),
    ],
)
def test_times(text, expected, study):
    assert fhir_time(parse_local(text, study.tz)) == expected


@pytest.mark.parametrize("text", ["2024-01-15", "202413010000", "202401152460", "2024011508", ""])
def test_bad_times(text, study):
    with pytest.raises(TimeError):
        parse_local(text, study.tz)
