"""Lab values per subject and visit: when each sample is drawn and what it shows.

Baselines meet the eligibility criteria (HbA1c 8-11 %, FPG > 7 mmol/L, C-peptide > 0.6 ng/mL) and follow
trial-anchors.md 1.3. Each subject's change approaches the arm's end-of-follow-up change along
1 - exp(-day / tau), scaled to reach it at the last visit's target day. Fasting insulin is not drawn on its
own: it follows from the subject's HOMA-%B and the same draw's glucose (I = B x (G - 3.5) / 20), so
HOMA-IR and HOMA-%B computed from the reported glucose and insulin are physiologically consistent.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, time, timedelta

from adapter.demo.facts import DemoSubject, LabDraw, LabValue
from adapter.demo.params import DemoParams
from adapter.demo.stats import TruncatedLogNormal, TruncatedNormal, correlated_uniform
from adapter.errors import ConfigError
from adapter.study import StudyConfig, Visit

LAB_PARAMS = ("GLUC", "INS", "CPEP", "HBA1C", "TNFA", "IL1B")
DECIMALS = {"GLUC": 1, "INS": 1, "CPEP": 2, "HBA1C": 1, "TNFA": 1, "IL1B": 2}


class _Baselines:
    """The baseline distributions, solved once per run (bisection is not free)."""

    def __init__(self, params: DemoParams) -> None:
        low, high = params.hba1c_range
        self.hba1c = TruncatedNormal.with_mean(params.hba1c_mean, params.hba1c_sd, low, high)
        self.fpg = TruncatedLogNormal.with_median(params.fpg_median, params.fpg_log_sd, params.fpg_min)
        self.homab = TruncatedLogNormal.with_median(params.homab_median, params.homab_log_sd)
        self.cpep = TruncatedLogNormal.with_median(params.cpep_median, params.cpep_log_sd, params.cpep_min)
        self.tnfa = TruncatedLogNormal.with_median(params.tnfa_median, params.tnfa_log_sd)
        self.il1b = TruncatedLogNormal.with_median(params.il1b_median, params.il1b_log_sd)


def check_study(study: StudyConfig) -> None:
    """The demo simulates this trial's lab panel: the study must define its parameters."""
    missing = [p for p in LAB_PARAMS if study.parameter(p) is None]
    if missing:
        raise ConfigError(f"the demo needs lab parameter(s) {', '.join(missing)} in the study configuration")
    if not any(v.window[0] <= 1 <= v.window[1] for v in study.visits):
        raise ConfigError("the demo needs a baseline visit whose window holds Day 1")


def baseline_visit(study: StudyConfig) -> Visit:
    return next(v for v in study.visits if v.window[0] <= 1 <= v.window[1])


def effect_fraction(day: int, last_target: int, tau: float) -> float:
    """The share of the end-of-follow-up change reached on a study day (0 at Day 1, 1 at the last target)."""
    if day <= 1:
        return 0.0
    return (1 - math.exp(-(day - 1) / tau)) / (1 - math.exp(-(last_target - 1) / tau))


def _visit_days(
    rng: random.Random, subject: DemoSubject, study: StudyConfig, params: DemoParams
) -> list[tuple[Visit, int, bool]]:
    """(visit, study day of the draw, in window) for the visits the subject attends."""
    base = baseline_visit(study)
    out: list[tuple[Visit, int, bool]] = []
    low, high = base.window
    enrolled_day = subject.enrolled_on - subject.day1
    day = enrolled_day.days if enrolled_day.days < 0 else 1
    if day == 1 and rng.random() < 0.3:
        day = -rng.randint(1, min(14, -low))  # a screening draw before Day 1
    elif day < 1 and rng.random() < 0.05:
        day = 1  # drawn on the morning of Day 1, before the infusion
    out.append((base, min(max(day, low), high), True))
    previous = out[-1][1]
    for visit in sorted(study.visits, key=lambda v: v.target_day):
        if visit is base or visit.target_day <= base.target_day:
            continue
        if rng.random() < params.missed_visit_share:
            continue
        low, high = visit.window
        if rng.random() < params.off_window_share:
            day = high + rng.randint(1, 10) if rng.random() < 0.7 else low - rng.randint(1, 5)
            in_window = False
        else:
            day = min(max(visit.target_day + round(rng.gauss(0.0, params.visit_sd_days)), low), high)
            in_window = True
        if day <= previous or not subject.on_study(day):
            continue
        out.append((visit, day, in_window))
        previous = day
    return out


