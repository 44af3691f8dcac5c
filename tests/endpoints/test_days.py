"""CDISC study days (no Day 0), window membership at the edges, and the closest/later choice."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from adapter.endpoints.days import choose, date_of_day, study_day, visit_for_day, window_distance
from adapter.study import StudyConfig

DAY1 = date(2024, 1, 10)


def test_study_day_has_no_day_zero() -> None:
    assert study_day(date(2024, 1, 10), DAY1) == 1
    assert study_day(date(2024, 1, 11), DAY1) == 2
    assert study_day(date(2024, 1, 9), DAY1) == -1
    assert study_day(date(2023, 12, 13), DAY1) == -28
    assert study_day(date(2024, 2, 8), DAY1) == 30
    assert study_day(date(2024, 4, 9), DAY1) == 91  # across 29 February 2024
    assert study_day(date(2024, 7, 9), DAY1) == 182


def test_date_of_day_inverts_study_day() -> None:
    for n in (-28, -1, 1, 2, 30, 91, 182):
        assert study_day(date_of_day(n, DAY1), DAY1) == n
    assert date_of_day(1, DAY1) == DAY1
    assert date_of_day(-1, DAY1) == DAY1 - timedelta(days=1)
    with pytest.raises(ValueError):
        date_of_day(0, DAY1)


def test_window_distance_counts_calendar_days_across_day1() -> None:
    assert window_distance(-1, 1) == 1  # Day -1 and Day 1 are consecutive dates
    assert window_distance(28, 30) == window_distance(32, 30) == 2
    assert window_distance(-1, 30) == 30


@pytest.mark.parametrize(
    ("day", "visit"),
    [
        (-29, None),
        (-28, "BASELINE"),
        (1, "BASELINE"),
        (2, None),
        (22, None),
        (23, "M1"),
        (37, "M1"),
        (38, None),
        (76, None),
        (77, "M3"),
        (105, "M3"),
        (106, None),
        (160, None),
        (161, "M6"),
        (203, "M6"),
        (204, None),
    ],
)
def test_windows_are_inclusive(study: StudyConfig, day: int, visit: str | None) -> None:
    found = visit_for_day(day, study.visits)
    assert (found.id if found else None) == visit


def _pick(items: list[tuple[int, datetime | None, str]], target: int) -> str:
    stamp = lambda i: i[1].timestamp() if i[1] else float("-inf")  # noqa: E731
    return choose(items, target, lambda i: i[0], stamp, lambda i: i[2])[2]


def test_choose_closest_then_later() -> None:
    assert _pick([(25, None, "a"), (29, None, "b"), (33, None, "c")], 30) == "b"
    assert _pick([(28, None, "early"), (32, None, "late")], 30) == "late"  # tie: the later one
    assert _pick([(32, None, "late"), (28, None, "early")], 30) == "late"  # whatever the input order
    tz = timezone(timedelta(hours=7))
    morning = datetime(2024, 4, 10, 7, tzinfo=tz)
    later = datetime(2024, 4, 10, 9, tzinfo=tz)
    assert _pick([(91, later, "9h"), (91, morning, "7h")], 91) == "9h"
    assert (
        _pick([(-8, None, "a"), (-1, None, "b"), (1, None, "c")], 1) == "c"
    )  # baseline = last on/before Day 1
