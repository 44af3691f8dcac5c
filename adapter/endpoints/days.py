"""CDISC study days and visit windows.

Day 1 is the reference date, the day after it Day 2, the day before it Day -1: there is no Day 0.
A value belongs to the window (inclusive bounds, in study days) that holds its collection day; within a
window the value closest to the target day is chosen and, on a tie, the later one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import TypeVar

from adapter.study import Visit

T = TypeVar("T")


def study_day(day: date, day1: date) -> int:
    """CDISC --DY: date - Day 1 + 1 on or after Day 1, date - Day 1 before it (no Day 0)."""
    delta = (day - day1).days
    return delta + 1 if delta >= 0 else delta


def date_of_day(study_day_number: int, day1: date) -> date:
    """The calendar date whose study day is `study_day_number` (the inverse of study_day)."""
    if study_day_number == 0:
        raise ValueError("there is no study day 0")
    offset = study_day_number - 1 if study_day_number > 0 else study_day_number
    return day1 + timedelta(days=offset)


def window_distance(day: int, target: int) -> int:
    """Days between a study day and the target, counting across Day 1 without a Day 0 (ADaM AWTDIFF)."""
    diff = abs(day - target)
    return diff - 1 if (day < 0 < target or target < 0 < day) else diff


def visit_for_day(day: int, visits: Sequence[Visit]) -> Visit | None:
    """The visit whose window holds `day`; with overlapping windows the nearest target (then the earlier
    visit as configured)."""
    holding = [v for v in visits if v.window[0] <= day <= v.window[1]]
    if not holding:
        return None
    return min(holding, key=lambda v: (window_distance(day, v.target_day), visits.index(v)))


class VisitLookup:
    """visit_for_day as a table over every day some window covers (the analysis asks ~10^5 times)."""

    def __init__(self, visits: Sequence[Visit]) -> None:
        low = min(v.window[0] for v in visits)
        high = max(v.window[1] for v in visits)
        self._table = {d: visit_for_day(d, visits) for d in range(low, high + 1)}

    def __call__(self, day: int) -> Visit | None:
        return self._table.get(day)


def choose(
    candidates: Sequence[T],
    target: int,
    day_of: Callable[[T], int],
    stamp_of: Callable[[T], float],
    tiebreak: Callable[[T], str],
) -> T:
    """The candidate closest to the target day; on a tie the later one (later day, then later time as a
    POSIX timestamp, -inf for a date only, then the larger tiebreak key: never the input order)."""

    def key(item: T) -> tuple[int, int, float, str]:
        day = day_of(item)
        return (-window_distance(day, target), day, stamp_of(item), tiebreak(item))

    return max(candidates, key=key)
