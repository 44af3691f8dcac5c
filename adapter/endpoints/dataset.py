"""The analysis dataset: one row per subject x parameter x scheduled visit, plus UNSCHEDULED rows.

Rules (design page, "Endpoint extraction"; CDISC/ADaM practice):
- study day from Day 1 without a Day 0; a value belongs to the window holding its collection day;
- in a window the value closest to the target day, on a tie the later one; the others stay in SDTM LB;
- values outside every window become UNSCHEDULED rows (flagged `out-of-window`), never dropped;
- a visit without a value is a row with an empty value and the reason, never imputed;
- baseline = the value chosen for the baseline visit; change = value - baseline (post-baseline rows);
- HOMA indices are candidates of their own, dated by the same-day glucose/insulin pair;
- INSDOSE/INSDOSEKG are evaluated on each visit's target date.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from adapter.endpoints import homa, medications
from adapter.endpoints.config import EndpointsConfig
from adapter.endpoints.days import VisitLookup, choose, date_of_day, study_day
from adapter.endpoints.records import Candidate, MedStatement, StudyData, SubjectInfo, Weight
from adapter.study import Parameter, StudyConfig, Visit

UNSCHEDULED = "UNSCHEDULED"
OUT_OF_WINDOW = "out-of-window"
NO_DAY1 = "no-day1"
NOT_DUE = "not-due"
CENSORED_BASELINE = "censored-baseline"


@dataclass(slots=True)
class EndpointRow:
    subject_id: str
    arm: str
    param: str
    visit: str
    study_day: int | None
    value: float | None
    unit: str
    baseline: float | None = None
    change: float | None = None
    pct_change: float | None = None
    source_ids: tuple[str, ...] = ()
    date: date | None = None
    target_day: int | None = None
    window: str = ""
    n_in_window: int = 0
    comparator: str | None = None
    orig_value: float | None = None
    orig_unit: str | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None
    value_censored: bool = False
    baseline_censored: bool = False

    @property
    def change_censored(self) -> bool:
        return self.value_censored or self.baseline_censored


@dataclass(slots=True)
class WindowedValue:
    """A lab result with its study day and visit: what SDTM LB lists (chosen or not)."""

    subject_id: str
    candidate: Candidate
    study_day: int | None
    visit: str | None  # visit id, UNSCHEDULED, or None without Day 1
    chosen: bool = False
    baseline: bool = False


@dataclass
class Analysis:
    study: StudyConfig
    config: EndpointsConfig
    data: StudyData
    cutoff: date | None
    subjects: list[SubjectInfo]
    rows: list[EndpointRow] = field(default_factory=list)
    windowed: list[WindowedValue] = field(default_factory=list)
    homa_values: list[tuple[homa.HomaPair, Candidate, Candidate]] = field(default_factory=list)
    regimens: list[tuple[SubjectInfo, Visit, date | None, medications.Regimen | None, str | None]] = field(
        default_factory=list
    )
    _scheduled: dict[str, list[EndpointRow]] | None = field(default=None, repr=False)

    def scheduled(self, param: str | None = None) -> list[EndpointRow]:
        """Rows of the scheduled visits (of one parameter), grouped once and reused."""
        if self._scheduled is None:
            grouped: dict[str, list[EndpointRow]] = defaultdict(list)
            for row in self.rows:
                if row.visit != UNSCHEDULED:
                    grouped[row.param].append(row)
            self._scheduled = dict(grouped)
        if param is not None:
            return self._scheduled.get(param, [])
        return [r for p in self.study.parameters for r in self._scheduled.get(p.id, [])]


def natural_key(text: str) -> tuple:
    """Sort S2 before S10: digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def unit_label(param: Parameter) -> str:
    return param.unit_label if param.unit_label is not None else param.unit


