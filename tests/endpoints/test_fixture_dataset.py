"""endpoints.csv of the hand-built dataset (fixtures/endpoints, see its README), checked number by number.

Every expected value below was worked out by hand from the fixture and the rules of the design page:
Day 1 = infusion (cell therapy) or enrollment (control); CDISC study day without Day 0; windows BASELINE
-28..1, M1 23..37 (target 30), M3 77..105 (91), M6 161..203 (182); closest to target, tie -> later.
Dates: E01 Day 1 = 2024-01-10, E02 2024-01-11, C01 2024-01-05, C02 2024-01-06, C03 2024-01-08; E03 none.
"""

from __future__ import annotations

import pytest

from tests.endpoints.conftest import Run

CSV_TOL = 6e-5  # endpoints.csv keeps 4 decimals
GLUCOSE_MG_PER_MMOL = 18.0156  # mg/dL per mmol/L (molar mass 180.156 g/mol / 10)


def value(row: dict[str, str], column: str = "value") -> float | None:
    return float(row[column]) if row[column] != "" else None


def check(row: dict[str, str], expected: float | None, day: int | None, n: int | None = None) -> None:
    if expected is None:
        assert row["value"] == ""
    else:
        assert value(row) == pytest.approx(expected, abs=CSV_TOL)
    assert row["study_day"] == ("" if day is None else str(day))
    if n is not None:
        assert row["n_in_window"] == str(n)


def test_header_is_the_design_page_columns_first(fixture_run: Run) -> None:
    header = (fixture_run.out / "endpoints.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:11] == [
        "subject_id",
        "arm",
        "param",
        "visit",
        "study_day",
        "value",
        "unit",
        "baseline",
        "change",
        "pct_change",
        "source_ids",
    ]


def test_every_subject_parameter_visit_has_one_row(fixture_run: Run) -> None:
    rows = fixture_run.csv("endpoints.csv")
    scheduled = [r for r in rows if r["visit"] != "UNSCHEDULED"]
    # 6 enrolled subjects (X99 belongs to another study) x 10 parameters x 4 visits
    assert len(scheduled) == 6 * 10 * 4
    assert {r["subject_id"] for r in rows} == {"C01", "C02", "C03", "E01", "E02", "E03"}
    # row order: subject, parameter as in study.yaml, visit order, then unscheduled
    assert [r["param"] for r in rows if r["subject_id"] == "C01"][:5] == ["CPEP"] * 4 + ["HOMAB"]
    assert [r["visit"] for r in rows[:4]] == ["BASELINE", "M1", "M3", "M6"]


def test_glucose_windows_ties_edges_timezone_and_mg_dl(fixture_run: Run) -> None:
    run = fixture_run
    # E01 baseline: 3 values in the window: day -8, day -1, and 23:30Z on 01-09 = 06:30 local on 01-10 = Day 1
    base = run.endpoint("E01", "GLUC", "BASELINE")
    check(base, 8.5, 1, n=3)
    assert base["date"] == "2024-01-10"
    assert base["source_ids"] == "Observation/e01-glu-b3"
    # M1: day 28 (7.2 mmol/L) and day 32 (126 mg/dL) are both 2 days from target 30: the later one wins
    m1 = run.endpoint("E01", "GLUC", "M1")
    check(m1, 126 / GLUCOSE_MG_PER_MMOL, 32, n=2)
    assert (m1["orig_value"], m1["orig_unit"], m1["unit"]) == ("126", "mg/dl", "mmol/L")
    assert value(m1, "baseline") == 8.5
    assert value(m1, "change") == pytest.approx(126 / GLUCOSE_MG_PER_MMOL - 8.5, abs=CSV_TOL)
    assert value(m1, "pct_change") == pytest.approx(100 * (126 / GLUCOSE_MG_PER_MMOL - 8.5) / 8.5, abs=0.006)
    # M3: day 105 is the window's last day (inclusive); day 76 is one day before the window
    check(run.endpoint("E01", "GLUC", "M3"), 6.5, 105)
    unscheduled = run.endpoint("E01", "GLUC", "UNSCHEDULED")
    check(unscheduled, 7.0, 76)
    assert "out-of-window" in unscheduled["flags"]
    assert value(unscheduled, "change") == pytest.approx(-1.5)
    # M6: nothing in 161..203 -> an empty row with the reason, never imputed
    m6 = run.endpoint("E01", "GLUC", "M6")
    check(m6, None, None)
    assert m6["reason"] == "no value in window 161..203"
    assert m6["change"] == ""

    # E02: day -28 is the first baseline day; day -29 is outside (unscheduled, no change before Day 1)
    check(run.endpoint("E02", "GLUC", "BASELINE"), 10.0, -28)
    early = run.endpoint("E02", "GLUC", "UNSCHEDULED")
    check(early, 11.0, -29)
    assert early["change"] == ""
    # M3: two samples on day 91 (07:00 6.0 and 09:00 6.4): the later one
    m3 = run.endpoint("E02", "GLUC", "M3")
    check(m3, 6.4, 91, n=2)
    assert m3["source_ids"] == "Observation/e02-glu-m3b"
    # C01: day 23 is M1's first day; C02: day 37 is M1's last day
    check(run.endpoint("C01", "GLUC", "M1"), 8.8, 23)
    check(run.endpoint("C02", "GLUC", "M1"), 7.5, 37)
    check(run.endpoint("C02", "GLUC", "BASELINE"), 8.0, -2)
    # C03: the entered-in-error value and the partial-date one are not used
    check(run.endpoint("C03", "GLUC", "M1"), None, None)


