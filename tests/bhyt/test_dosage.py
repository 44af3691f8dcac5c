"""LIEU_DUNG: the official patterns and the real variants, with hand-computed expectations."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.bhyt.dosage import Portion, parse_lieu_dung, parse_number

# text -> (dose, unit, times, period_unit, days, portions, daily_total, issues?)
CASES = [
    # official outpatient form, with the bracketed daily total
    ("2 viên/lần * 2 lần/ngày * 5 ngày [4 viên/ngày]", D(2), "vien", 2, "d", 5, (), D(4), False),
    # inpatient: one row per day
    ("1 viên/lần * 2 lần/ngày * 01 ngày [2 viên/ngày]", D(1), "vien", 2, "d", 1, (), D(2), False),
    # 130 row as found in a public sample: decimals, no spaces, no total
    ("2.00 Ống/lần*1 lần/ngày", D(2), "ong", 1, "d", None, (), None, False),
    # times of day, with the total written with a space after the slash
    (
        "Sáng: 1 Viên, chiều: 1 Viên [2 Viên/ ngày]",
        D(1),
        "vien",
        2,
        "d",
        None,
        (Portion("MORN", D(1)), Portion("AFT", D(1))),
        D(2),
        False,
    ),
    # fractions, no total
    (
        "Sáng: 1/2 Viên, chiều: 1/2 Viên, tối: 1/2 Viên",
        D("0.5"),
        "vien",
        3,
        "d",
        None,
        (Portion("MORN", D("0.5")), Portion("AFT", D("0.5")), Portion("EVE", D("0.5"))),
        None,
        False,
    ),
    # a dose that varies over the day: no single dose, the portions carry it
    (
        "Sáng: 3 viên, Chiều: 2 viên, Tối: 1 viên [6 viên/ngày]",
        None,
        "vien",
        3,
        "d",
        None,
        (Portion("MORN", D(3)), Portion("AFT", D(2)), Portion("EVE", D(1))),
        D(6),
        False,
    ),
    # upper case, no diacritics problem
    (
        "SÁNG: 1 VIÊN, TỐI: 1 VIÊN [2 VIÊN/NGÀY]",
        D(1),
        "vien",
        2,
        "d",
        None,
        (Portion("MORN", D(1)), Portion("EVE", D(1))),
        D(2),
        False,
    ),
    # the 4210 sample form: no unit at all
    ("Sáng: 1", D(1), None, 1, "d", None, (Portion("MORN", D(1)),), None, False),
    ("tối: 1 Viên [1 Viên/ ngày]", D(1), "vien", 1, "d", None, (Portion("EVE", D(1)),), D(1), False),
    # insulin: units, different doses morning and evening
    (
        "Sáng: 20 UI, tối: 10 UI [30 UI/ngày]",
        None,
        "ui",
        2,
        "d",
        None,
        (Portion("MORN", D(20)), Portion("EVE", D(10))),
        D(30),
        False,
    ),
    ("10 đơn vị/lần * 2 lần/ngày", D(10), "don vi", 2, "d", None, (), None, False),
    # x and × as separators, decimal comma, free word order
    ("1 viên x 2 lần/ngày x 30 ngày", D(1), "vien", 2, "d", 30, (), None, False),
    ("1,5 viên/lần × 2 lần/ngày", D("1.5"), "vien", 2, "d", None, (), None, False),
    ("Ngày uống 2 lần, mỗi lần 1 viên", D(1), "vien", 2, "d", None, (), None, False),
    ("uống ½ viên mỗi 12 giờ", D("0.5"), "vien", 2, "d", None, (), None, False),
    (
        "Sáng 1 viên - Tối 1 viên",
        D(1),
        "vien",
        2,
        "d",
        None,
        (Portion("MORN", D(1)), Portion("EVE", D(1))),
        None,
        False,
    ),
    # weekly injections
    ("1 bút/lần * 1 lần/tuần", D(1), "but", 1, "wk", None, (), None, False),
    # topical shorthand: times x days, no dose
    ("2 lần * 5 ngày", None, None, 2, "d", 5, (), None, False),
    # a daily total alone: the times are unknown, the total is kept
    ("4 viên/ngày", None, "vien", None, "d", None, (), D(4), False),
    # the bracket disagrees with dose x times: flagged, the explicit structure kept
    ("2 viên/lần * 2 lần/ngày * 5 ngày [2 viên/ngày]", D(2), "vien", 2, "d", 5, (), D(2), True),
    # nothing to read
    ("theo chỉ dẫn của bác sĩ", None, None, None, "d", None, (), None, True),
    ("", None, None, None, "d", None, (), None, True),
]


@pytest.mark.parametrize(
    ("text", "dose", "unit", "times", "per", "days", "portions", "total", "issue"), CASES
)
def test_lieu_dung_forms(text, dose, unit, times, per, days, portions, total, issue):
    got = parse_lieu_dung(text)
    assert (got.dose, got.unit, got.times, got.period_unit, got.days) == (dose, unit, times, per, days)
    assert got.portions == portions
    assert got.daily_total == total
    assert bool(got.issues) is issue, got.issues
    assert got.text == text.strip()


def test_daily_amount_is_dose_times_frequency_or_the_sum_of_portions():
    assert parse_lieu_dung("2 viên/lần * 2 lần/ngày").daily_amount == D(4)
    assert parse_lieu_dung("Sáng: 3 viên, Chiều: 2 viên, Tối: 1 viên").daily_amount == D(6)
    assert parse_lieu_dung("1 bút/lần * 1 lần/tuần").daily_amount is None  # weekly: not a daily amount


def test_missing_dose_or_times_is_derived_from_the_bracketed_total():
    assert parse_lieu_dung("2 lần/ngày [4 viên/ngày]").dose == D(2)
    assert parse_lieu_dung("2 viên/lần [4 viên/ngày]").times == 2


def test_disagreement_messages_carry_no_values():
    issues = parse_lieu_dung("2 viên/lần * 2 lần/ngày [3 viên/ngày]").issues
    assert issues == ("LIEU_DUNG bracketed daily total disagrees with dose x times per day",)
    assert not any(ch.isdigit() for ch in issues[0])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", D(2)),
        ("2.00", D(2)),
        ("1,5", D("1.5")),
        ("1/2", D("0.5")),
        ("1 1/2", D("1.5")),
        ("10", D(10)),
        ("1/3", D("0.333")),
    ],
)
def test_numbers(text, value):
    assert parse_number(text) == value
    assert "E" not in str(parse_number(text))  # 10 stays 10, never 1E+1 in JSON


@given(
    dose=st.sampled_from(["1", "2", "1/2", "0.5", "1.5", "3"]),
    times=st.integers(1, 6),
    days=st.integers(1, 90),
    unit=st.sampled_from(["viên", "Viên", "VIÊN", "ống", "gói", "ml", "UI"]),
    space=st.sampled_from(["", " "]),
    star=st.sampled_from(["*", " * ", " x ", "×"]),
    bracket=st.booleans(),
)
def test_official_pattern_round_trips(dose, times, days, unit, space, star, bracket):
    amount = parse_number(dose)
    total = amount * times
    text = f"{dose} {unit}/{space}lần{star}{times} lần/{space}ngày{star}{days} ngày"
    if bracket:
        text += f" [{total} {unit}/{space}ngày]"
    got = parse_lieu_dung(text)
    assert (got.dose, got.times, got.days) == (amount, times, days)
    assert got.daily_amount == total
    assert got.issues == ()
