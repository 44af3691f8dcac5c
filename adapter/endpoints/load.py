"""Read a source once, reducing each resource to a compact record (see records.py) as it streams by.

Order of reading: the study's ResearchSubjects and their Patients first (who is in the study, which arm),
then infusion Procedures (Day 1), lab and weight Observations, MedicationStatements and AdverseEvents of
those patients. Anything unusable becomes an Issue naming the resource and the reason, never its values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from adapter.endpoints.config import EndpointsConfig, extension_url
from adapter.endpoints.fhirparse import (
    code_in,
    codings,
    concept_text,
    effective,
    parse_day,
    partial_date_range,
    ref_id,
)
from adapter.endpoints.records import (
    NO_TIME,
    AeEvent,
    Candidate,
    Infusion,
    Issue,
    MedStatement,
    StudyData,
    SubjectInfo,
    Weight,
)
from adapter.endpoints.source import Source
from adapter.endpoints.units import UnitConverter
from adapter.mapping.study import study_id
from adapter.model import Resource
from adapter.study import StudyConfig

LOINC = "http://loinc.org"
# ResearchSubject statuses of people who were never enrolled (R4 research-subject-status).
NOT_ENROLLED = {"candidate", "potential-candidate", "screening", "ineligible", "not-registered"}
PROCEDURE_NOT_DONE = {"not-done", "entered-in-error", "preparation"}
CAUSALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess"
# Strongest first: the WHO-UMC scale (R4 spelling; later THO releases lower-case it).
CAUSALITY_ORDER = [
    "certain",
    "probably-likely",
    "possible",
    "unlikely",
    "conditional-classified",
    "unassessable-unclassifiable",
]
_TIMING_CODES = {"QD": 1.0, "AM": 1.0, "PM": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0, "QOD": 0.5}
_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0}

Progress = Callable[[str, int], None]


class _Loader:
    def __init__(
        self,
        source: Source,
        study: StudyConfig,
        config: EndpointsConfig,
        converter: UnitConverter,
        progress: Progress | None,
    ) -> None:
        self.source = source
        self.study = study
        self.config = config
        self.units = converter
        self.progress = progress or (lambda _type, _n: None)
        self.data = StudyData()
        self.by_patient: dict[str, SubjectInfo] = {}
        self.tz = study.tz
        self.lab_codes: dict[str, tuple[str, str]] = {
            code.code: (p.id, code.code) for p in study.parameters if p.kind == "lab" for code in p.loinc
        }
        for code, param_id in config.lab_loinc_synonyms.items():  # other LOINC codes of a parameter
            self.lab_codes.setdefault(code, (param_id, code))
        self.fasting = {p.id for p in study.parameters if p.fasting}

    # -- plumbing ----------------------------------------------------------------------------------
    def issue(self, r: Resource, subject: str | None, text: str, rejected: bool = True) -> None:
        self.data.issues.append(
            Issue(r.get("resourceType", "?"), str(r.get("id", "?")), subject, text, rejected)
        )

    def stream(self, resource_type: str, **narrow: Any) -> Iterator[Resource]:
        seen: set[str] = set()
        count = 0
        for resource in self.source.resources(resource_type, **narrow):
            if resource.get("resourceType") != resource_type:
                continue
            rid = str(resource.get("id", ""))
            if rid in seen:
                continue
            seen.add(rid)
            count += 1
            if count % 5000 == 0:
                self.progress(resource_type, 5000)
            yield resource
        self.progress(resource_type, count % 5000)
        self.data.counts[resource_type] = self.data.counts.get(resource_type, 0) + count

    def subject_of(self, resource: Resource, key: str = "subject") -> SubjectInfo | None:
        patient = ref_id(resource.get(key), "Patient")
        return self.by_patient.get(patient) if patient else None

    # -- subjects ----------------------------------------------------------------------------------
    def load_subjects(self) -> None:
        sid = study_id(self.study)
        for rs in self.stream("ResearchSubject", params={"study": f"ResearchStudy/{sid}"}):
            if ref_id(rs.get("study"), "ResearchStudy") != sid:
                continue
            status = rs.get("status") or "unknown"
            if status in NOT_ENROLLED:
                self.issue(rs, None, f"status {status}: not enrolled", rejected=False)
                continue
            patient = ref_id(rs.get("individual"), "Patient")
            if not patient:
                self.issue(rs, None, "no individual (Patient reference)")
                continue
            arm = self._arm(rs.get("assignedArm"))
            if arm is None:
                self.issue(rs, None, "assignedArm is not an arm of the study")
                continue
            subject_id = next(
                (
                    i.get("value")
                    for i in rs.get("identifier") or []
                    if i.get("system") == self.study.system("subject-id") and i.get("value")
                ),
                None,
            )
            info = SubjectInfo(
                subject_id=subject_id or "",
                patient_id=patient,
                arm=arm,
                actual_arm=self._arm(rs.get("actualArm")) if rs.get("actualArm") else None,
                enrolled_on=parse_day((rs.get("period") or {}).get("start"), self.tz),
                status=status,
                research_subject_id=str(rs.get("id", "")),
            )
            if patient in self.by_patient:
                self.issue(rs, subject_id, "a second ResearchSubject for the same Patient")
                continue
            self.by_patient[patient] = info
        for patient in self.stream("Patient", ids=list(self.by_patient)):
            info = self.by_patient.get(str(patient.get("id")))
            if info is None:
                continue
            info.sex = patient.get("gender")
            birth = patient.get("birthDate")
            info.birth_year = birth[:4] if isinstance(birth, str) and len(birth) >= 4 else None
            if not info.subject_id:
                info.subject_id = next(
                    (
                        i.get("value")
                        for i in patient.get("identifier") or []
                        if i.get("system") == self.study.system("subject-id") and i.get("value")
                    ),
                    "",
                )
        for patient, info in list(self.by_patient.items()):
            if not info.subject_id:
                self.data.issues.append(
                    Issue("ResearchSubject", info.research_subject_id, None, "no study subject id")
                )
                del self.by_patient[patient]
                continue
            if info.subject_id in self.data.subjects:
                self.data.issues.append(
                    Issue(
                        "ResearchSubject", info.research_subject_id, info.subject_id, "subject id used twice"
                    )
                )
                del self.by_patient[patient]
                continue
            self.data.subjects[info.subject_id] = info

    def _arm(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        arm = self.study.arm(value) or next((a for a in self.study.arms if a.name == value), None)
        return arm.id if arm else None

    # -- Day 1 -------------------------------------------------------------------------------------
    def load_infusions(self) -> None:
        system = self.study.system(self.config.infusion.code_system)
        code = self.config.infusion.code
        params = {"code": f"{system}|{code}"}
        for proc in self.stream("Procedure", params=params, patients=list(self.by_patient)):
            if code_in(proc.get("code"), system) != code:
                continue
            info = self.subject_of(proc)
            if info is None:
                continue
            if proc.get("status") in PROCEDURE_NOT_DONE:
                self.issue(proc, info.subject_id, f"infusion status {proc.get('status')}", rejected=False)
                continue
            when = proc.get("performedDateTime") or (proc.get("performedPeriod") or {}).get("start")
            day = parse_day(when, self.tz)
            if day is None:
                self.issue(proc, info.subject_id, "infusion without a performed date")
                continue
            dose, dose_unit = self._infusion_dose(proc)
            info.infusions.append(Infusion(day, str(proc.get("id")), dose, dose_unit))
        for info in self.data.subjects.values():
            info.infusions.sort()
            arm = self.study.arm(info.arm)
            assert arm is not None
            if arm.day1 == "infused_on":
                if info.infusions:
                    info.day1 = info.infusions[0].day
                else:
                    info.day1_problem = "no infusion recorded (Day 1 = infusion date)"
            elif info.enrolled_on:
                info.day1 = info.enrolled_on
            else:
                info.day1_problem = "no enrollment date (Day 1 = enrollment date)"

    def _infusion_dose(self, proc: Resource) -> tuple[float | None, str | None]:
        name = self.config.infusion.dose_extension
        if not name:
            return None, None
        url = extension_url(self.study, name)
        for ext in proc.get("extension") or []:
            quantity = ext.get("valueQuantity") if ext.get("url") == url else None
            if isinstance(quantity, dict) and _is_number(quantity.get("value")):
                return float(quantity["value"]), quantity.get("unit") or quantity.get("code")
        return None, None

    # -- observations ------------------------------------------------------------------------------
    def load_observations(self) -> None:
        weight_codes = set(self.config.weight.loinc)
        statuses = set(self.config.observation_statuses)
        secondary = {extension_url(self.study, s) for s in self.config.secondary_lab_code_systems}
        # Scoped by the study's patients only; the codes are checked here. HAPI answers `subject` OR-lists
        # and `code` OR-lists each in about a second, but both together ten times slower (60 subjects:
        # 11.5 s against 1.2 s), and a study patient's other Observations are few.
        for obs in self.stream("Observation", patients=list(self.by_patient)):
            info = self.subject_of(obs)
            if info is None:
                continue
            loinc = [c.get("code") for c in codings(obs.get("code")) if c.get("system") == LOINC]
            lab = next((self.lab_codes[c] for c in loinc if c in self.lab_codes), None)
            is_weight = any(c in weight_codes for c in loinc)
            if lab is None and not is_weight:
                continue
            status = obs.get("status") or "unknown"
            if status not in statuses:
                rejected = status not in ("cancelled", "entered-in-error", "preliminary", "registered")
                self.issue(obs, info.subject_id, f"status {status}: not analysed", rejected=rejected)
                continue
            quantity = obs.get("valueQuantity")
            if not isinstance(quantity, dict) or not _is_number(quantity.get("value")):
                if obs.get("dataAbsentReason"):
                    self.issue(obs, info.subject_id, "no value (dataAbsentReason)", rejected=False)
                else:
                    self.issue(obs, info.subject_id, "value is not a numeric Quantity")
                continue
            when = effective(obs, self.tz)
            if when is None:
                self.issue(obs, info.subject_id, "no collection date (or only a partial date)")
                continue
            unit = self.units.ucum(quantity)
            if is_weight:
                factor = self.config.weight.to_kg.get(unit or "")
                if factor is None:
                    self.issue(obs, info.subject_id, f"body weight unit {unit!r} is not known")
                    continue
                kg = float(quantity["value"]) * factor
                self.data.weights.append(Weight(info.subject_id, when[0], kg, str(obs.get("id"))))
                continue
            assert lab is not None
            param, code = lab
            convert = self.units.converter(param, unit)
            if convert is None:
                target = self.study.parameter(param)
                self.issue(
                    obs,
                    info.subject_id,
                    f"{param}: unit {unit!r} cannot be converted to {target.unit if target else '?'}",
                )
                continue
            value = float(quantity["value"])
            comparator = (
                quantity.get("comparator") if quantity.get("comparator") in ("<", "<=", ">", ">=") else None
            )
            self.data.labs.append(
                Candidate(
                    param=param,
                    day=when[0],
                    moment=when[1],
                    value=convert(value),
                    comparator=comparator,
                    orig_value=value,
                    orig_unit=str(quantity.get("unit") or unit or ""),
                    source_ids=(f"Observation/{obs.get('id')}",),
                    loinc=code,
                    status=status,
                    subject_id=info.subject_id,
                    stamp=when[1].timestamp() if when[1] else NO_TIME,
                    secondary=bool(secondary)
                    and any(c.get("system") in secondary for c in codings(obs.get("code"))),
                )
            )
        self.drop_secondary_duplicates()

    def drop_secondary_duplicates(self) -> None:
        """A result the lab's feed and a claim export both carry is one sample: keep the lab's value."""
        primary = {(c.subject_id, c.param, c.day) for c in self.data.labs if not c.secondary}
        kept = []
        for c in self.data.labs:
            if c.secondary and (c.subject_id, c.param, c.day) in primary:
                rid = c.source_ids[0].split("/", 1)[1]
                self.issue(
                    {"resourceType": "Observation", "id": rid},
                    c.subject_id,
                    f"{c.param}: the lab's own feed has this day's result (secondary channel: not analysed)",
                    rejected=False,
                )
                continue
            kept.append(c)
        self.data.labs = kept

    # -- medications -------------------------------------------------------------------------------
    def load_medications(self) -> None:
        pending: list[tuple[Resource, SubjectInfo]] = []
        med_ids: set[str] = set()
        excluded = set(self.config.medications.excluded_statuses)
        for ms in self.stream("MedicationStatement", patients=list(self.by_patient)):
            info = self.subject_of(ms)
            if info is None:
                continue
            if ms.get("status") in excluded:
                self.issue(ms, info.subject_id, f"status {ms.get('status')}: not analysed", rejected=False)
                continue
            pending.append((ms, info))
            med = ref_id(ms.get("medicationReference"), "Medication")
            if med and not ms.get("medicationCodeableConcept"):
                med_ids.add(med)
        medications: dict[str, Any] = {}
        if med_ids:
            for med in self.stream("Medication", ids=sorted(med_ids)):
                medications[str(med.get("id"))] = med.get("code")
        for ms, info in pending:
            concept = ms.get("medicationCodeableConcept")
            if concept is None:
                concept = medications.get(ref_id(ms.get("medicationReference"), "Medication") or "")
            self.data.meds.append(self._statement(ms, info, concept))

    def _statement(self, ms: Resource, info: SubjectInfo, concept: Any) -> MedStatement:
        cfg = self.config.medications
        atc = code_in(concept, cfg.atc_system)
        drug = concept_text(concept) or atc or "(drug not recorded)"
        agents: tuple[str, ...] = (atc,) if atc else ()
        if not atc and cfg.component_extension:  # a fixed-dose combination: its components' ATC codes
            url = extension_url(self.study, cfg.component_extension)
            found = [
                code_in(ext.get("valueCodeableConcept"), cfg.atc_system)
                for ext in ms.get("extension") or []
                if ext.get("url") == url
            ]
            agents = tuple(sorted({c for c in found if c}))
        drug_class = _drug_class(agents, cfg)
        if (
            drug_class == "other"
            and not agents
            and any(n.casefold() in drug.casefold() for n in cfg.insulin_names)
        ):
            drug_class = "insulin"  # no ATC code (RxNorm or a local code only): recognised by its name
            self.issue(ms, info.subject_id, f"no ATC code: {drug!r} taken for an insulin by its name", False)
        status = str(ms.get("status") or "")
        period = ms.get("effectivePeriod") or {}
        start = parse_day(period.get("start"), self.tz)
        end = parse_day(period.get("end"), self.tz)
        if ms.get("effectiveDateTime"):
            start = parse_day(ms.get("effectiveDateTime"), self.tz)
            # "is taking it" as of that date: ongoing; any other status: that day only
            end = None if status == "active" else start
        elif start is not None and end is None and status in ("completed", "stopped"):
            end = start  # ended on a date not recorded: counted on its start date only
            self.issue(
                ms, info.subject_id, f"{status} without an end date: counted on its start date only", False
            )
        if start is None:
            self.issue(ms, info.subject_id, "no start date: cannot tell when it was taken")
        accepted = {u.casefold() for u in cfg.insulin_dose_units}
        total, unit, per_day, problem = _daily_dosing(
            ms.get("dosage") or [], lambda u: "[IU]" if u.casefold() in accepted else u
        )
        if unit is not None and drug_class == "insulin":
            if unit.casefold() in accepted:
                unit = "[IU]"
            else:
                problem = problem or f"insulin dose unit {unit!r} is not an international unit"
        daily = total if problem is None else None
        if problem and drug_class == "insulin":
            self.issue(ms, info.subject_id, f"insulin daily dose unknown: {problem}")
        route = next((concept_text(d.get("route")) for d in ms.get("dosage") or [] if d.get("route")), None)
        return MedStatement(
            subject_id=info.subject_id,
            resource_id=str(ms.get("id")),
            status=status,
            drug=drug,
            atc=atc,
            drug_class=drug_class,
            agents=agents,
            start=start,
            end=end,
            daily_dose=daily,
            dose=_single_dose(ms.get("dosage") or []),
            dose_unit=unit,
            frequency_per_day=per_day,
            route=route,
            dose_problem=problem,
            source=self._med_source(ms),
            drug_key=next(
                (
                    c
                    for system in cfg.drug_systems
                    if (c := code_in(concept, extension_url(self.study, system)))
                ),
                None,
            ),
        )

    def _med_source(self, ms: Resource) -> str | None:
        name = self.config.medications.source_extension
        if not name:
            return None
        url = extension_url(self.study, name)
        return next((e.get("valueCode") for e in ms.get("extension") or [] if e.get("url") == url), None)

    # -- adverse events ----------------------------------------------------------------------------
    def load_adverse_events(self) -> None:
        related = {c.casefold() for c in self.config.adverse_events.related}
        for ae in self.stream("AdverseEvent", patients=list(self.by_patient)):
            info = self.subject_of(ae)
            if info is None:
                continue
            if ae.get("actuality") == "potential":
                self.issue(ae, info.subject_id, "potential (not actual) event", rejected=False)
                continue
            onset = parse_day(ae.get("date"), self.tz)
            onset_range = None if onset else partial_date_range(ae.get("date"))
            if onset_range is not None:
                self.issue(ae, info.subject_id, "partial onset date: judged by its month or year", False)
            elif onset is None:
                self.issue(ae, info.subject_id, "no onset date: treatment emergence unknown")
            causality = self._causality(ae)
            seriousness = next((c.get("code") for c in codings(ae.get("seriousness")) if c.get("code")), None)
            serious = None
            if seriousness:
                serious = str(seriousness).casefold().startswith("serious")
            severity = next(
                (
                    str(c["code"]).casefold()
                    for c in codings(ae.get("severity"))
                    if str(c.get("code", "")).casefold() in ("mild", "moderate", "severe")
                ),
                None,
            )
            event = ae.get("event") or {}
            term = (event.get("text") or concept_text(event) or "(term not recorded)").strip()
            coded = next((c.get("display") or c.get("code") for c in codings(event)), None)
            outcome = next((c.get("code") for c in codings(ae.get("outcome")) if c.get("code")), None)
            self.data.adverse_events.append(
                AeEvent(
                    subject_id=info.subject_id,
                    resource_id=str(ae.get("id")),
                    term=term,
                    coded=coded,
                    onset=onset,
                    resolved=self._ae_end(ae),
                    severity=severity,
                    serious=serious,
                    seriousness=seriousness,
                    causality=causality,
                    related=(causality.casefold() in related) if causality else None,
                    outcome=outcome,
                    onset_range=onset_range,
                )
            )

    def _ae_end(self, ae: Resource) -> date | None:
        """The resolution date, from the configured extension (R4 AdverseEvent has no end date)."""
        urls = {extension_url(self.study, u) for u in self.config.adverse_events.resolved_extensions}
        for ext in ae.get("extension") or []:
            if ext.get("url") in urls:
                value = (
                    ext.get("valueDateTime")
                    or ext.get("valueDate")
                    or (ext.get("valuePeriod") or {}).get("end")
                )
                return parse_day(value, self.tz)
        return None

    def _causality(self, ae: Resource) -> str | None:
        """The strongest WHO-UMC assessment of the study treatment: from the suspect entities that are
        the study's procedures (or name no instance), never a concomitant drug's, and from a causality
        extension on the event or on those entities."""
        found: list[str] = []
        kept = [e for e in ae.get("suspectEntity") or [] if _is_study_treatment(e)]
        for entity in kept:
            for causality in entity.get("causality") or []:
                found += [str(c["code"]) for c in codings(causality.get("assessment")) if c.get("code")]
        urls = {extension_url(self.study, u) for u in self.config.adverse_events.causality_extensions}
        top = {k: v for k, v in ae.items() if k != "suspectEntity"}
        for ext in _extensions([top, kept]):
            concept = ext.get("valueCodeableConcept")
            if ext.get("url") in urls or any(c.get("system") == CAUSALITY_SYSTEM for c in codings(concept)):
                found += [str(c["code"]) for c in codings(concept) if c.get("code")]
        known = [c for c in found if c.casefold() in CAUSALITY_ORDER]
        if not known:
            return found[0] if found else None
        return min(known, key=lambda c: CAUSALITY_ORDER.index(c.casefold()))


def _is_study_treatment(entity: dict[str, Any]) -> bool:
    """A suspect entity that is the trial's intervention (a Procedure: harvest, infusion) or names none;
    a medication, substance or device is a concomitant product, not the study treatment."""
    reference = str((entity.get("instance") or {}).get("reference") or "")
    return not reference or reference.startswith("Procedure/") or "/Procedure/" in reference


def _extensions(resource: Any) -> Iterator[dict[str, Any]]:
    """Every extension anywhere in the resource (causality may sit on suspectEntity, or nested)."""
    if isinstance(resource, dict):
        for key, value in resource.items():
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                for ext in value:
                    if isinstance(ext, dict):
                        yield ext
                        yield from _extensions(ext)
            elif isinstance(value, (dict, list)):
                yield from _extensions(value)
    elif isinstance(resource, list):
        for item in resource:
            yield from _extensions(item)


def _drug_class(agents: tuple[str, ...], cfg: Any) -> str:
    """insulin if any ingredient is an insulin, else oral, else another antidiabetic, else other."""
    for drug_class, prefixes in (
        ("insulin", cfg.insulin_atc),
        ("oral", cfg.oral_atc),
        ("other-antidiabetic", cfg.antidiabetic_atc),
    ):
        if any(a.startswith(p) for a in agents for p in prefixes):
            return drug_class
    return "other"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _per_day(dosage: dict[str, Any]) -> tuple[float | None, str | None]:
    """How many times a day one dosage line is taken: timing.repeat (frequency per period; `when` or
    `timeOfDay` entries count as the times of a day when no frequency or period says otherwise), else
    the timing code (BID...)."""
    if dosage.get("asNeededBoolean") or dosage.get("asNeededCodeableConcept"):
        return None, "taken as needed"
    timing = dosage.get("timing") or {}
    repeat = timing.get("repeat") or {}
    times = repeat.get("when") or repeat.get("timeOfDay") or []
    frequency, period, unit = repeat.get("frequency"), repeat.get("period"), repeat.get("periodUnit")
    if frequency is None and period is None and not times:  # e.g. only boundsPeriod: the code says it
        code = next((str(c.get("code")) for c in codings(timing.get("code")) if c.get("code")), None)
        if code and code.upper() in _TIMING_CODES:
            return _TIMING_CODES[code.upper()], None
        return None, "no dosing frequency" if not repeat else "dosing frequency or period not understood"
    if frequency is None:
        frequency = len(times) or 1
    if period is None and unit is None and times:
        period, unit = 1, "d"
    if not _is_number(frequency) or not _is_number(period) or period <= 0 or unit not in _PERIOD_DAYS:
        return None, "dosing frequency or period not understood"
    return float(frequency) / (float(period) * _PERIOD_DAYS[unit]), None


def _dose_quantity(dosage: dict[str, Any]) -> dict[str, Any] | None:
    for dr in dosage.get("doseAndRate") or []:
        if isinstance(dr.get("doseQuantity"), dict):
            return dr["doseQuantity"]
    return None


def _single_dose(dosages: list[dict[str, Any]]) -> float | None:
    quantity = _dose_quantity(dosages[0]) if dosages else None
    return float(quantity["value"]) if quantity and _is_number(quantity.get("value")) else None


def _daily_dosing(
    dosages: list[dict[str, Any]], same_unit: Callable[[str], str] = lambda u: u
) -> tuple[float | None, str | None, float | None, str | None]:
    """(daily dose, dose unit, administrations per day, problem): summed over every dosage line, so a
    regimen written as a morning and an evening line counts both (`same_unit` maps the spellings of one
    unit, U and [IU], to one)."""
    if not dosages:
        return None, None, None, "no dosage"
    total = 0.0
    per_day_total = 0.0
    unit: str | None = None
    for dosage in dosages:
        quantity = _dose_quantity(dosage)
        if quantity is None or not _is_number(quantity.get("value")):
            return None, unit, None, "no dose quantity"
        this_unit = same_unit(str(quantity.get("code") or quantity.get("unit") or ""))
        if unit is not None and this_unit != unit:
            return None, unit, None, "dosage lines in different units"
        unit = this_unit
        per_day, problem = _per_day(dosage)
        if per_day is None:
            return None, unit, None, problem
        total += float(quantity["value"]) * per_day
        per_day_total += per_day
    return total, unit, per_day_total, None


def load_study_data(
    source: Source,
    study: StudyConfig,
    config: EndpointsConfig,
    converter: UnitConverter,
    progress: Progress | None = None,
) -> StudyData:
    """Everything the endpoints need from one source, in one streaming pass per resource type."""
    loader = _Loader(source, study, config, converter, progress)
    loader.load_subjects()
    if loader.by_patient:
        loader.load_infusions()
        loader.load_observations()
        loader.load_medications()
        loader.load_adverse_events()
    return loader.data