def test_unit_conversions(fixture_run: Run) -> None:
    run = fixture_run
    # C-peptide 600 pmol/L x 0.00302 = 1.812 ng/mL
    cpep = run.endpoint("E01", "CPEP", "BASELINE")
    check(cpep, 1.812, -3)
    assert (cpep["orig_value"], cpep["orig_unit"]) == ("600", "pmol/L")
    # HbA1c IFCC 75 mmol/mol -> 0.0915 x 75 + 2.15 = 9.0125 %
    check(run.endpoint("E01", "HBA1C", "BASELINE"), 9.0125, -20)
    # insulin 60 pmol/L / 6.0 = 10 uIU/mL
    ins = run.endpoint("E01", "INS", "BASELINE")
    check(ins, 10.0, 1)
    assert ins["unit"] == "uIU/mL"


def test_censored_and_edges_of_c_peptide(fixture_run: Run) -> None:
    run = fixture_run
    m3 = run.endpoint("E01", "CPEP", "M3")
    check(m3, 0.1, 91)
    assert m3["comparator"] == "<"
    assert "censored:<" in m3["flags"]
    assert value(m3, "change") == pytest.approx(0.1 - 1.812)
    check(run.endpoint("E01", "CPEP", "M6"), 1.5, 203)  # M6's last day
    check(run.endpoint("E01", "CPEP", "UNSCHEDULED"), 1.6, 204)  # one day after


def test_homa(fixture_run: Run) -> None:
    run = fixture_run
    g_m1 = 126 / GLUCOSE_MG_PER_MMOL
    check(run.endpoint("E01", "HOMAIR", "BASELINE"), 8.5 * 10 / 22.5, 1)
    check(run.endpoint("E01", "HOMAB", "BASELINE"), 20 * 10 / (8.5 - 3.5), 1)  # = 40
    assert run.endpoint("E01", "HOMAB", "BASELINE")["value"] == "40"
    check(run.endpoint("E01", "HOMAIR", "M1"), g_m1 * 12 / 22.5, 32)
    check(run.endpoint("E01", "HOMAB", "M1"), 20 * 12 / (g_m1 - 3.5), 32)
    assert (
        run.endpoint("E01", "HOMAIR", "M1")["source_ids"] == "Observation/e01-glu-m1b;Observation/e01-ins-m1"
    )
    # E01 M3: glucose on day 105 but no insulin that day -> no HOMA
    assert run.endpoint("E01", "HOMAIR", "M3")["reason"].startswith("no same-day fasting glucose and insulin")
    # E02: baseline 10 x 15; M1 glucose 3.5 -> IR defined, %B undefined with the reason
    check(run.endpoint("E02", "HOMAIR", "BASELINE"), 10 * 15 / 22.5, -28)
    check(run.endpoint("E02", "HOMAB", "BASELINE"), 20 * 15 / 6.5, -28)
    check(run.endpoint("E02", "HOMAIR", "M1"), 3.5 * 6 / 22.5, 30)
    undefined = run.endpoint("E02", "HOMAB", "M1")
    check(undefined, None, 30)
    assert "3.5 mmol/L" in undefined["reason"]
    # M3 pairs the later glucose of the day (6.4) with the insulin of that day
    check(run.endpoint("E02", "HOMAIR", "M3"), 6.4 * 9 / 22.5, 91)
    check(run.endpoint("E02", "HOMAB", "M3"), 20 * 9 / (6.4 - 3.5), 91)
    # M6: on insulin since day 100 -> flagged
    m6 = run.endpoint("E02", "HOMAIR", "M6")
    check(m6, 7 * 8 / 22.5, 182)
    assert "insulin-treated" in m6["flags"]
    assert "insulin-treated" not in run.endpoint("E02", "HOMAIR", "M3")["flags"]
    check(run.endpoint("C01", "HOMAIR", "BASELINE"), 9.2 * 12 / 22.5, 1)
    assert "insulin-treated" in run.endpoint("C01", "HOMAIR", "BASELINE")["flags"]


