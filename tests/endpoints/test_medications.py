"""Daily dose from FHIR dosage, activity on a date, INSDOSE/INSDOSEKG rules."""

from __future__ import annotations

from datetime import date

import pytest

from adapter.endpoints import medications
from adapter.endpoints.load import _daily_dosing
from adapter.endpoints.records import MedStatement, Weight


def dosage(value: float, unit: str = "[IU]", **timing: object) -> dict:
    d: dict = {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "code": unit}}]}
    if timing:
        d["timing"] = timing
    return d


@pytest.mark.parametrize(
    ("dosages", "daily", "per_day"),
    [
        ([dosage(6, repeat={"frequency": 3, "period": 1, "periodUnit": "d"})], 18.0, 3.0),
        ([dosage(10, repeat={"frequency": 1, "period": 12, "periodUnit": "h"})], 20.0, 2.0),
        ([dosage(70, repeat={"frequency": 1, "period": 1, "periodUnit": "wk"})], 10.0, 1 / 7),
        ([dosage(8, code={"coding": [{"code": "BID"}]})], 16.0, 2.0),
        ([dosage(5, repeat={"when": ["MORN", "EVE"]})], 10.0, 2.0),
        # the times of the day with the period given, and without a frequency
        ([dosage(5, repeat={"when": ["MORN", "EVE"], "period": 1, "periodUnit": "d"})], 10.0, 2.0),
        ([dosage(4, repeat={"timeOfDay": ["07:00:00", "12:00:00", "19:00:00"]})], 12.0, 3.0),
        # repeat holding only the course's bounds: the timing code gives the frequency
        (
            [dosage(8, code={"coding": [{"code": "BID"}]}, repeat={"boundsPeriod": {"start": "2024-01-01"}})],
            16.0,
            2.0,
        ),
        # a regimen written as two lines: 20 in the morning and 10 at night
        (
            [
                dosage(20, repeat={"frequency": 1, "period": 1, "periodUnit": "d"}),
                dosage(10, repeat={"frequency": 1, "period": 1, "periodUnit": "d"}),
            ],
            30.0,
            2.0,
        ),
    ],
)
def test_daily_dose(dosages: list[dict], daily: float, per_day: float) -> None:
    total, unit, times, problem = _daily_dosing(dosages)
    assert problem is None
    assert total == pytest.approx(daily)
    assert times == pytest.approx(per_day)
    assert unit == "[IU]"


def test_spellings_of_one_unit_are_one_unit() -> None:
    lines = [
        dosage(20, "U", repeat={"frequency": 1, "period": 1, "periodUnit": "d"}),
        dosage(10, "[IU]", repeat={"frequency": 1, "period": 1, "periodUnit": "d"}),
    ]
    assert _daily_dosing(lines)[3] == "dosage lines in different units"
    total, unit, _times, problem = _daily_dosing(lines, lambda u: "[IU]" if u in ("U", "[IU]") else u)
    assert (total, unit, problem) == (30.0, "[IU]", None)


@pytest.mark.parametrize(
    ("dosages", "problem"),
    [
        ([], "no dosage"),
        ([dosage(10)], "no dosing frequency"),
        (
            [{**dosage(4, repeat={"frequency": 1, "period": 1, "periodUnit": "d"}), "asNeededBoolean": True}],
            "taken as needed",
        ),
        ([{"text": "as directed"}], "no dose quantity"),
        (
            [
                dosage(10, "[IU]", repeat={"frequency": 1, "period": 1, "periodUnit": "d"}),
                dosage(1, "mL", repeat={"frequency": 1, "period": 1, "periodUnit": "d"}),
            ],
            "dosage lines in different units",
        ),
    ],
)
def test_unknown_daily_dose_says_why(dosages: list[dict], problem: str) -> None:
    total, _unit, _times, found = _daily_dosing(dosages)
    assert total is None or found is not None
    assert found == problem


