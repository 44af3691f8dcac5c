"""Descriptive statistics and the between-arm comparisons on data small enough to solve by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from adapter.endpoints.comparisons import ancova, welch
from adapter.endpoints.summary import describe


def test_describe_linear_quantiles() -> None:
    d = describe([1.0, 2.0, 3.0, 4.0], "linear", 0.95)
    assert (d["mean"], d["median"], d["q1"], d["q3"], d["min"], d["max"]) == (2.5, 2.5, 1.75, 3.25, 1.0, 4.0)
    assert d["sd"] == pytest.approx((5 / 3) ** 0.5)
    half = 3.182446305284263 * (5 / 3) ** 0.5 / 2  # t(0.975, 3) x SD / sqrt(n)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((2.5 - half, 2.5 + half))
    other = describe([1.0, 2.0, 3.0, 4.0], "inverted_cdf", 0.95)
    assert (other["q1"], other["q3"]) == (1.0, 3.0)
    one = describe([7.0], "linear", 0.95)
    assert one["sd"] is None and one["ci_low"] is None and one["mean"] == 7.0
    assert describe([], "linear", 0.95) == {}


def test_ancova_balanced_design_by_hand() -> None:
    """Same baselines (1, 2, 3) in both arms, so the arm effect is the difference of mean changes (13/3 -
    7/3 = 2); pooled within-arm slope = 5/4; RSS = 13/12 on 6 - 3 = 3 df; Var(effect) = (13/36)(1/3 + 1/3)."""
    baseline = np.array([1, 2, 3, 1, 2, 3], dtype=float)
    change = np.array([1, 2, 4, 3, 5, 5], dtype=float)
    groups = np.array(["ref", "ref", "ref", "trt", "trt", "trt"], dtype=object)
    fit = ancova(change, baseline, groups, ["ref", "trt"], 0.95)
    assert isinstance(fit, dict)
    r = fit["trt"]
    se = (13 / 54) ** 0.5
    assert r["estimate"] == pytest.approx(2.0)
    assert r["df"] == 3
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(
        (2 - 3.182446305284263 * se, 2 + 3.182446305284263 * se)
    )
    assert r["p_value"] == pytest.approx(2 * stats.t.sf(2 / se, 3))
    # LS means at the mean baseline (2): the arms' mean changes here, since baselines are balanced
    assert (r["lsmean_reference"], r["lsmean"]) == pytest.approx((7 / 3, 13 / 3))


def test_ancova_reports_why_it_cannot_fit() -> None:
    groups = np.array(["ref", "trt"], dtype=object)
    assert (
        ancova(np.array([1.0, 2.0]), np.array([1.0, 2.0]), groups, ["ref", "trt"], 0.95)
        == "model not estimable (an arm without data, or baseline constant)"
    )
    groups = np.array(["ref", "ref", "trt", "trt"], dtype=object)
    flat = ancova(np.zeros(4), np.array([1.0, 2.0, 1.0, 3.0]), groups, ["ref", "trt"], 0.95)
    assert flat == "no residual variance"


def test_welch_by_hand() -> None:
    """a = (3, 5, 5): mean 13/3, var 4/3; b = (1, 2, 4): mean 7/3, var 7/3; SE = sqrt(11/9);
    Welch-Satterthwaite df = (11/9)^2 / ((4/9)^2/2 + (7/9)^2/2) = 242/65."""
    r = welch(np.array([3.0, 5.0, 5.0]), np.array([1.0, 2.0, 4.0]), 0.95)
    assert isinstance(r, dict)
    df = 242 / 65
    se = (11 / 9) ** 0.5
    assert r["estimate"] == pytest.approx(2.0)
    assert r["df"] == pytest.approx(df)
    assert r["p_value"] == pytest.approx(2 * stats.t.sf(2 / se, df))
    half = stats.t.ppf(0.975, df) * se
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((2 - half, 2 + half))
    assert welch(np.array([1.0]), np.array([1.0, 2.0]), 0.95) == "fewer than 2 subjects in an arm"