def test_insulin_dose(fixture_run: Run) -> None:
    run = fixture_run
    # evaluated on each visit's target date: its study day is the target day
    for visit, day in (("BASELINE", 1), ("M1", 30), ("M3", 91), ("M6", 182)):
        check(run.endpoint("E01", "INSDOSE", visit), 0.0, day)  # oral agents only
        check(run.endpoint("C01", "INSDOSE", visit), 10 * 2, day)  # NPH 10 IU twice a day
        check(run.endpoint("C02", "INSDOSE", visit), 14.0, day)  # glargine 14 "U" once a day
        check(run.endpoint("C03", "INSDOSE", visit), 4 * 3, day)  # lispro via a Medication reference
    # E02: glargine from 2024-04-19 (day 100), so M3 (target 2024-04-10) is 0; at M6 (2024-07-10)
    # glargine 20 x 1 + aspart 6 x 3 = 38 IU/d; latest weight on or before that date is 78 kg (2024-04-01)
    m3 = run.endpoint("E02", "INSDOSE", "M3")
    check(m3, 0.0, 91)
    assert m3["date"] == "2024-04-10"
    check(run.endpoint("E02", "INSDOSE", "M6"), 38.0, 182)
    per_kg = run.endpoint("E02", "INSDOSEKG", "M6")
    check(per_kg, 38 / 78, 182)
    assert per_kg["source_ids"].endswith("Observation/wt-e02-b")
    assert value(per_kg, "change") == pytest.approx(38 / 78, abs=CSV_TOL)
    assert per_kg["pct_change"] == ""  # baseline 0: no percent change
    check(run.endpoint("C01", "INSDOSEKG", "M1"), 20 / 70, 30)
    # C03 has no body weight
    no_weight = run.endpoint("C03", "INSDOSEKG", "BASELINE")
    check(no_weight, None, 1)
    assert no_weight["reason"] == "no body weight on or before 2024-01-08"


def test_subject_without_day1(fixture_run: Run) -> None:
    run = fixture_run
    row = run.endpoint("E03", "GLUC", "BASELINE")
    assert row["value"] == "" and "no-day1" in row["flags"]
    assert row["reason"] == "no infusion recorded (Day 1 = infusion date)"
    unscheduled = run.endpoint("E03", "GLUC", "UNSCHEDULED")
    check(unscheduled, 9.5, None)
    assert unscheduled["date"] == "2024-01-04"


def test_excluded_and_rejected_resources(fixture_run: Run) -> None:
    issues = {(r["resource_id"], r["kind"]) for r in fixture_run.csv("data_issues.csv")}
    assert issues == {
        ("c03-glu-eie", "excluded"),
        ("c03-glu-nodate", "rejected"),
        ("e01-il1b-bad-unit", "rejected"),
        ("e01-tnfa-m1-e", "excluded"),
        ("e01-tnfa-m1-p", "excluded"),
        ("e01-tnfa-m1-x", "excluded"),
        ("proc-e03-infusion", "excluded"),
    }
    check(fixture_run.endpoint("E01", "TNFA", "M1"), None, None)
    assert fixture_run.result.rejected == 2


