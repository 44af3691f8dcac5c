"""XML2 rows -> MedicationStatements: runs, periods, doses, routes, codes, identity."""

from __future__ import annotations

import random
from datetime import date

import pytest

from adapter.bhyt.config import load_bhyt_config
from adapter.bhyt.meds import DrugRow, Encounter, map_drug_rows
from adapter.meds.drugs import ATC_SYSTEM, load_drug_map
from tests.bhyt.helpers import MAPPINGS, validate

OUTPATIENT = Encounter("S101", "79999", "LK-1", "01", date(2024, 1, 17), "2024-01-17T00:00:00+07:00")
INPATIENT = Encounter("S101", "79999", "LK-2", "03", date(2024, 2, 1), "2024-02-01T00:00:00+07:00")


def row(index: int = 1, **kw: str) -> DrugRow:
    fields = {
        "stt": str(index),
        "ma_thuoc": "40.807",
        "ten_thuoc": "Glucophage 850mg",
        "ham_luong": "850mg",
        "so_dang_ky": "VN-1-23",
        "don_vi_tinh": "Viên",
        "duong_dung": "1.01",
        "lieu_dung": "1 viên/lần * 2 lần/ngày * 30 ngày [2 viên/ngày]",
        "cach_dung": "Sau ăn",
        "so_luong": "60",
        "ma_nhom": "4",
        "ngay_yl": "202401150900",
        "ngay_th_yl": "",
    }
    fields.update(kw)
    return DrugRow(index, **fields)


@pytest.fixture(scope="module")
def cfg():
    return load_bhyt_config(MAPPINGS)


@pytest.fixture(scope="module")
def drugs():
    return load_drug_map(MAPPINGS)


def run(rows, study, cfg, drugs, enc=OUTPATIENT):
    resources, outcomes = map_drug_rows(rows, enc, study, cfg, drugs)
    for resource in resources:
        validate(resource)
    return resources, outcomes


def test_outpatient_row(study, cfg, drugs):
    (ms,), outcomes = run([row()], study, cfg, drugs)
    assert ms["status"] == "active"  # ends 2024-02-13, after the file was built
    assert ms["effectivePeriod"] == {"start": "2024-01-15T09:00:00+07:00", "end": "2024-02-13"}
    dosage = ms["dosage"][0]
    assert dosage["text"] == "1 viên/lần * 2 lần/ngày * 30 ngày [2 viên/ngày]"
    assert dosage["patientInstruction"] == "Sau ăn"
    assert dosage["timing"] == {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 1,
        "unit": "tablet",
        "system": "http://unitsofmeasure.org",
        "code": "{tbl}",
    }
    assert dosage["route"]["coding"][0]["code"] == "1.01"
    assert {"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"} in dosage[
        "route"
    ]["coding"]
    codings = ms["medicationCodeableConcept"]["coding"]
    assert [c["code"] for c in codings if c["system"] == ATC_SYSTEM] == ["A10BA02"]
    assert {"system": cfg.systems.drug_code, "code": "40.807"} in codings
    assert {"system": cfg.systems.registration, "code": "VN-1-23", "display": "Glucophage 850mg"} in codings
    assert outcomes[1].resources == [f"MedicationStatement/{ms['id']}"]


def test_ngay_th_yl_wins_over_ngay_yl(study, cfg, drugs):
    # Saturday 2024-01-20: NGAY_YL was moved back to Friday by the billing rule, NGAY_TH_YL says when
    (ms,), _ = run([row(ngay_yl="202401190800", ngay_th_yl="202401200815")], study, cfg, drugs)
    assert ms["effectivePeriod"]["start"] == "2024-01-20T08:15:00+07:00"
    assert ms["effectivePeriod"]["end"] == "2024-02-18"


