"""The synthetic trial as plain facts, before any file format: what every writer renders.

Generation happens once, into these dataclasses; each writer (roster CSV, HL7 ORU, HIS CSV, RDE/RAS,
AE CSV, and later BHYT XML) only renders them. A new output format is therefore a new writer over
`TrialFacts`, never a second generator, and all formats tell the same story about the same subjects.
Values are in the study's standard units (mappings/study.yaml parameters[].unit); the writers choose how
the hospital's systems would have spelled them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property

from adapter.demo.names import PersonName
from adapter.demo.params import DemoParams
from adapter.study import StudyConfig


def date_of_study_day(day1: date, study_day: int) -> date:
    """CDISC: Day 1 is the reference date, Day 2 the day after, Day -1 the day before (no Day 0)."""
    return day1 + timedelta(days=study_day - 1 if study_day >= 1 else study_day)


def study_day_of(day1: date, when: date) -> int:
    delta = (when - day1).days
    return delta + 1 if delta >= 0 else delta


@dataclass
class DemoSubject:
    """One enrolled subject, with what only the hospital knows (MRN, name) next to the roster facts."""

    subject_id: str
    mrn: str
    arm: str
    intervention: bool
    enrolled_on: date
    infused_on: date | None
    sex: str  # "M" | "F"
    birth_date: date
    weight_kg: float
    name: PersonName
    day1: date
    dropout_day: int | None = None  # last study day on study, None if completed
    insulin_user: bool = False

    def date_of(self, study_day: int) -> date:
        return date_of_study_day(self.day1, study_day)

    def on_study(self, study_day: int) -> bool:
        return self.dropout_day is None or study_day <= self.dropout_day


@dataclass(frozen=True)
class LabValue:
    """A result in the study's standard unit; comparator "<" means below the detection limit `value`."""

    param: str
    value: float
    comparator: str = ""


@dataclass
class LabDraw:
    """The samples drawn from one subject at one visit (one fasting collection)."""

    subject_id: str
    visit: str  # the scheduled visit it was meant for
    study_day: int
    collected_at: datetime  # site local time, naive
    in_window: bool
    values: dict[str, LabValue] = field(default_factory=dict)

    @property
    def homa_ir(self) -> float | None:
        """HOMA1-IR from the same draw's glucose (mmol/L) and insulin (uIU/mL), as design.md defines it."""
        g, i = self.values.get("GLUC"), self.values.get("INS")
        if g is None or i is None:
            return None
        return g.value * i.value / 22.5

    @property
    def homa_b(self) -> float | None:
        g, i = self.values.get("GLUC"), self.values.get("INS")
        if g is None or i is None or g.value <= 3.5:
            return None
        return 20 * i.value / (g.value - 3.5)


@dataclass
class MedCourse:
    """One prescription period at a constant dose: a HIS CSV row, one RDE^O11, and BHYT XML2 day rows."""

    subject_id: str
    drug: str  # the HIS's own name, e.g. "Metformin 850mg"
    his_code: str  # the HIS's local drug code
    dose: float  # per administration
    unit: str  # "mg" | "IU" | "U"
    times_per_day: int
    route: str  # as the HIS writes it
    start: date
    end: date | None  # None = still taking it
    atc: str | None = None
    rxnorm: str | None = None
    code_system: str | None = None  # which code the HIS row carries: "ATC" | "RxNorm" | None
    insulin: bool = False
    fault: str | None = None  # a deliberate fault (see manifest.json)

    @property
    def daily_dose(self) -> float:
        return self.dose * self.times_per_day

    @property
    def code(self) -> str | None:
        return {"ATC": self.atc, "RxNorm": self.rxnorm}.get(self.code_system or "")

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def days(self, until: date) -> Iterator[date]:
        """Every day the course runs, up to `until` for an open course (BHYT XML2 needs daily rows)."""
        last = min(self.end, until) if self.end else until
        day = self.start
        while day <= last:
            yield day
            day += timedelta(days=1)


@dataclass
class AdverseEventFact:
    subject_id: str
    term: str
    onset: date
    resolved: date | None
    grade: int  # CTCAE 1-5
    serious: bool
    related: str  # WHO-UMC term as the CRF writes it
    outcome: str
    severity_text: str = ""  # as written in the CRF: a word or a grade
    fault: str | None = None
    onset_text: str = ""  # as written in the CRF (differs from onset only for a deliberate fault)


@dataclass
class TrialFacts:
    """Everything generated for one run; the writers' single input."""

    study: StudyConfig
    params: DemoParams
    seed: int
    subjects: list[DemoSubject]
    labs: list[LabDraw] = field(default_factory=list)
    meds: list[MedCourse] = field(default_factory=list)
    adverse_events: list[AdverseEventFact] = field(default_factory=list)

    @property
    def end_date(self) -> date:
        """The day after which nothing is generated: the last subject's end of follow-up."""
        last_day = max(v.window[1] for v in self.study.visits)
        return max(s.date_of(last_day) for s in self.subjects) if self.subjects else date(2019, 1, 1)

    @cached_property
    def by_id(self) -> dict[str, DemoSubject]:
        return {s.subject_id: s for s in self.subjects}