def test_summary_by_hand(fixture_run: Run) -> None:
    rows = {(r["arm"], r["param"], r["visit"], r["variable"]): r for r in fixture_run.csv("summary.csv")}
    base = rows[("control", "GLUC", "BASELINE", "value")]
    # control glucose at baseline: 9.2, 8.0, 7.8
    assert (base["n"], base["missing"]) == ("3", "0")
    assert float(base["mean"]) == pytest.approx(25 / 3, abs=CSV_TOL)
    assert float(base["sd"]) == pytest.approx(
        ((0.8 + 1 / 15) ** 2 + (1 / 3) ** 2 + (8 / 15) ** 2) ** 0.5 / 2**0.5, abs=CSV_TOL
    )
    assert (base["median"], base["q1"], base["q3"], base["min"], base["max"]) == (
        "8",
        "7.9",
        "8.6",
        "7.8",
        "9.2",
    )
    cell = rows[("cell-therapy", "GLUC", "BASELINE", "value")]
    assert (cell["n"], cell["missing"], cell["mean"]) == ("2", "1", "9.25")  # E03 has no Day 1
    assert ("cell-therapy", "GLUC", "BASELINE", "change") not in rows
    change = rows[("control", "HBA1C", "M3", "change")]
    assert change["n"] == "3"
    assert float(change["mean"]) == pytest.approx(-(0.3 + 0.4 + 0.4) / 3, abs=CSV_TOL)
    cpep = rows[("cell-therapy", "CPEP", "M3", "value")]
    assert (cpep["n"], cpep["censored"], cpep["mean"]) == ("1", "1", "0.1")


def test_ancova_with_one_treated_subject_by_hand(fixture_run: Run) -> None:
    """HbA1c M3: one cell-therapy subject (E01) and three controls.

    The treated subject's own indicator absorbs its residual, so intercept and slope come from the
    controls alone: x = baseline (8.5, 9.0, 8.8), y = change (-0.3, -0.4, -0.4); Sxx = 0.38/3,
    Sxy = -0.08/3, slope = -4/19; estimate = y_E01 - (mean_y + slope (x_E01 - mean_x)).
    """
    rows = {(r["param"], r["visit"], r["method"]): r for r in fixture_run.csv("comparisons.csv")}
    anc = rows[("HBA1C", "M3", "ancova")]
    x_t, y_t = 9.0125, 8.0 - 9.0125
    mean_x, mean_y = 26.3 / 3, -1.1 / 3
    slope = -4 / 19
    estimate = y_t - (mean_y + slope * (x_t - mean_x))
    assert float(anc["estimate"]) == pytest.approx(estimate, abs=CSV_TOL)  # -0.5941
    sxx = 0.38 / 3
    rss = (0.02 / 3) - (0.08 / 3) ** 2 / sxx  # Syy - Sxy^2/Sxx, df = 4 - 3 = 1
    se = (rss * (1 + 1 / 3 + (x_t - mean_x) ** 2 / sxx)) ** 0.5
    t975_df1 = 12.706204736174698
    assert float(anc["ci_low"]) == pytest.approx(estimate - t975_df1 * se, abs=2e-4)
    assert float(anc["ci_high"]) == pytest.approx(estimate + t975_df1 * se, abs=2e-4)
    assert (anc["n"], anc["n_reference"], anc["df"]) == ("1", "3", "1")
    welch = rows[("HBA1C", "M3", "welch")]
    assert welch["estimate"] == "" and welch["note"] == "fewer than 2 subjects in an arm"


def test_medications_table(fixture_run: Run) -> None:
    rows = [r for r in fixture_run.csv("medications.csv") if r["visit"] == "BASELINE"]
    by = {(r["subject_id"], r["drug"]): r for r in rows}
    # C02: glargine + a metformin/sitagliptin combination without an ATC code of its own -> 3 agents
    assert by[("C02", "Janumet 50/850")]["drug_class"] == "oral"
    assert {r["n_antidiabetic_agents"] for r in rows if r["subject_id"] == "C02"} == {"3"}
    assert by[("C02", "insulin glargine")]["daily_dose"] == "14"
    # E01 on Day 1: metformin 1000 mg x 2 and gliclazide 60 mg x 1 -> 2 agents
    assert (by[("E01", "metformin")]["daily_dose"], by[("E01", "metformin")]["dose_unit"]) == ("2000", "mg/d")
    assert by[("E01", "gliclazide")]["n_antidiabetic_agents"] == "2"
    m6 = [r for r in fixture_run.csv("medications.csv") if (r["subject_id"], r["visit"]) == ("E01", "M6")]
    assert [r["drug"] for r in m6] == ["metformin"]  # gliclazide stopped on 2024-03-01
    e03 = [r for r in fixture_run.csv("medications.csv") if r["subject_id"] == "E03"]
    assert {r["reason"] for r in e03} == {"no infusion recorded (Day 1 = infusion date)"}
