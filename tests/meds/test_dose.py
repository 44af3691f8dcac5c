"""Doses and units: insulin in [IU] whatever the input spelling, masses as written, bad values named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapter.meds.dose import DoseError, parse_amount, parse_dose, parse_times_per_day


@pytest.mark.parametrize("unit", ["U", "IU", "iu", "units", "Unit", "UI", "đơn vị", "Đơn Vị", "dv", "[IU]"])
def test_insulin_units_become_ucum_international_units(unit):
    dose = parse_dose("12", unit, insulin=True)
    assert dose.as_quantity() == {
        "value": 12,
        "unit": "IU",
        "system": "http://unitsofmeasure.org",
        "code": "[IU]",
    }


def test_insulin_in_mg_is_refused_as_a_unit_error():
    with pytest.raises(DoseError) as err:
        parse_dose("10", "mg", insulin=True)
    assert err.value.part == "unit"


@pytest.mark.parametrize(
    ("amount", "unit", "value", "code"),
    [
        ("500", "mg", 500, "mg"),
        ("0,5", "g", 0.5, "g"),
        ("1/2", "viên", 0.5, "{tbl}"),
        ("2.50", "MG", 2.5, "mg"),
        ("100", "mcg", 100, "ug"),
    ],
)
def test_non_insulin_doses(amount, unit, value, code):
    quantity = parse_dose(amount, unit, insulin=False).as_quantity()
    assert (quantity["value"], quantity["code"]) == (value, code)


@pytest.mark.parametrize("amount", ["", "abc", "0", "-2", "1/0", "nan", "inf"])
def test_bad_amounts(amount):
    with pytest.raises(DoseError) as err:
        parse_amount(amount)
    assert err.value.part == "dose"


def test_unknown_unit_is_a_unit_error():
    with pytest.raises(DoseError) as err:
        parse_dose("1", "spoonful", insulin=False)
    assert err.value.part == "unit"


def test_amounts_keep_their_precision():
    assert parse_amount("10.5") == Decimal("10.5")
    assert parse_amount("1/3") == Decimal("0.333")


@pytest.mark.parametrize(("text", "times"), [("1", 1), ("3", 3), (" 2 ", 2), ("2.0", 2), ("", None)])
def test_times_per_day(text, times):
    assert parse_times_per_day(text) == times


@pytest.mark.parametrize("text", ["0", "2.5", "25", "twice"])
def test_bad_times_per_day(text):
    with pytest.raises(DoseError):
        parse_times_per_day(text)