def _round(param: str, value: float) -> float:
    return round(value, DECIMALS[param])


def draw_labs(
    study: StudyConfig, params: DemoParams, subjects: list[DemoSubject], seed: int
) -> list[LabDraw]:
    """Every draw of every subject, in subject then time order."""
    check_study(study)
    dist = _Baselines(params)
    last_target = max(v.target_day for v in study.visits)
    draws: list[LabDraw] = []
    for subject in subjects:
        rng = random.Random(f"{seed}:labs:{subject.subject_id}")
        draws.extend(_subject_labs(rng, subject, study, params, dist, last_target))
    return draws


def _subject_labs(
    rng: random.Random,
    subject: DemoSubject,
    study: StudyConfig,
    params: DemoParams,
    dist: _Baselines,
    last_target: int,
) -> list[LabDraw]:
    eff = params.effects(subject.intervention)
    u_h = rng.random()
    h0 = _round("HBA1C", dist.hba1c.quantile(u_h))
    g0 = _round("GLUC", dist.fpg.quantile(correlated_uniform(rng, u_h, params.fpg_hba1c_rank_correlation)))
    if g0 <= params.fpg_min:
        g0 = params.fpg_min + 0.1
    u_b = rng.random()
    b0 = dist.homab.quantile(u_b)
    c0 = _round("CPEP", dist.cpep.quantile(correlated_uniform(rng, u_b, 0.5)))
    if c0 <= params.cpep_min:
        c0 = params.cpep_min + 0.01
    tnf0 = dist.tnfa.draw(rng)
    il0 = dist.il1b.draw(rng)
    dh = eff.hba1c_change + rng.gauss(0.0, params.hba1c_subject_sd)
    log_sd = params.log_visit_sd
    draws: list[LabDraw] = []
    for visit, day, in_window in _visit_days(rng, subject, study, params):
        minutes = rng.randint(0, 180)
        collected = datetime.combine(subject.date_of(day), time(6, 30)) + timedelta(minutes=minutes)
        frac = effect_fraction(day, last_target, params.effect_tau_days)
        if frac == 0.0:
            h, g, b, c, tnf, il = h0, g0, b0, c0, tnf0, il0
        else:
            h = _round("HBA1C", min(max(h0 + frac * dh + rng.gauss(0.0, params.hba1c_visit_sd), 4.5), 15.0))
            g = g0 + params.glucose_per_hba1c * (h - h0) + rng.gauss(0.0, params.fpg_visit_sd)
            g = _round("GLUC", min(max(g, 3.9), 30.0))

            def moved(base: float, pct: float) -> float:
                return base * math.exp(frac * math.log1p(pct / 100) + rng.gauss(0.0, log_sd))  # noqa: B023

            b = moved(b0, eff.homab_change_pct)
            c = max(_round("CPEP", moved(c0, eff.cpep_change_pct)), 0.05)
            tnf = moved(tnf0, eff.tnfa_change_pct)
            il = moved(il0, eff.il1b_change_pct)
        insulin = _round("INS", min(max(b * (g - 3.5) / 20, 1.5), 80.0))
        values = {
            "GLUC": LabValue("GLUC", g),
            "INS": LabValue("INS", insulin),
            "CPEP": LabValue("CPEP", c),
            "HBA1C": LabValue("HBA1C", h),
            "TNFA": LabValue("TNFA", max(_round("TNFA", tnf), 0.1)),
        }
        il = _round("IL1B", il)
        limit = params.il1b_detection_limit
        values["IL1B"] = LabValue("IL1B", limit, "<") if il < limit else LabValue("IL1B", il)
        draws.append(LabDraw(subject.subject_id, visit.id, day, collected, in_window, values))
    return draws
