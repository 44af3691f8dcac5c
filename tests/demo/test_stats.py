"""The truncated distributions: generated means and medians are the configured ones."""

import math
import random
import statistics
from datetime import date

import pytest

from adapter.demo.cohort import age_on, arm_split
from adapter.demo.facts import date_of_study_day, study_day_of
from adapter.demo.stats import TruncatedLogNormal, TruncatedNormal, correlated_uniform, poisson


def test_truncation_moves_the_mean_and_with_mean_puts_it_back():
    # N(9, 1.2) on [8, 11]: alpha = -0.833, beta = 1.667; phi(alpha) = 0.2819, phi(beta) = 0.0994,
    # Phi(beta) - Phi(alpha) = 0.9522 - 0.2024 = 0.7498 -> mean = 9 + 1.2 * 0.1825 / 0.7498 = 9.292
    assert TruncatedNormal(9.0, 1.2, 8.0, 11.0).mean() == pytest.approx(9.292, abs=0.002)
    solved = TruncatedNormal.with_mean(9.0, 1.2, 8.0, 11.0)
    assert solved.mean() == pytest.approx(9.0, abs=1e-6)
    assert solved.mu < 9.0
    rng = random.Random(1)
    draws = [solved.draw(rng) for _ in range(20000)]
    assert min(draws) >= 8.0 and max(draws) <= 11.0
    assert statistics.fmean(draws) == pytest.approx(9.0, abs=0.02)


def test_truncated_lognormal_median_is_the_configured_one():
    dist = TruncatedLogNormal.with_median(9.7, 0.25, 7.0)
    assert dist.quantile(0.5) == pytest.approx(9.7, rel=1e-6)
    assert dist.quantile(0.0) == pytest.approx(7.0, rel=1e-6)  # the lower bound
    rng = random.Random(2)
    assert statistics.median(dist.draw(rng) for _ in range(20000)) == pytest.approx(9.7, abs=0.08)
    plain = TruncatedLogNormal.with_median(1.2, 0.7)
    # untruncated: P(X < 0.5) = Phi(ln(0.5/1.2)/0.7) = Phi(-1.2507) = 0.1055
    assert plain.cdf(0.5) == pytest.approx(0.1055, abs=0.001)


def test_copula_keeps_uniform_margins_and_correlates():
    rng = random.Random(3)
    pairs = [(u := rng.random(), correlated_uniform(rng, u, 0.5)) for _ in range(20000)]
    second = [v for _, v in pairs]
    assert statistics.fmean(second) == pytest.approx(0.5, abs=0.01)
    assert statistics.correlation([u for u, _ in pairs], second) == pytest.approx(0.48, abs=0.04)


def test_poisson_mean():
    rng = random.Random(4)
    assert statistics.fmean(poisson(rng, 0.8) for _ in range(20000)) == pytest.approx(0.8, abs=0.03)
    assert poisson(rng, 0.0) == 0


def test_study_days_follow_cdisc():
    day1 = date(2019, 6, 10)
    assert date_of_study_day(day1, 1) == day1
    assert date_of_study_day(day1, 2) == date(2019, 6, 11)
    assert date_of_study_day(day1, -1) == date(2019, 6, 9)
    assert date_of_study_day(day1, 30) == date(2019, 7, 9)
    assert date_of_study_day(day1, -28) == date(2019, 5, 13)
    for day in (-28, -1, 1, 2, 182):
        assert study_day_of(day1, date_of_study_day(day1, day)) == day


def test_arm_split_scales_the_planned_counts():
    from adapter.study import Arm

    def arm(i: str, planned: int | None) -> Arm:
        return Arm(id=i, name=i, type="x", description="x", day1="enrolled_on", planned_subjects=planned)

    assert arm_split([arm("a", 30), arm("b", 30)], 60) == {"a": 30, "b": 30}
    assert arm_split([arm("a", 30), arm("b", 30)], 7) == {"a": 4, "b": 3}
    assert arm_split([arm("a", 40), arm("b", 20)], 10) == {"a": 7, "b": 3}  # 6.67 / 3.33
    assert arm_split([arm("a", None), arm("b", None), arm("c", None)], 5) == {"a": 2, "b": 2, "c": 1}
    assert sum(arm_split([arm("a", 13), arm("b", 29)], 1001).values()) == 1001


def test_age_on_counts_birthdays():
    assert age_on(date(1950, 6, 3), date(2019, 6, 3)) == 69
    assert age_on(date(1950, 6, 4), date(2019, 6, 3)) == 68
    assert not math.isnan(age_on(date(1952, 2, 29), date(2019, 2, 28)))
