"""Between-arm comparison of the change from baseline at each post-baseline visit.

ANCOVA: change = b0 + b1 x baseline + sum_k g_k x [arm = k] (least squares), with every other arm against
the reference arm; the estimate is g_k with a t-distribution CI and p on n - p degrees of freedom, and the
baseline-adjusted (LS) means are given at the mean baseline. Welch's t-test (unequal variances) on the
change is reported beside it. Allocation in this trial is not randomised: these are baseline-adjusted
contrasts, not randomised treatment effects.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from adapter.endpoints.dataset import Analysis, EndpointRow
from adapter.endpoints.tdist import t_quantile, t_two_sided_p


@dataclass(slots=True)
class ComparisonRow:
    param: str
    visit: str
    arm: str
    reference_arm: str
    method: str  # ancova | welch
    n: int
    n_reference: int
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    df: float | None = None
    lsmean: float | None = None
    lsmean_reference: float | None = None
    note: str = ""


def ancova(
    change: np.ndarray, baseline: np.ndarray, groups: np.ndarray, arms: list[str], confidence: float
) -> dict[str, dict[str, float]] | str:
    """Fit change ~ baseline + arm; per non-reference arm (arms[1:]): estimate, CI, p, df, LS means.

    Returns a note (str) when the model cannot be estimated."""
    n = change.size
    columns = [np.ones(n), baseline] + [(groups == a).astype(float) for a in arms[1:]]
    x = np.column_stack(columns)
    p = x.shape[1]
    if np.linalg.matrix_rank(x) < p:
        return "model not estimable (an arm without data, or baseline constant)"
    df = n - p
    if df <= 0:
        return "too few subjects for the model"
    beta, *_ = np.linalg.lstsq(x, change, rcond=None)
    resid = change - x @ beta
    sigma2 = float(resid @ resid) / df
    if sigma2 <= 0:
        return "no residual variance"
    cov = sigma2 * np.linalg.inv(x.T @ x)
    tcrit = t_quantile(0.5 + confidence / 2, df)
    mean_base = float(baseline.mean())
    ref_lsmean = float(beta[0] + beta[1] * mean_base)
    out: dict[str, dict[str, float]] = {}
    for k, arm in enumerate(arms[1:], start=2):
        est = float(beta[k])
        se = float(np.sqrt(cov[k, k]))
        t = est / se
        out[arm] = {
            "estimate": est,
            "ci_low": est - tcrit * se,
            "ci_high": est + tcrit * se,
            "p_value": t_two_sided_p(t, df),
            "df": float(df),
            "lsmean": ref_lsmean + est,
            "lsmean_reference": ref_lsmean,
        }
    return out


def welch(a: np.ndarray, b: np.ndarray, confidence: float) -> dict[str, float] | str:
    if a.size < 2 or b.size < 2:
        return "fewer than 2 subjects in an arm"
    if np.var(a) == 0 and np.var(b) == 0:
        return "no variance in either arm"
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))  # Welch-Satterthwaite
    estimate = float(a.mean() - b.mean())
    half = t_quantile(0.5 + confidence / 2, df) * se
    return {
        "estimate": estimate,
        "ci_low": estimate - half,
        "ci_high": estimate + half,
        "p_value": t_two_sided_p(estimate / se, df),
        "df": float(df),
    }


def compare(analysis: Analysis) -> list[ComparisonRow]:
    """Rows per parameter (study order), post-baseline visit, arm (study order, not the reference), method."""
    cfg = analysis.config
    confidence = cfg.statistics.confidence
    reference = cfg.statistics.reference_arm
    arms = [reference] + [a.id for a in analysis.study.arms if a.id != reference]
    exclude = cfg.censored_values == "exclude"
    cells: dict[tuple[str, str], list[EndpointRow]] = defaultdict(list)
    for row in analysis.scheduled():
        if row.change is None or row.baseline is None or (exclude and row.change_censored):
            continue
        cells[(row.param, row.visit)].append(row)
    out: list[ComparisonRow] = []
    for param in analysis.study.parameters:
        for visit in analysis.study.visits:
            if visit.id == cfg.baseline_visit:
                continue
            rows = cells.get((param.id, visit.id), [])
            change = np.array([r.change for r in rows], dtype=float)
            baseline = np.array([r.baseline for r in rows], dtype=float)
            groups = np.array([r.arm for r in rows], dtype=object)
            present = [a for a in arms if (groups == a).any()]
            fit: dict[str, dict[str, float]] | str
            if reference not in present or len(present) < 2:
                fit = "no data in the reference arm or in any other arm"
            else:
                mask = np.isin(groups, present)
                fit = ancova(change[mask], baseline[mask], groups[mask], present, confidence)
            ref_values = change[groups == reference]
            for arm in arms[1:]:
                arm_values = change[groups == arm]
                ancova_row = ComparisonRow(
                    param.id, visit.id, arm, reference, "ancova", arm_values.size, ref_values.size
                )
                if isinstance(fit, str):
                    ancova_row.note = fit
                elif arm in fit:
                    for key, val in fit[arm].items():
                        setattr(ancova_row, key, val)
                else:
                    ancova_row.note = "no data in this arm"
                welch_row = ComparisonRow(
                    param.id, visit.id, arm, reference, "welch", arm_values.size, ref_values.size
                )
                result = welch(arm_values, ref_values, confidence)
                if isinstance(result, str):
                    welch_row.note = result
                else:
                    for key, val in result.items():
                        setattr(welch_row, key, val)
                out += [ancova_row, welch_row]
    return out
