"""The compact facts the endpoint extraction keeps from FHIR resources (never the resources themselves).

A source streams resources; each one is reduced to one of these small records on the fly, so 200,000
Observations cost tens of megabytes, not gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True, order=True)
class Infusion:
    """One cell-infusion Procedure: its date, id and the recorded dose per kg (with its unit), if any."""

    day: date
    resource_id: str
    dose: float | None = None
    dose_unit: str | None = None


@dataclass(slots=True)
class SubjectInfo:
    """One enrolled subject: arm, Day 1 and what DM needs."""

    subject_id: str
    patient_id: str
    arm: str
    actual_arm: str | None
    enrolled_on: date | None
    status: str
    research_subject_id: str
    sex: str | None = None
    birth_year: str | None = None
    infusions: list[Infusion] = field(default_factory=list)
    day1: date | None = None
    day1_problem: str | None = None


CENSORED_INPUT = "censored-input"
NO_TIME = float("-inf")


@dataclass(slots=True)
class Candidate:
    """A dated value that may fill a visit: a lab result in its parameter's standard unit (with what the lab
    originally said), or a HOMA index derived from same-day results."""

    param: str
    day: date  # local collection date in the site's timezone
    moment: datetime | None  # collection time, aware; None for a date only
    value: float | None  # standard unit (the limit when censored); None when undefined (`reason` says why)
    comparator: str | None = None
    orig_value: float | None = None
    orig_unit: str | None = None
    source_ids: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    reason: str | None = None
    loinc: str | None = None
    status: str | None = None
    subject_id: str = ""
    stamp: float = NO_TIME  # moment as a POSIX timestamp, for fast same-day ordering
    secondary: bool = False  # from a secondary channel (endpoints.yaml secondary_lab_code_systems)

    @property
    def censored(self) -> bool:
        return self.comparator is not None or CENSORED_INPUT in self.flags

    @property
    def key(self) -> str:
        return self.source_ids[0] if self.source_ids else ""


@dataclass(slots=True)
class Weight:
    subject_id: str
    day: date
    kg: float
    resource_id: str


@dataclass(slots=True)
class MedStatement:
    """One MedicationStatement, reduced to what dose endpoints and CM need."""

    subject_id: str
    resource_id: str
    status: str
    drug: str
    atc: str | None
    drug_class: str  # insulin | oral | other-antidiabetic | other
    agents: tuple[str, ...]  # ATC codes of its active ingredients (a fixed combination lists each component)
    start: date | None
    end: date | None  # inclusive; None = ongoing
    daily_dose: float | None  # in dose_unit per day; None when dose or frequency is unknown
    dose: float | None
    dose_unit: str | None
    frequency_per_day: float | None
    route: str | None
    dose_problem: str | None = None
    source: str | None = None  # the channel it came by (medication-source extension): his-csv, bhyt-xml2...
    drug_key: str | None = None  # the drug's identity across channels (site drug code, else RxNorm/ATC)

    @property
    def identity(self) -> str:
        return self.drug_key or self.atc or self.drug.casefold()


@dataclass(slots=True)
class AeEvent:
    subject_id: str
    resource_id: str
    term: str
    coded: str | None  # display of the first coding, when coded
    onset: date | None
    resolved: date | None
    severity: str | None  # mild | moderate | severe
    serious: bool | None
    seriousness: str | None
    causality: str | None  # WHO-UMC code as given
    related: bool | None
    outcome: str | None
    onset_range: tuple[date, date] | None = None  # a partial onset (YYYY-MM, YYYY): earliest, latest day


@dataclass(slots=True)
class Issue:
    """A resource that could not be used, and why (ids and reasons only, never values)."""

    resource_type: str
    resource_id: str
    subject_id: str | None
    issue: str
    rejected: bool = True  # False: excluded on purpose (status, policy), not a data problem


@dataclass
class StudyData:
    """Everything one run reads from a source, keyed by subject id."""

    subjects: dict[str, SubjectInfo] = field(default_factory=dict)
    labs: list[Candidate] = field(default_factory=list)
    weights: list[Weight] = field(default_factory=list)
    meds: list[MedStatement] = field(default_factory=list)
    adverse_events: list[AeEvent] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # resources read per type

    def latest_date(self) -> date | None:
        """The latest clinical date in the data: the default data cut-off."""
        dates: list[date] = [v.day for v in self.labs]
        dates += [w.day for w in self.weights]
        dates += [d for m in self.meds for d in (m.start, m.end) if d]
        dates += [d for a in self.adverse_events for d in (a.onset, a.resolved) if d]
        dates += [d for s in self.subjects.values() for d in (s.enrolled_on, s.day1) if d]
        return max(dates) if dates else None
