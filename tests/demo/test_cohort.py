"""The roster: the contract format, the configured split, eligibility, Day 1 by the arm's rule."""

from datetime import timedelta

from adapter.demo.cohort import age_on
from adapter.demo.labs import baseline_visit
from adapter.roster import COLUMNS, parse_roster


def test_roster_parses_cleanly_with_the_configured_split(demo_run, study):
    out, manifest = demo_run
    text = (out / "roster.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    roster = parse_roster(text, study, "roster.csv")
    assert roster.errors == []
    assert len(roster) == 60
    counts = {arm.id: sum(s.arm == arm.id for s in roster) for arm in study.arms}
    assert counts == {"cell-therapy": 30, "control": 30} == manifest["arms"]
    assert len({s.mrn for s in roster}) == 60


def test_eligibility_and_day1(demo_run, study):
    out, _ = demo_run
    roster = parse_roster((out / "roster.csv").read_text(encoding="utf-8"), study)
    for s in roster:
        assert 18 <= age_on(s.birth_date, s.enrolled_on) <= 70
        rule = study.arm(s.arm).day1
        if rule == "infused_on":
            assert s.infused_on is not None
            assert timedelta(days=7) <= s.infused_on - s.enrolled_on <= timedelta(days=23)
            assert s.infused_on.weekday() < 5
        else:
            assert s.infused_on is None
        assert s.enrolled_on.weekday() < 5
        assert 40 <= s.weight_kg <= 110
    first = min(s.enrolled_on for s in roster)
    assert first.isoformat() == "2019-06-03"


def test_baseline_draws_meet_the_lab_criteria(big_facts, study):
    base = baseline_visit(study)
    subjects = {s.subject_id for s in big_facts.subjects}
    baselines = [d for d in big_facts.labs if d.visit == base.id]
    assert {d.subject_id for d in baselines} == subjects  # everyone has a baseline
    for draw in baselines:
        assert base.window[0] <= draw.study_day <= base.window[1]
        assert 8.0 <= draw.values["HBA1C"].value <= 11.0
        assert draw.values["GLUC"].value > 7.0
        assert draw.values["CPEP"].value > 0.6


def test_visits_jitter_mostly_inside_their_windows(big_facts, study):
    windows = {v.id: v.window for v in study.visits}
    follow_up = [d for d in big_facts.labs if d.visit != "BASELINE"]
    inside = [windows[d.visit][0] <= d.study_day <= windows[d.visit][1] for d in follow_up]
    assert inside == [d.in_window for d in follow_up]
    share_out = 1 - sum(inside) / len(follow_up)
    assert 0.01 < share_out < 0.08
    m6 = [d.study_day for d in follow_up if d.visit == "M6" and d.in_window]
    assert len(set(m6)) > 5  # jitter, not all on the target day
    dropouts = [s for s in big_facts.subjects if s.dropout_day is not None]
    assert 0.03 < len(dropouts) / len(big_facts.subjects) < 0.12
    for s in dropouts:
        assert all(d.study_day <= s.dropout_day for d in big_facts.labs if d.subject_id == s.subject_id)
