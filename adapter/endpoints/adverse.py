"""Adverse-event tables per arm (ICH E3 12.2 style) and the AE listing.

The table counts treatment-emergent events (onset on or after Day 1) in the arm's safety population
(subjects with a Day 1, i.e. treated). Each subject counts once per row; under `worst-severity:*` once, at
the worst severity of their events. "Related" = WHO-UMC certain, probable/likely or possible
(endpoints.yaml). Extra columns count every reported event of every subject, emergent or not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from adapter.endpoints.dataset import Analysis, natural_key
from adapter.endpoints.days import study_day
from adapter.endpoints.records import AeEvent, SubjectInfo

SEVERITIES = ("mild", "moderate", "severe")


@dataclass(slots=True)
class AeTableRow:
    arm: str
    category: str
    subjects: int
    subjects_pct: float | None
    events: int
    denominator: int
    all_subjects: int
    all_subjects_pct: float | None
    all_events: int
    all_denominator: int


@dataclass(slots=True)
class AeListingRow:
    subject_id: str
    arm: str
    term: str
    coded_term: str | None
    onset: str | None
    study_day: int | None
    resolved: str | None
    end_study_day: int | None
    severity: str | None
    serious: str | None
    seriousness: str | None
    causality: str | None
    related: str | None
    outcome: str | None
    treatment_emergent: str | None
    source_id: str


def treatment_emergent(event: AeEvent, subject: SubjectInfo) -> bool | None:
    """Onset on or after Day 1; None when onset or Day 1 is unknown. A partial onset (YYYY-MM) is judged
    by its range, conservatively: treatment-emergent unless it ended before Day 1 (the usual ADaM rule
    for partial dates: an event that may have begun on treatment counts as on treatment)."""
    if event.onset is None and event.onset_range is not None and subject.day1 is not None:
        return event.onset_range[1] >= subject.day1
    if event.onset is None or subject.day1 is None:
        return None
    return event.onset >= subject.day1


def _categories(events: Iterable[AeEvent]) -> dict[str, list[AeEvent]]:
    """Events per category; worst-severity categories hold each subject's events at their worst level."""
    events = list(events)
    out: dict[str, list[AeEvent]] = defaultdict(list)
    out["any"] = events
    out["serious"] = [e for e in events if e.serious]
    out["related"] = [e for e in events if e.related]
    for e in events:
        out[f"worst-severity:{e.severity or 'unknown'}"].append(e)
        out[f"term:{e.term}"].append(e)
    return out


def _worst(events: Iterable[AeEvent]) -> dict[str, str]:
    """Each subject's worst severity (unknown only if none of their events has one)."""
    worst: dict[str, str] = {}
    for e in events:
        level = SEVERITIES.index(e.severity) if e.severity in SEVERITIES else -1
        current = worst.get(e.subject_id)
        if current is None or level > (SEVERITIES.index(current) if current in SEVERITIES else -1):
            worst[e.subject_id] = e.severity if e.severity in SEVERITIES else "unknown"
    return worst


def _count(category: str, events: list[AeEvent], worst: dict[str, str]) -> tuple[int, int]:
    """(subjects, events) of one category; a worst-severity row counts the subjects whose worst level it
    is, and the events of that level."""
    if category.startswith("worst-severity:"):
        level = category.split(":", 1)[1]
        subjects = {s for s, w in worst.items() if w == level}
        return len(subjects), len(events)
    return len({e.subject_id for e in events}), len(events)


def _pct(subjects: int, denominator: int) -> float | None:
    return 100.0 * subjects / denominator if denominator else None


def ae_table(analysis: Analysis) -> list[AeTableRow]:
    subjects = analysis.data.subjects
    arms = [a.id for a in analysis.study.arms]
    te_by_arm: dict[str, list[AeEvent]] = defaultdict(list)
    all_by_arm: dict[str, list[AeEvent]] = defaultdict(list)
    for e in analysis.data.adverse_events:
        subject = subjects[e.subject_id]
        all_by_arm[subject.arm].append(e)
        if treatment_emergent(e, subject):
            te_by_arm[subject.arm].append(e)
    safety = {a: sum(1 for s in subjects.values() if s.arm == a and s.day1 is not None) for a in arms}
    enrolled = {a: sum(1 for s in subjects.values() if s.arm == a) for a in arms}
    te_cats = {a: _categories(te_by_arm[a]) for a in arms}
    all_cats = {a: _categories(all_by_arm[a]) for a in arms}
    te_worst = {a: _worst(te_by_arm[a]) for a in arms}
    all_worst = {a: _worst(all_by_arm[a]) for a in arms}
    fixed = ["any", "serious", "related"] + [f"worst-severity:{s}" for s in SEVERITIES]
    if any("worst-severity:unknown" in all_cats[a] for a in arms):
        fixed.append("worst-severity:unknown")
    # terms: most treatment-emergent subjects first, then most subjects overall, then alphabetical
    te_subjects: dict[str, int] = defaultdict(int)
    all_subjects: dict[str, int] = defaultdict(int)
    for a in arms:
        for cat, events in all_cats[a].items():
            if cat.startswith("term:"):
                all_subjects[cat] += len({e.subject_id for e in events})
                te_subjects[cat] += len({e.subject_id for e in te_cats[a].get(cat, [])})
    terms = sorted(all_subjects, key=lambda c: (-te_subjects[c], -all_subjects[c], c.casefold(), c))
    rows = []
    for a in arms:
        for cat in fixed + terms:
            te_subjects, te_events = _count(cat, te_cats[a].get(cat, []), te_worst[a])
            all_subjects, all_events = _count(cat, all_cats[a].get(cat, []), all_worst[a])
            rows.append(
                AeTableRow(
                    arm=a,
                    category=cat,
                    subjects=te_subjects,
                    subjects_pct=_pct(te_subjects, safety[a]),
                    events=te_events,
                    denominator=safety[a],
                    all_subjects=all_subjects,
                    all_subjects_pct=_pct(all_subjects, enrolled[a]),
                    all_events=all_events,
                    all_denominator=enrolled[a],
                )
            )
    return rows


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("Y" if value else "N")


def _partial(span: tuple[date, date] | None) -> str | None:
    """A partial onset as it was given: YYYY-MM (or YYYY for a whole year)."""
    if span is None:
        return None
    return f"{span[0]:%Y}" if (span[0].month, span[1].month) == (1, 12) else f"{span[0]:%Y-%m}"


def ae_listing(analysis: Analysis) -> list[AeListingRow]:
    subjects = analysis.data.subjects
    out = []
    for e in sorted(
        analysis.data.adverse_events,
        key=lambda e: (natural_key(e.subject_id), e.onset.isoformat() if e.onset else "", e.resource_id),
    ):
        s = subjects[e.subject_id]
        out.append(
            AeListingRow(
                subject_id=e.subject_id,
                arm=s.arm,
                term=e.term,
                coded_term=e.coded,
                onset=e.onset.isoformat() if e.onset else _partial(e.onset_range),
                study_day=study_day(e.onset, s.day1) if e.onset and s.day1 else None,
                resolved=e.resolved.isoformat() if e.resolved else None,
                end_study_day=study_day(e.resolved, s.day1) if e.resolved and s.day1 else None,
                severity=e.severity,
                serious=_yes_no(e.serious),
                seriousness=e.seriousness,
                causality=e.causality,
                related=_yes_no(e.related),
                outcome=e.outcome,
                treatment_emergent=_yes_no(treatment_emergent(e, s)),
                source_id=f"AdverseEvent/{e.resource_id}",
            )
        )
    return out