def test_inpatient_daily_rows_become_one_statement_per_regimen(study, cfg, drugs):
    rows = []
    for day in range(1, 11):
        dose = "Sáng: 6 UI, chiều: 6 UI" if day <= 6 else "8 UI/lần * 2 lần/ngày"
        rows.append(
            row(
                day,
                ma_thuoc="40.9003",
                ten_thuoc="Scilin R",
                ham_luong="400UI/10ml",
                don_vi_tinh="Lọ",
                duong_dung="2.02",
                lieu_dung=dose,
                so_luong="1",
                ngay_yl=f"202401{day + 19:02d}0700",
            )
        )
    random.Random(4).shuffle(rows)
    statements, outcomes = run(rows, study, cfg, drugs, INPATIENT)
    periods = sorted((s["effectivePeriod"]["start"], s["effectivePeriod"]["end"]) for s in statements)
    assert periods == [
        ("2024-01-20T07:00:00+07:00", "2024-01-25"),
        ("2024-01-26T07:00:00+07:00", "2024-01-29"),
    ]
    doses = sorted(
        (
            s["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"],
            s["dosage"][0]["timing"]["repeat"]["frequency"],
        )
        for s in statements
    )
    assert doses == [(6, 2), (8, 2)]
    assert all(s["status"] == "completed" for s in statements)
    assert len({tuple(o.resources) for o in outcomes.values()}) == 2


def test_a_gap_of_a_day_splits_the_run(study, cfg, drugs):
    days = [20, 21, 23]
    rows = [
        row(i, lieu_dung="1 viên/lần * 2 lần/ngày * 01 ngày", so_luong="2", ngay_yl=f"202401{d}0800")
        for i, d in enumerate(days, 1)
    ]
    statements, _ = run(rows, study, cfg, drugs, INPATIENT)
    assert sorted(s["effectivePeriod"]["end"] for s in statements) == ["2024-01-21", "2024-01-23"]


