"""Student's t quantiles and tail probabilities from scipy.special.

scipy.stats would give the same numbers, but importing it costs ~0.5 s of every `adapter endpoints` run
(a tenth of the 60-subject budget); the two special functions are all the statistics here need.
"""

from __future__ import annotations

from scipy.special import stdtr, stdtrit


def t_quantile(q: float, df: float) -> float:
    """The q-quantile of Student's t with df degrees of freedom (df may be fractional: Welch)."""
    return float(stdtrit(df, q))


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    return float(2.0 * stdtr(df, -abs(t)))
