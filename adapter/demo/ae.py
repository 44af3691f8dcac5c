"""Adverse events as the CRF records them (trial-anchors.md 1.3): infusion fever in about a quarter of the
intervention arm within 24 h, aspiration-site pain and haematoma (bone marrow is aspirated on the infusion
day), hypoglycaemia (more on insulin), background events at the same rate in both arms, and rare serious
events unrelated to the study treatment. Severity is a word (mild/moderate/severe) or a CTCAE grade;
`related` is a WHO-UMC causality term.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from pathlib import Path

from adapter.demo.facts import AdverseEventFact, DemoSubject
from adapter.demo.hl7text import write_text
from adapter.demo.params import DemoParams
from adapter.demo.stats import poisson

AE_COLUMNS = ("subject_id", "term", "onset", "resolved", "severity", "serious", "related", "outcome")
BACKGROUND = (
    ("Headache", 14),
    ("Upper respiratory tract infection", 14),
    ("Diarrhoea", 8),
    ("Dizziness", 8),
    ("Back pain", 7),
    ("Nausea", 6),
    ("Fatigue", 6),
    ("Arthralgia", 6),
    ("Cough", 8),
    ("Insomnia", 4),
    ("Urinary tract infection", 5),
    ("Rash", 3),
    ("Hypertension", 4),
    ("Dyspepsia", 5),
)
SERIOUS = ("Pneumonia", "Acute cholecystitis", "Radius fracture", "Dengue fever", "Unstable angina")
FATAL = ("Acute myocardial infarction", "Ischaemic stroke")
_WORD = {1: "mild", 2: "moderate", 3: "severe", 4: "severe", 5: "severe"}


def _grade(rng: random.Random, weights: tuple[float, ...]) -> int:
    return rng.choices(range(1, len(weights) + 1), weights)[0]


class _Recorder:
    def __init__(self, rng: random.Random, subject: DemoSubject, params: DemoParams) -> None:
        self.rng, self.subject, self.params = rng, subject, params
        self.events: list[AdverseEventFact] = []

    def add(
        self,
        term: str,
        day: int,
        lasts: int | None,
        grade: int,
        related: str,
        serious: bool = False,
        outcome: str | None = None,
    ) -> None:
        onset = self.subject.date_of(day)
        resolved = onset + timedelta(days=lasts) if lasts is not None else None
        if outcome is None:
            outcome = "resolved" if resolved else self.rng.choice(("ongoing", "recovering"))
        severity = (
            str(grade) if grade == 5 or self.rng.random() < self.params.quirks.ctcae_grades else _WORD[grade]
        )
        self.events.append(
            AdverseEventFact(
                self.subject.subject_id,
                term,
                onset,
                resolved,
                grade,
                serious,
                related,
                outcome,
                severity,
                None,
                onset.isoformat(),
            )
        )


def draw_adverse_events(
    params: DemoParams, subjects: list[DemoSubject], last_day: int, seed: int
) -> list[AdverseEventFact]:
    """All AEs, sorted by subject and onset. `last_day` is the last study day of follow-up."""
    rates = params.adverse_events
    events: list[AdverseEventFact] = []
    for subject in subjects:
        rng = random.Random(f"{seed}:ae:{subject.subject_id}")
        rec = _Recorder(rng, subject, params)
        end = min(subject.dropout_day or last_day, last_day)
        if subject.intervention:
            if rng.random() < rates.infusion_fever:
                rec.add(
                    "Fever",
                    1 if rng.random() < 0.7 else 2,
                    rng.randint(0, 2),
                    _grade(rng, (0.8, 0.2)),
                    "probable",
                )
            if rng.random() < rates.aspiration_site_pain:
                rec.add("Aspiration site pain", 1, rng.randint(2, 6), _grade(rng, (0.85, 0.15)), "certain")
            if rng.random() < rates.aspiration_site_haematoma:
                rec.add("Aspiration site haematoma", 1, rng.randint(5, 14), 1, "certain")
        hypo = rates.hypoglycaemia_insulin if subject.insulin_user else rates.hypoglycaemia_other
        if rng.random() < hypo:
            related = "possible" if subject.intervention and params.scenario == "effect" else "unlikely"
            rec.add("Hypoglycaemia", rng.randint(2, end), 0, _grade(rng, (0.6, 0.3, 0.1)), related)
        names = [t for t, _ in BACKGROUND]
        weights = [w for _, w in BACKGROUND]
        for _ in range(poisson(rng, rates.background_per_subject * end / last_day)):
            term = rng.choices(names, weights)[0]
            lasts = rng.randint(1, 14) if rng.random() > 0.05 else None
            related = "possible" if rng.random() < 0.15 else "unlikely"
            rec.add(term, rng.randint(2, end), lasts, _grade(rng, (0.7, 0.25, 0.05)), related)
        if rng.random() < rates.serious_unrelated:
            day = rng.randint(2, end)
            lasts = rng.randint(5, 20)
            outcome = "resolved" if subject.on_study(day + lasts) else "recovering"
            rec.add(
                rng.choice(SERIOUS), day, lasts, _grade(rng, (0, 0, 0.75, 0.25)), "unlikely", True, outcome
            )
        if subject.dropout_day is not None and rng.random() < 0.1:
            rec.add(rng.choice(FATAL), subject.dropout_day, None, 5, "unlikely", True, "fatal")
        events.extend(sorted(rec.events, key=lambda e: (e.onset, e.term)))
    return events


def bad_date(onset: date) -> str:
    """The deliberate fault: day and month swapped, which no calendar has (onset day > 12)."""
    return f"{onset.year}-{onset.day:02d}-{onset.month:02d}"


def write_ae_csv(path: Path, events: list[AdverseEventFact]) -> dict[int, AdverseEventFact]:
    """Write ae.csv; return the event on each CSV line (header = 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AE_COLUMNS)
    lines: dict[int, AdverseEventFact] = {}
    for line, e in enumerate(events, start=2):
        writer.writerow(
            [
                e.subject_id,
                e.term,
                e.onset_text or e.onset.isoformat(),
                e.resolved.isoformat() if e.resolved else "",
                e.severity_text,
                "yes" if e.serious else "no",
                e.related,
                e.outcome,
            ]
        )
        lines[line] = e
    write_text(path, buffer.getvalue())
    return lines
