"""Generated values against the configured distributions (trial-anchors.md 1.3), for 600 subjects."""

import statistics
from collections import defaultdict

import pytest

from adapter.demo.params import DemoParams
from adapter.study import StudyConfig


def _baseline(facts):
    return {d.subject_id: d for d in facts.labs if d.visit == "BASELINE"}


def _changes(facts, visit: str, param: str) -> dict[bool, list[float]]:
    base = _baseline(facts)
    treated = {s.subject_id: s.intervention for s in facts.subjects}
    out: dict[bool, list[float]] = defaultdict(list)
    for d in facts.labs:
        if d.visit == visit and d.in_window:
            out[treated[d.subject_id]].append(d.values[param].value - base[d.subject_id].values[param].value)
    return out


def test_baseline_distributions(big_facts):
    base = list(_baseline(big_facts).values())
    assert statistics.fmean(d.values["HBA1C"].value for d in base) == pytest.approx(9.0, abs=0.15)
    assert statistics.median(d.values["GLUC"].value for d in base) == pytest.approx(9.7, abs=0.4)
    assert statistics.median(d.values["CPEP"].value for d in base) == pytest.approx(1.7, abs=0.15)
    censored = sum(d.values["IL1B"].comparator == "<" for d in base) / len(base)
    assert 0.05 < censored < 0.17  # ~10.5 % below 0.5 pg/mL


def test_homa_is_consistent_and_plausible(big_facts):
    base = list(_baseline(big_facts).values())
    for d in base:
        g, i = d.values["GLUC"].value, d.values["INS"].value
        assert d.homa_ir == pytest.approx(g * i / 22.5)
        assert d.homa_b == pytest.approx(20 * i / (g - 3.5))
    homa_b = statistics.median(d.homa_b for d in base)
    homa_ir = statistics.median(d.homa_ir for d in base)
    assert 26 <= homa_b <= 40  # anchors: ~30 (IQR 16-37)
    assert 3.5 <= homa_ir <= 6.0  # anchors: ~4-6
    # insulin follows from HOMA-%B and the same glucose: higher glucose, higher insulin at equal B
    corr = statistics.correlation([d.values["GLUC"].value for d in base], [d.homa_ir for d in base])
    assert corr > 0.3


def test_hba1c_change_at_m6_by_arm(big_facts):
    changes = _changes(big_facts, "M6", "HBA1C")
    assert statistics.fmean(changes[True]) == pytest.approx(-1.35, abs=0.2)
    assert statistics.fmean(changes[False]) == pytest.approx(-0.6, abs=0.2)
    m1 = _changes(big_facts, "M1", "HBA1C")
    assert statistics.fmean(changes[True]) < statistics.fmean(m1[True]) < 0  # the change builds up


def test_null_scenario_has_no_difference(study: StudyConfig):
    from adapter.demo.generate import draw_facts

    facts = draw_facts(study, DemoParams(scenario="null"), 600, 5)
    changes = _changes(facts, "M6", "HBA1C")
    difference = statistics.fmean(changes[True]) - statistics.fmean(changes[False])
    assert abs(difference) < 0.2


def _insulin_total(facts, subject, study_day: int) -> float:
    day = subject.date_of(study_day)
    return sum(
        c.daily_dose
        for c in facts.meds
        if c.subject_id == subject.subject_id and c.insulin and c.active_on(day)
    )


def test_insulin_dose_falls_more_with_cell_therapy(big_facts):
    pct: dict[bool, list[float]] = defaultdict(list)
    users = [s for s in big_facts.subjects if s.insulin_user and s.dropout_day is None]
    assert 0.3 < len(users) / len(big_facts.subjects) < 0.5
    for s in users:
        before = _insulin_total(big_facts, s, 1)
        assert 10 <= before <= 200
        pct[s.intervention].append(100 * (_insulin_total(big_facts, s, 182) / before - 1))
    assert statistics.fmean(pct[True]) == pytest.approx(-58, abs=8)  # anchors: -50 to -67
    assert statistics.fmean(pct[False]) == pytest.approx(-24, abs=8)  # anchors: -15 to -32
    non_users = [s for s in big_facts.subjects if not s.insulin_user]
    assert all(_insulin_total(big_facts, s, 1) == 0 for s in non_users[:50])


def test_adverse_events(big_facts):
    treated = {s.subject_id for s in big_facts.subjects if s.intervention}
    by_term: dict[str, set[str]] = defaultdict(set)
    for e in big_facts.adverse_events:
        by_term[e.term].add(e.subject_id)
    fever = by_term["Fever"]
    assert fever <= treated
    assert 0.18 < len(fever) / len(treated) < 0.32  # ~25 %
    day1 = {s.subject_id: s.day1 for s in big_facts.subjects}
    for e in big_facts.adverse_events:
        if e.term == "Fever":
            assert 0 <= (e.onset - day1[e.subject_id]).days <= 1  # within 24 h of the infusion
            assert e.related == "probable"
        if e.term.startswith("Aspiration site"):
            assert e.subject_id in treated
    assert by_term["Hypoglycaemia"] - treated  # in both arms
    serious = [e for e in big_facts.adverse_events if e.serious]
    assert 0 < len(serious) < 0.08 * len(big_facts.subjects)
    assert all(e.related == "unlikely" for e in serious)
    background = [e for e in big_facts.adverse_events if e.term in {"Headache", "Cough", "Diarrhoea"}]
    arms = {e.subject_id in treated for e in background}
    assert arms == {True, False}