class _Builder:
    def __init__(
        self, study: StudyConfig, config: EndpointsConfig, data: StudyData, cutoff: date | None
    ) -> None:
        self.study = study
        self.config = config
        self.cutoff = cutoff
        self.visits = list(study.visits)
        self.visit_at = VisitLookup(self.visits)
        subjects = sorted(data.subjects.values(), key=lambda s: natural_key(s.subject_id))
        self.analysis = Analysis(study, config, data, cutoff, subjects)
        self.labs: dict[str, dict[str, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
        for lab in data.labs:
            self.labs[lab.subject_id][lab.param].append(lab)
        self.meds: dict[str, list[MedStatement]] = defaultdict(list)
        for m in data.meds:
            self.meds[m.subject_id].append(m)
        self.weights: dict[str, list[Weight]] = defaultdict(list)
        for w in data.weights:
            self.weights[w.subject_id].append(w)

    def build(self) -> Analysis:
        for subject in self.analysis.subjects:
            self.subject(subject)
        return self.analysis

    def subject(self, subject: SubjectInfo) -> None:
        labs = self.labs.get(subject.subject_id, {})
        meds = self.meds.get(subject.subject_id, [])
        cfg = self.config.homa
        derived: dict[str, list[Candidate]] = {cfg.ir: [], cfg.beta: []}
        for pair in homa.pairs(
            subject.subject_id, labs.get(cfg.glucose, []), labs.get(cfg.insulin, []), meds
        ):
            ir, beta = homa.candidates(pair, cfg)
            derived[cfg.ir].append(ir)
            derived[cfg.beta].append(beta)
            self.analysis.homa_values.append((pair, ir, beta))
        for param in self.study.parameters:
            if param.kind == "medication":
                rows = self.dose_rows(subject, param, meds)
            else:
                cands = derived.get(param.id, []) if param.kind == "derived" else labs.get(param.id, [])
                rows = self.window_rows(subject, param, cands)
            self.apply_baseline(rows)
            self.analysis.rows.extend(rows)
        self.regimen(subject, meds)

    # -- windowing ---------------------------------------------------------------------------------
    def window_rows(
        self, subject: SubjectInfo, param: Parameter, cands: Sequence[Candidate]
    ) -> list[EndpointRow]:
        unit = unit_label(param)
        lab = param.kind == "lab"
        rows: list[EndpointRow] = []
        day1 = subject.day1
        ordered = sorted(cands, key=lambda c: (c.day, c.stamp, c.key))
        if day1 is None:
            for visit in self.visits:
                rows.append(
                    self._empty(subject, param, visit, unit, subject.day1_problem or "no Day 1", (NO_DAY1,))
                )
            for c in ordered:
                rows.append(
                    self._row(subject, param, UNSCHEDULED, None, c, unit, flags=(NO_DAY1, OUT_OF_WINDOW))
                )
                if lab:
                    self.analysis.windowed.append(WindowedValue(subject.subject_id, c, None, None))
            return rows
        by_visit: dict[str, list[tuple[int, Candidate]]] = defaultdict(list)
        unscheduled: list[tuple[int, Candidate]] = []
        for c in ordered:
            day = study_day(c.day, day1)
            visit = self.visit_at(day)
            (by_visit[visit.id] if visit else unscheduled).append((day, c))
        for visit in self.visits:
            group = by_visit.get(visit.id, [])
            if not group:
                rows.append(self._missing(subject, param, visit, unit, day1))
                continue
            # an undefined value (HOMA-%B with glucose <= 3.5) fills the visit only when nothing defined does
            defined = [dc for dc in group if dc[1].value is not None] or group
            chosen_day, chosen = choose(
                defined, visit.target_day, lambda dc: dc[0], lambda dc: dc[1].stamp, lambda dc: dc[1].key
            )
            row = self._row(subject, param, visit.id, chosen_day, chosen, unit)
            row.target_day = visit.target_day
            row.window = f"{visit.window[0]}..{visit.window[1]}"
            row.n_in_window = len(group)
            rows.append(row)
            if lab:
                for d, c in group:
                    self.analysis.windowed.append(
                        WindowedValue(
                            subject.subject_id,
                            c,
                            d,
                            visit.id,
                            chosen=c is chosen,
                            baseline=c is chosen and visit.id == self.config.baseline_visit,
                        )
                    )
        for day, c in unscheduled:
            rows.append(self._row(subject, param, UNSCHEDULED, day, c, unit, flags=(OUT_OF_WINDOW,)))
            if lab:
                self.analysis.windowed.append(WindowedValue(subject.subject_id, c, day, UNSCHEDULED))
        return rows

    def _row(
        self,
        subject: SubjectInfo,
        param: Parameter,
        visit: str,
        day: int | None,
        c: Candidate,
        unit: str,
        flags: tuple[str, ...] = (),
    ) -> EndpointRow:
        return EndpointRow(
            subject_id=subject.subject_id,
            arm=subject.arm,
            param=param.id,
            visit=visit,
            study_day=day,
            value=c.value,
            unit=unit,
            source_ids=c.source_ids,
            date=c.day,
            comparator=c.comparator,
            orig_value=c.orig_value,
            orig_unit=c.orig_unit,
            flags=(*flags, *c.flags, *((f"censored:{c.comparator}",) if c.comparator else ())),
            reason=c.reason,
            value_censored=c.value is not None and c.censored,
        )

    def _empty(
        self,
        subject: SubjectInfo,
        param: Parameter,
        visit: Visit,
        unit: str,
        reason: str,
        flags: tuple[str, ...],
    ) -> EndpointRow:
        return EndpointRow(
            subject_id=subject.subject_id,
            arm=subject.arm,
            param=param.id,
            visit=visit.id,
            study_day=None,
            value=None,
            unit=unit,
            target_day=visit.target_day,
            window=f"{visit.window[0]}..{visit.window[1]}",
            flags=flags,
            reason=reason,
        )

    def _missing(
        self, subject: SubjectInfo, param: Parameter, visit: Visit, unit: str, day1: date
    ) -> EndpointRow:
        low, high = visit.window
        if self.cutoff is not None and date_of_day(low, day1) > self.cutoff:
            return self._empty(
                subject,
                param,
                visit,
                unit,
                f"window not reached by the data cut-off {self.cutoff}",
                (NOT_DUE,),
            )
        if param.kind == "derived":
            reason = f"no same-day fasting glucose and insulin in window {low}..{high}"
        else:
            reason = f"no value in window {low}..{high}"
        return self._empty(subject, param, visit, unit, reason, ())

    # -- medication endpoints ----------------------------------------------------------------------
    def dose_rows(
        self, subject: SubjectInfo, param: Parameter, meds: Sequence[MedStatement]
    ) -> list[EndpointRow]:
        unit = unit_label(param)
        rows = []
        for visit in self.visits:
            if subject.day1 is None:
                rows.append(
                    self._empty(subject, param, visit, unit, subject.day1_problem or "no Day 1", (NO_DAY1,))
                )
                continue
            target = date_of_day(visit.target_day, subject.day1)
            row = self._empty(subject, param, visit, unit, "", ())
            row.study_day = visit.target_day
            row.date = target
            row.reason = None
            if self.cutoff is not None and target > self.cutoff:
                row.reason = f"target date after the data cut-off {self.cutoff}"
                row.flags = (NOT_DUE,)
                rows.append(row)
                continue
            cfg = self.config.medications
            if param.id not in (cfg.insulin_dose_param, cfg.insulin_dose_per_kg_param):
                row.reason = "no rule derives this medication parameter"
                rows.append(row)
                continue
            dose = medications.insulin_daily_dose(meds, target, cfg.source_priority)
            if param.id == cfg.insulin_dose_per_kg_param:
                weight = medications.latest_weight(self.weights.get(subject.subject_id, []), target)
                dose = medications.dose_per_kg(dose, weight, target)
            row.value = dose.value
            row.source_ids = dose.source_ids
            row.reason = dose.reason
            rows.append(row)
        return rows

    def regimen(self, subject: SubjectInfo, meds: Sequence[MedStatement]) -> None:
        for visit in self.visits:
            if subject.day1 is None:
                self.analysis.regimens.append((subject, visit, None, None, subject.day1_problem))
                continue
            target = date_of_day(visit.target_day, subject.day1)
            if self.cutoff is not None and target > self.cutoff:
                self.analysis.regimens.append(
                    (subject, visit, target, None, "target date after the data cut-off")
                )
                continue
            self.analysis.regimens.append(
                (
                    subject,
                    visit,
                    target,
                    medications.regimen_on(meds, target, self.config.medications.source_priority),
                    None,
                )
            )

    # -- baseline and change -----------------------------------------------------------------------
    def apply_baseline(self, rows: list[EndpointRow]) -> None:
        base_row = next((r for r in rows if r.visit == self.config.baseline_visit), None)
        base = base_row.value if base_row else None
        censored = bool(base_row and base_row.value_censored)
        for row in rows:
            row.baseline = base
            row.baseline_censored = censored
            if row.visit == self.config.baseline_visit or row.value is None or base is None:
                continue
            if row.visit == UNSCHEDULED and (row.study_day is None or row.study_day <= 1):
                continue
            row.change = row.value - base
            row.pct_change = 100.0 * row.change / base if base != 0 else None
            if censored:
                row.flags = (*row.flags, CENSORED_BASELINE)


def build_analysis(
    study: StudyConfig, config: EndpointsConfig, data: StudyData, cutoff: date | None
) -> Analysis:
    """The analysis dataset and what SDTM and the medication table need, in deterministic order."""
    return _Builder(study, config, data, cutoff).build()