def statement(
    rid: str,
    start: date | None,
    end: date | None,
    daily: float | None,
    cls: str = "insulin",
    agents: tuple[str, ...] = ("A10AE04",),
    source: str | None = None,
    drug_key: str | None = None,
) -> MedStatement:
    return MedStatement(
        "S",
        rid,
        "active",
        rid,
        agents[0] if len(agents) == 1 else None,
        cls,
        agents,
        start,
        end,
        daily,
        daily,
        "[IU]",
        1.0,
        None,
        None if daily is not None else "no dose quantity",
        source,
        drug_key,
    )


def test_active_on_is_inclusive_and_open_ended() -> None:
    m = statement("a", date(2024, 1, 1), date(2024, 1, 31), 10)
    assert medications.active_on(m, date(2024, 1, 1)) and medications.active_on(m, date(2024, 1, 31))
    assert not medications.active_on(m, date(2023, 12, 31)) and not medications.active_on(m, date(2024, 2, 1))
    assert medications.active_on(statement("b", date(2024, 1, 1), None, 10), date(2099, 1, 1))
    assert medications.active_on(statement("c", None, None, 10), date(2024, 1, 1)) is None


def test_insulin_daily_dose_sums_active_insulins_only() -> None:
    meds = [
        statement("glargine", date(2024, 1, 1), None, 20),
        statement("aspart", date(2024, 2, 1), date(2024, 2, 29), 18, agents=("A10AB05",)),
        statement("metformin", date(2024, 1, 1), None, 2000, cls="oral", agents=("A10BA02",)),
    ]
    assert medications.insulin_daily_dose(meds, date(2024, 1, 15)).value == 20
    both = medications.insulin_daily_dose(meds, date(2024, 2, 15))
    assert both.value == 38
    assert both.source_ids == ("MedicationStatement/aspart", "MedicationStatement/glargine")
    assert medications.insulin_daily_dose([], date(2024, 1, 1)).value == 0.0  # no insulin: 0, not missing
    unknown = medications.insulin_daily_dose([statement("x", date(2024, 1, 1), None, None)], date(2024, 1, 2))
    assert unknown.value is None and unknown.reason.startswith("insulin daily dose unknown")  # type: ignore[union-attr]


PRIORITY = ("his-csv", "hl7-rde", "bhyt-xml2")


def test_a_course_from_two_channels_counts_once_from_the_preferred_one() -> None:
    meds = [
        statement("csv-glargine", date(2024, 1, 1), None, 20, source="his-csv", drug_key="insulin-glargine"),
        statement("rde-glargine", date(2024, 1, 1), None, 20, source="hl7-rde", drug_key="insulin-glargine"),
        statement(
            "bhyt-glargine",
            date(2024, 1, 3),
            date(2024, 2, 1),
            22,
            source="bhyt-xml2",
            drug_key="insulin-glargine",
        ),
        statement(
            "bhyt-aspart",
            date(2024, 1, 3),
            date(2024, 2, 1),
            12,
            agents=("A10AB05",),
            source="bhyt-xml2",
            drug_key="insulin-aspart",
        ),
    ]
    dose = medications.insulin_daily_dose(meds, date(2024, 1, 15), PRIORITY)
    # glargine from the HIS export (first channel), aspart only the claims know of: 20 + 12, not 74
    assert dose.value == 32
    assert dose.source_ids == ("MedicationStatement/bhyt-aspart", "MedicationStatement/csv-glargine")
    # without a priority list channels rank by name (bhyt-xml2 first): still one statement per drug
    assert medications.insulin_daily_dose(meds, date(2024, 1, 15)).value == 22 + 12


def test_overlapping_refills_and_shared_boundary_days_count_the_latest_start() -> None:
    refills = [  # monthly claims: each dispensing covers 30 days, the next one is dispensed early
        statement(
            "r1", date(2024, 1, 1), date(2024, 1, 30), 24, source="bhyt-xml2", drug_key="insulin-glargine"
        ),
        statement(
            "r2", date(2024, 1, 27), date(2024, 2, 25), 26, source="bhyt-xml2", drug_key="insulin-glargine"
        ),
    ]
    assert medications.insulin_daily_dose(refills, date(2024, 1, 28), PRIORITY).value == 26
    periods = [  # the HIS writes one row per constant-dose period; the new period starts on the old one's end
        statement(
            "p1", date(2024, 1, 1), date(2024, 3, 1), 30, source="his-csv", drug_key="insulin-glargine"
        ),
        statement("p2", date(2024, 3, 1), None, 24, source="his-csv", drug_key="insulin-glargine"),
    ]
    assert medications.insulin_daily_dose(periods, date(2024, 3, 1), PRIORITY).value == 24
    assert medications.insulin_daily_dose(periods, date(2024, 2, 29), PRIORITY).value == 30


