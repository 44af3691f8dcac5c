"""The t-distribution helpers and Welch's test agree with scipy.stats (the reference implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from adapter.endpoints.comparisons import welch
from adapter.endpoints.tdist import t_quantile, t_two_sided_p


@pytest.mark.parametrize("df", [1, 2.5, 7, 29, 57.3, 400])
def test_quantiles_and_tails_match_scipy_stats(df):
    for q in (0.025, 0.5, 0.975, 0.995):
        assert t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-9, abs=1e-12)
    for t in (-3.2, -0.4, 0.0, 1.96, 5.0):
        assert t_two_sided_p(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9, abs=1e-15)


def test_welch_matches_scipy_ttest_ind_unequal_variances():
    rng = np.random.default_rng(11)
    for n_a, n_b in ((5, 9), (24, 22), (30, 3)):
        a, b = rng.normal(-1.5, 0.5, n_a), rng.normal(-0.4, 1.3, n_b)
        ours = welch(a, b, 0.95)
        ref = stats.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(confidence_level=0.95)
        assert isinstance(ours, dict)
        assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert ours["df"] == pytest.approx(ref.df, rel=1e-9)
        assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_welch_says_why_it_cannot_compare():
    assert welch(np.array([1.0]), np.array([1.0, 2.0]), 0.95) == "fewer than 2 subjects in an arm"
    assert welch(np.array([2.0, 2.0]), np.array([3.0, 3.0]), 0.95) == "no variance in either arm"