def test_identity_ignores_order_numbering_dates_and_dose(study, cfg, drugs):
    (before,), _ = run([row(1)], study, cfg, drugs)
    corrected = row(5, stt="9", lieu_dung="2 viên/lần * 2 lần/ngày * 30 ngày", ngay_yl="202401160900")
    statements, _ = run(
        [row(1, ma_thuoc="40.800", ten_thuoc="Diamicron", ham_luong="30mg"), corrected], study, cfg, drugs
    )
    after = next(s for s in statements if s["medicationCodeableConcept"]["text"] == "Glucophage 850mg")
    assert after["id"] == before["id"]
    assert after["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 2
    other_visit = Encounter("S101", "79999", "LK-OTHER", "01", None, None)
    (elsewhere,), _ = run([row(1)], study, cfg, drugs, other_visit)
    assert elsewhere["id"] != before["id"]


def test_insulin_by_name_with_varying_doses_and_days_from_pens(study, cfg, drugs):
    pen = row(
        ma_thuoc="40.9001",
        ten_thuoc="Mixtard 30 FlexPen",
        ham_luong="100UI/ml x 3ml",
        don_vi_tinh="Bút",
        duong_dung="2.02",
        lieu_dung="Sáng: 20 UI, tối: 10 UI [30 UI/ngày]",
        so_luong="3",
    )
    (ms,), _ = run([pen], study, cfg, drugs)
    assert [c["code"] for c in ms["medicationCodeableConcept"]["coding"] if c["system"] == ATC_SYSTEM] == [
        "A10AD01"
    ]
    # 3 pens x 300 IU / 30 IU a day = 30 days
    assert ms["effectivePeriod"] == {"start": "2024-01-15T09:00:00+07:00", "end": "2024-02-13"}
    parts = [
        (
            d["timing"]["repeat"]["when"],
            d["timing"]["repeat"]["frequency"],
            d["doseAndRate"][0]["doseQuantity"]["value"],
            d["doseAndRate"][0]["doseQuantity"]["code"],
        )
        for d in ms["dosage"]
    ]
    assert parts == [(["MORN"], 1, 20, "[IU]"), (["EVE"], 1, 10, "[IU]")]
    assert sum(p[1] * p[2] for p in parts) == 30  # what INSDOSE sums


def test_insulin_dosed_in_ml_is_converted_at_the_strength(study, cfg, drugs):
    vial = row(
        ma_thuoc="",
        ten_thuoc="Lantus",
        ham_luong="100UI/ml",
        don_vi_tinh="Lọ",
        duong_dung="2.02",
        lieu_dung="0,2 ml/lần * 1 lần/ngày * 30 ngày",
        so_luong="1",
    )
    (ms,), _ = run([vial], study, cfg, drugs)
    assert ms["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 20
    assert ms["dosage"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "[IU]"
    assert {"text": "insulin dose converted from mL at the product strength"} in ms["note"]


def test_insulin_dose_not_in_units_is_left_out(study, cfg, drugs):
    pen = row(
        ma_thuoc="",
        ten_thuoc="Lantus SoloStar",
        ham_luong="",
        don_vi_tinh="Bút",
        duong_dung="2.02",
        lieu_dung="Sáng: 1",
        so_luong="1",
    )
    (ms,), _ = run([pen], study, cfg, drugs)
    assert "doseAndRate" not in ms["dosage"][0]
    assert {"text": "insulin dose not written in units (IU): dose left out"} in ms["note"]


def test_weekly_and_total_only_dosages(study, cfg, drugs):
    weekly = row(
        ma_thuoc="",
        ten_thuoc="Trulicity",
        ham_luong="1.5mg/0.5ml",
        don_vi_tinh="Bút",
        duong_dung="2.02",
        lieu_dung="1 bút/lần * 1 lần/tuần",
        so_luong="4",
    )
    total = row(
        2, ma_thuoc="40.800", ten_thuoc="Diamicron", ham_luong="30mg", lieu_dung="2 viên/ngày", so_luong="28"
    )
    statements, _ = run([weekly, total], study, cfg, drugs)
    by_name = {s["medicationCodeableConcept"]["text"]: s for s in statements}
    week = by_name["Trulicity 1.5mg/0.5ml"]["dosage"][0]
    assert week["timing"] == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}
    assert week["doseAndRate"][0]["doseQuantity"]["code"] == "{pen}"
    rate = by_name["Diamicron 30mg"]["dosage"][0]["doseAndRate"][0]["rateRatio"]
    assert rate["numerator"]["value"] == 2 and rate["denominator"] == {
        "value": 1,
        "unit": "d",
        "system": "http://unitsofmeasure.org",
        "code": "d",
    }
    assert by_name["Diamicron 30mg"]["effectivePeriod"]["end"] == "2024-01-28"  # 28 tablets at 2 a day


def test_unknown_drug_is_kept_with_its_code_or_ignored_by_configuration(study, cfg, drugs):
    unknown = row(ma_thuoc="40.9002", ten_thuoc="Paracetamol 500mg", ham_luong="500mg")
    (ms,), outcomes = run([unknown], study, cfg, drugs)
    assert ms["medicationCodeableConcept"]["coding"][0] == {
        "system": cfg.systems.drug_code,
        "code": "40.9002",
    }
    assert outcomes[1].reason.endswith("drug not in drugs.yaml: kept with its MA_THUOC code")
    strict = cfg.model_copy(update={"unknown_drugs": "ignore"})
    resources, outcomes = map_drug_rows([unknown], OUTPATIENT, study, strict, drugs)
    assert resources == [] and outcomes[1].status == "ignored"


def test_oxygen_and_blood_rows_are_ignored(study, cfg, drugs):
    rows = [
        row(1, ma_thuoc="40.17", ten_thuoc="Oxy"),
        row(2, ma_thuoc="40.807", ma_nhom="7"),
        row(3, ma_thuoc="VM.79999", ten_thuoc="Vận chuyển máu"),
    ]
    resources, outcomes = run(rows, study, cfg, drugs)
    assert resources == [] and {o.status for o in outcomes.values()} == {"ignored"}


def test_bad_time_is_a_row_error_naming_the_field(study, cfg, drugs):
    _, outcomes = run([row(ngay_th_yl="2024-01-15 09:00")], study, cfg, drugs)
    assert outcomes[1].error == "NGAY_TH_YL: not yyyyMMdd or yyyyMMddHHmm"
    _, outcomes = run([row(ngay_yl="")], study, cfg, drugs)
    assert outcomes[1].error == "NGAY_YL: empty"


def test_unknown_route_code_is_kept_as_code_and_text(study, cfg, drugs):
    (ms,), _ = run([row(duong_dung="9.99")], study, cfg, drugs)
    assert ms["dosage"][0]["route"] == {
        "coding": [{"system": cfg.systems.route, "code": "9.99"}],
        "text": "9.99",
    }