def test_a_split_regimen_written_as_two_statements_of_one_drug_adds_up() -> None:
    meds = [  # NPH 20 IU in the morning and 10 IU in the evening, two rows started the same day
        statement("nph-am", date(2024, 1, 1), None, 20, source="his-csv", drug_key="insulin-nph"),
        statement("nph-pm", date(2024, 1, 1), None, 10, source="his-csv", drug_key="insulin-nph"),
        statement("nph-bhyt", date(2024, 1, 2), None, 30, source="bhyt-xml2", drug_key="insulin-nph"),
    ]
    assert medications.insulin_daily_dose(meds, date(2024, 1, 15), PRIORITY).value == 30


def test_a_statement_without_start_counts_as_unknown_only_until_its_end() -> None:
    ended = statement("old", None, date(2023, 12, 31), 40, drug_key="insulin-glargine")
    current = statement("new", date(2024, 1, 1), None, 20, drug_key="insulin-glargine")
    assert medications.insulin_daily_dose([ended, current], date(2024, 2, 1)).value == 20
    unknown = medications.insulin_daily_dose([ended, current], date(2023, 12, 1))
    assert unknown.value is None and unknown.reason == "an insulin statement has no start date"


def test_the_regimen_lists_each_drug_once() -> None:
    meds = [
        statement("csv-met", date(2024, 1, 1), None, 2000, cls="oral", agents=("A10BA02",), source="his-csv"),
        statement(
            "bhyt-met", date(2024, 1, 1), None, 2000, cls="oral", agents=("A10BA02",), source="bhyt-xml2"
        ),
        statement("csv-glar", date(2024, 1, 1), None, 20, source="his-csv", drug_key="insulin-glargine"),
    ]
    regimen = medications.regimen_on(meds, date(2024, 1, 10), PRIORITY)
    assert sorted(m.resource_id for m in regimen.drugs) == ["csv-glar", "csv-met"]
    assert regimen.agents == 2


def test_dose_per_kg_uses_the_latest_weight_on_or_before() -> None:
    weights = [
        Weight("S", date(2024, 1, 1), 80.0, "w1"),
        Weight("S", date(2024, 4, 1), 78.0, "w2"),
        Weight("S", date(2024, 8, 1), 75.0, "w3"),
    ]
    w = medications.latest_weight(weights, date(2024, 7, 10))
    assert w is not None and w.kg == 78.0
    assert medications.latest_weight(weights, date(2023, 12, 31)) is None
    dose = medications.DoseValue(38.0, ("MedicationStatement/a",))
    assert medications.dose_per_kg(dose, w, date(2024, 7, 10)).value == pytest.approx(38 / 78)
    assert (
        medications.dose_per_kg(dose, None, date(2024, 7, 10)).reason
        == "no body weight on or before 2024-07-10"
    )
    assert medications.dose_per_kg(medications.DoseValue(0.0), None, date(2024, 7, 10)).value == 0.0


def test_number_of_antidiabetic_agents() -> None:
    day = date(2024, 1, 1)
    meds = [
        statement("glargine", day, None, 20),
        statement("metformin", day, None, 2000, "oral", ("A10BA02",)),
        # a fixed combination without a code of its own: its components metformin + sitagliptin
        statement("janumet", day, None, 2, "oral", ("A10BA02", "A10BH01")),
        statement("statin", day, None, 20, "other", ("C10AA05",)),
    ]
    regimen = medications.regimen_on(meds, date(2024, 1, 2))
    assert [m.resource_id for m in regimen.drugs] == ["glargine", "janumet", "metformin"]  # the statin is not
    assert regimen.agents == 3  # glargine, metformin (twice), sitagliptin
