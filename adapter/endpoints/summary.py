"""Descriptive statistics per arm x parameter x visit, for the value and the change from baseline.

n counts subjects with a value, missing the arm's other subjects (so n + missing = subjects in the arm).
SD uses n - 1. Quartiles use numpy's quantile method from endpoints.yaml ("linear" = Hyndman & Fan type 7,
R's default). Censored values enter as their limit or not at all, per `censored_values`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adapter.endpoints.dataset import Analysis, EndpointRow
from adapter.endpoints.tdist import t_quantile

VARIABLES = ("value", "change")


@dataclass(slots=True)
class SummaryRow:
    arm: str
    param: str
    visit: str
    variable: str
    n: int
    missing: int
    mean: float | None = None
    sd: float | None = None
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    min: float | None = None
    max: float | None = None
    censored: int = 0
    ci_low: float | None = None
    ci_high: float | None = None


def describe(values: Sequence[float], method: str, confidence: float) -> dict[str, float | None]:
    """n-free descriptive statistics of a sample (None where undefined, e.g. SD of one value)."""
    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    n = arr.size
    mean = float(arr.mean())
    out: dict[str, float | None] = {
        "mean": mean,
        "median": float(np.quantile(arr, 0.5, method=method)),
        "q1": float(np.quantile(arr, 0.25, method=method)),
        "q3": float(np.quantile(arr, 0.75, method=method)),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "sd": None,
        "ci_low": None,
        "ci_high": None,
    }
    if n >= 2:
        sd = float(arr.std(ddof=1))
        out["sd"] = sd
        half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
        out["ci_low"], out["ci_high"] = mean - half, mean + half
    return out


def usable(row: EndpointRow, variable: str, exclude_censored: bool) -> float | None:
    value = row.value if variable == "value" else row.change
    if value is None:
        return None
    censored = row.value_censored if variable == "value" else row.change_censored
    return None if (exclude_censored and censored) else value


def summarise(analysis: Analysis) -> list[SummaryRow]:
    """Rows ordered by arm (study.yaml), parameter, visit, variable; no change row at baseline."""
    cfg = analysis.config
    method = cfg.statistics.quantile_method
    confidence = cfg.statistics.confidence
    exclude = cfg.censored_values == "exclude"
    cells: dict[tuple[str, str, str], list[EndpointRow]] = defaultdict(list)
    for row in analysis.scheduled():
        cells[(row.arm, row.param, row.visit)].append(row)
    out: list[SummaryRow] = []
    for arm in analysis.study.arms:
        for param in analysis.study.parameters:
            for visit in analysis.study.visits:
                rows = cells.get((arm.id, param.id, visit.id), [])
                for variable in VARIABLES:
                    if variable == "change" and visit.id == cfg.baseline_visit:
                        continue
                    values = [v for r in rows if (v := usable(r, variable, exclude)) is not None]
                    flagged = sum(
                        1
                        for r in rows
                        if (r.value if variable == "value" else r.change) is not None
                        and (r.value_censored if variable == "value" else r.change_censored)
                    )
                    row = SummaryRow(
                        arm.id, param.id, visit.id, variable, len(values), len(rows) - len(values)
                    )
                    row.censored = flagged
                    for key, val in describe(values, method, confidence).items():
                        setattr(row, key, val)
                    out.append(row)
    return out
