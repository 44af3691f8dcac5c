"""adverse_events.csv and ae_listing.csv of the fixture, counted by hand.

Treatment-emergent (onset >= Day 1) events, safety population = subjects with a Day 1:
  cell-therapy (2 treated: E01, E02; E03 never infused): E02 Fever mild (Day 1, Possible) and Fever moderate
    (day 2, probably-likely); E02 Aspiration site pain on day -6 and E03 Headache are not treatment-emergent.
  control (3 treated): C01 Hypoglycaemia severe, Serious, Unlikely (day 40); C01 Headache moderate, Possible
    (day 50); C02 Headache mild, Unassessable (day 10). Causality for controls sits in an extension.
"""

from __future__ import annotations

from tests.endpoints.conftest import Run


def table(run: Run) -> dict[tuple[str, str], tuple[str, ...]]:
    return {
        (r["arm"], r["category"]): (
            r["subjects"],
            r["subjects_pct"],
            r["events"],
            r["all_subjects"],
            r["all_events"],
        )
        for r in run.csv("adverse_events.csv")
    }


def test_treatment_emergent_counts(fixture_run: Run) -> None:
    t = table(fixture_run)
    assert t[("cell-therapy", "any")] == ("1", "50", "2", "2", "4")
    assert t[("cell-therapy", "serious")] == ("0", "0", "0", "0", "0")
    assert t[("cell-therapy", "related")] == ("1", "50", "2", "1", "2")  # possible and probably-likely
    assert t[("control", "any")] == ("2", "66.67", "3", "2", "3")
    assert t[("control", "serious")] == ("1", "33.33", "1", "1", "1")
    assert t[("control", "related")] == ("1", "33.33", "1", "1", "1")  # only C01's "Possible" headache


def test_worst_severity_counts_each_subject_once(fixture_run: Run) -> None:
    t = table(fixture_run)
    # E02: mild then moderate -> counted once, under moderate; the mild event still counts as an event
    assert t[("cell-therapy", "worst-severity:mild")][:3] == ("0", "0", "1")
    assert t[("cell-therapy", "worst-severity:moderate")][:3] == ("1", "50", "1")
    assert t[("cell-therapy", "worst-severity:severe")][:3] == ("0", "0", "0")
    # C01: severe and moderate -> severe; C02: mild
    assert t[("control", "worst-severity:mild")][:3] == ("1", "33.33", "1")
    assert t[("control", "worst-severity:moderate")][:3] == ("0", "0", "1")
    assert t[("control", "worst-severity:severe")][:3] == ("1", "33.33", "1")


def test_terms_as_reported_most_frequent_first(fixture_run: Run) -> None:
    rows = fixture_run.csv("adverse_events.csv")
    terms = [r["category"] for r in rows if r["arm"] == "control" and r["category"].startswith("term:")]
    # most treatment-emergent subjects first (Headache 2), then Fever and Hypoglycaemia (1 each,
    # alphabetical),
    # then Aspiration site pain (0 treatment-emergent: its only event was before Day 1)
    assert terms == ["term:Headache", "term:Fever", "term:Hypoglycaemia", "term:Aspiration site pain"]
    t = table(fixture_run)
    assert t[("control", "term:Headache")][:3] == ("2", "66.67", "2")
    assert t[("cell-therapy", "term:Fever")][:3] == ("1", "50", "2")
    assert t[("cell-therapy", "term:Aspiration site pain")] == ("0", "0", "0", "1", "1")  # before Day 1
    assert t[("cell-therapy", "term:Headache")] == ("0", "0", "0", "1", "1")  # E03 has no Day 1
    denominators = {(r["arm"], r["denominator"], r["all_denominator"]) for r in rows}
    assert denominators == {("cell-therapy", "2", "3"), ("control", "3", "3")}


def test_listing(fixture_run: Run) -> None:
    listing = fixture_run.csv("ae_listing.csv")
    assert [r["source_id"] for r in listing] == [
        "AdverseEvent/ae-c01-hypo",
        "AdverseEvent/ae-c01-headache",
        "AdverseEvent/ae-c02-headache",
        "AdverseEvent/ae-e02-pain",
        "AdverseEvent/ae-e02-fever1",
        "AdverseEvent/ae-e02-fever2",
        "AdverseEvent/ae-e03-headache",
    ]
    pain = next(r for r in listing if r["source_id"].endswith("ae-e02-pain"))
    assert (pain["study_day"], pain["treatment_emergent"], pain["related"]) == ("-6", "N", "N")
    fever = next(r for r in listing if r["source_id"].endswith("ae-e02-fever1"))
    assert (fever["study_day"], fever["treatment_emergent"], fever["causality"]) == ("1", "Y", "Possible")
    assert (fever["resolved"], fever["end_study_day"]) == ("2024-01-13", "3")
    e03 = next(r for r in listing if r["subject_id"] == "E03")
    assert (e03["study_day"], e03["treatment_emergent"]) == ("", "")  # no Day 1: unknown, not "N"
    hypo = listing[0]
    assert (hypo["serious"], hypo["severity"], hypo["causality"], hypo["related"]) == (
        "Y",
        "severe",
        "Unlikely",
        "N",
    )
