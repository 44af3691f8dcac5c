"""The hospital information system (HIS), simulated: prescriptions as a CSV export and as RDE^O11/RAS^O17.

Everyone is on two oral agents (the eligibility: uncontrolled on two oral agents), some on concomitant
cardiovascular medicines, and a subset on insulin (basal, premixed, or basal-bolus). Insulin doses change
at the follow-up visits and once more before the last one, towards the arm's end-of-follow-up change
(Bhansali 2014: -67 % vs -32 %; Zang 2022: -28 % vs -16 %); below 4 IU/day insulin is stopped. Drug names
are the HIS's own spellings (`DRUG_NAMES` lists them for mappings/drugs.yaml); a share of rows carries the
ATC or RxNorm code (codes from ../shared/reference/terminology.md section 4, status V).
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from adapter.demo.facts import DemoSubject, LabDraw, MedCourse
from adapter.demo.hl7text import Clock, Message, escape, msh, write_text
from adapter.demo.labs import effect_fraction
from adapter.demo.params import DemoParams
from adapter.study import StudyConfig

HIS_APP = "HIS"
HIS_FACILITY = "VANHANH_HIS"
MEDS_COLUMNS = (
    "mrn",
    "drug",
    "dose",
    "unit",
    "times_per_day",
    "route",
    "start_date",
    "end_date",
    "code",
    "code_system",
)


@dataclass(frozen=True)
class Drug:
    name: str  # as the HIS writes it
    his_code: str
    atc: str
    rxnorm: str | None
    ingredient: str
    insulin: bool = False


def _d(name: str, code: str, atc: str, rxnorm: str | None, ingredient: str, insulin: bool = False) -> Drug:
    return Drug(name, code, atc, rxnorm, ingredient, insulin)


# (drug, dose per administration, times per day)
METFORMIN = (
    (_d("Metformin 500mg", "MET500", "A10BA02", "6809", "metformin"), 1000.0, 2),
    (_d("Metformin 850mg", "MET850", "A10BA02", "6809", "metformin"), 850.0, 2),
    (_d("Metformin 1000mg", "MET1000", "A10BA02", "6809", "metformin"), 1000.0, 2),
    (_d("Glucophage XR 750mg", "GLUXR750", "A10BA02", "6809", "metformin"), 1500.0, 1),
)
SECOND_AGENT = (
    (_d("Gliclazide 30mg MR", "GLI30", "A10BB09", None, "gliclazide"), 60.0, 1),
    (_d("Diamicron MR 60mg", "DIA60", "A10BB09", None, "gliclazide"), 60.0, 1),
    (_d("Glimepiride 2mg", "GLM2", "A10BB12", "25789", "glimepiride"), 4.0, 1),
    (_d("Sitagliptin 100mg", "SIT100", "A10BH01", "593411", "sitagliptin"), 100.0, 1),
    (_d("Galvus 50mg", "GAL50", "A10BH02", None, "vildagliptin"), 50.0, 2),
    (_d("Empagliflozin 10mg", "EMP10", "A10BK03", "1545653", "empagliflozin"), 10.0, 1),
)
SULFONYLUREAS = {"gliclazide", "glimepiride"}
CONCOMITANT = (
    (_d("Atorvastatin 20mg", "ATO20", "", None, "atorvastatin"), 20.0, 1, 0.35),
    (_d("Amlodipine 5mg", "AML5", "", None, "amlodipine"), 5.0, 1, 0.25),
    (_d("Losartan 50mg", "LOS50", "", None, "losartan"), 50.0, 1, 0.20),
)
LANTUS = _d("Lantus (insulin glargine)", "LANTUS", "A10AE04", "274783", "insulin glargine", True)
MIXTARD = _d("Mixtard 30", "MIX30", "A10AD01", "1008501", "insulin human premix 30/70", True)
NOVORAPID = _d("NovoRapid", "NOVORAP", "A10AB05", None, "insulin aspart", True)
# Not in any drug map on purpose: the deliberate "unknown drug" fault (a herbal remedy patients bring).
UNKNOWN_DRUG = _d("Viên tiểu đường Hạnh Vân", "TD-HV", "", None, "unknown")

DRUG_NAMES: tuple[str, ...] = tuple(
    sorted(
        {d.name for d, *_ in METFORMIN + SECOND_AGENT}
        | {d.name for d, *_ in CONCOMITANT}
        | {LANTUS.name, MIXTARD.name, NOVORAPID.name}
    )
)
ATC_DISPLAY = {
    "A10BA02": "metformin",
    "A10BB09": "gliclazide",
    "A10BB12": "glimepiride",
    "A10BH01": "sitagliptin",
    "A10BH02": "vildagliptin",
    "A10BK03": "empagliflozin",
    "A10AE04": "insulin glargine",
    "A10AD01": "insulin (human)",
    "A10AB05": "insulin aspart",
}


def _round_units(total: float) -> float:
    """Insulin is dosed in steps of 2 IU, at least 2."""
    return float(max(2, 2 * round(total / 2)))


def _visit_dates(subject: DemoSubject, draws: list[LabDraw], study: StudyConfig) -> dict[str, int]:
    """Study day of each visit the subject attended (else its target day)."""
    days = {v.id: v.target_day for v in study.visits}
    days.update({d.visit: d.study_day for d in draws if d.in_window})
    return days


def _insulin_courses(
    rng: random.Random, subject: DemoSubject, params: DemoParams, study: StudyConfig, draws: list[LabDraw]
) -> list[MedCourse]:
    eff = params.effects(subject.intervention)
    total0 = params.insulin_dose_median * math.exp(rng.gauss(0.0, params.insulin_dose_log_sd))
    change = (eff.insulin_dose_change_pct + rng.gauss(0.0, params.insulin_dose_subject_sd)) / 100
    change = min(max(change, -1.0), 0.3)
    regimen = rng.choices(("basal", "premix", "basal-bolus"), (0.5, 0.3, 0.2))[0]
    visits = sorted(study.visits, key=lambda v: v.target_day)
    last_target = visits[-1].target_day
    day_of = _visit_dates(subject, draws, study)
    steps: list[tuple[int, float]] = []  # (study day the new dose starts, total daily dose)
    for visit in visits[1:-1]:
        day = day_of[visit.id]
        steps.append((day, total0 * (1 + change * effect_fraction(day, last_target, params.effect_tau_days))))
    titration = rng.randint(
        visits[-2].window[1] + 10, max(visits[-2].window[1] + 11, visits[-1].window[0] - 5)
    )
    steps.append((titration, total0 * (1 + change)))
    start = subject.enrolled_on - timedelta(days=rng.randint(60, 700))

    def regimen_courses(total: float, begin: date, end: date | None) -> list[MedCourse]:
        def course(drug: Drug, dose: float, tpd: int) -> MedCourse:
            unit = "U" if rng.random() < params.quirks.insulin_unit_u else "IU"
            return _course(rng, params, subject, drug, dose, unit, tpd, "SC", begin, end)

        if regimen == "basal":
            return [course(LANTUS, _round_units(total), 1)]
        if regimen == "premix":
            return [course(MIXTARD, _round_units(total / 2), 2)]
        return [course(LANTUS, _round_units(total / 2), 1), course(NOVORAPID, _round_units(total / 6), 3)]

    courses: list[MedCourse] = []
    current_total, current_start = total0, start
    for day, total in steps:
        if not subject.on_study(day):
            break
        when = subject.date_of(day)
        if total < 4 or _round_units(total) != _round_units(current_total):
            courses.extend(regimen_courses(current_total, current_start, when - timedelta(days=1)))
            if total < 4:
                return courses
            current_total, current_start = total, when
    courses.extend(regimen_courses(current_total, current_start, None))
    return courses


def _course(
    rng: random.Random,
    params: DemoParams,
    subject: DemoSubject,
    drug: Drug,
    dose: float,
    unit: str,
    times_per_day: int,
    route: str,
    start: date,
    end: date | None,
) -> MedCourse:
    quirks = params.quirks
    code_system = None
    if drug.atc and rng.random() < quirks.coded_drugs:
        code_system = "RxNorm" if drug.rxnorm and rng.random() < quirks.rxnorm_codes else "ATC"
    if rng.random() < quirks.vietnamese_routes:
        route = {"PO": "Uống", "SC": "Tiêm dưới da"}[route]
    return MedCourse(
        subject_id=subject.subject_id,
        drug=drug.name,
        his_code=drug.his_code,
        dose=dose,
        unit=unit,
        times_per_day=times_per_day,
        route=route,
        start=start,
        end=end,
        atc=drug.atc or None,
        rxnorm=drug.rxnorm,
        code_system=code_system,
        insulin=drug.insulin,
    )


def _oral_courses(
    rng: random.Random, subject: DemoSubject, params: DemoParams, study: StudyConfig, draws: list[LabDraw]
) -> list[MedCourse]:
    courses: list[MedCourse] = []
    day_of = _visit_dates(subject, draws, study)
    visits = sorted(study.visits, key=lambda v: v.target_day)
    adjust_day = day_of[visits[2].id] if len(visits) > 2 else None
    treated = subject.intervention and params.scenario == "effect"  # the null scenario: like controls
    for choice in (rng.choice(METFORMIN), rng.choice(SECOND_AGENT)):
        drug, dose, tpd = choice
        start = subject.enrolled_on - timedelta(days=rng.randint(180, 1800))
        change: tuple[float, int] | None = None
        if adjust_day is not None and subject.on_study(adjust_day):
            if treated and drug.ingredient in SULFONYLUREAS and rng.random() < 0.35:
                change = (dose / 2, tpd)  # better control: the sulfonylurea is halved
            elif not treated and drug.ingredient == "metformin" and tpd == 2 and rng.random() < 0.15:
                change = (dose, 3)  # still uncontrolled: a third daily dose
        if change is None:
            courses.append(_course(rng, params, subject, drug, dose, "mg", tpd, "PO", start, None))
            continue
        assert adjust_day is not None
        when = subject.date_of(adjust_day)
        courses.append(
            _course(rng, params, subject, drug, dose, "mg", tpd, "PO", start, when - timedelta(days=1))
        )
        courses.append(_course(rng, params, subject, drug, change[0], "mg", change[1], "PO", when, None))
    for drug, dose, tpd, share in CONCOMITANT:
        if rng.random() < share:
            start = subject.enrolled_on - timedelta(days=rng.randint(90, 2000))
            courses.append(_course(rng, params, subject, drug, dose, "mg", tpd, "PO", start, None))
    return courses


def draw_meds(
    study: StudyConfig, params: DemoParams, subjects: list[DemoSubject], draws: list[LabDraw], seed: int
) -> list[MedCourse]:
    by_subject: dict[str, list[LabDraw]] = {}
    for draw in draws:
        by_subject.setdefault(draw.subject_id, []).append(draw)
    courses: list[MedCourse] = []
    for subject in subjects:
        rng = random.Random(f"{seed}:meds:{subject.subject_id}")
        own = by_subject.get(subject.subject_id, [])
        courses.extend(_oral_courses(rng, subject, params, study, own))
        if subject.insulin_user:
            courses.extend(_insulin_courses(rng, subject, params, study, own))
    return courses


def unknown_drug_course(rng: random.Random, subject: DemoSubject) -> MedCourse:
    """The deliberate fault: a remedy no drug map knows, without a code."""
    start = subject.enrolled_on + timedelta(days=rng.randint(20, 120))
    return MedCourse(
        subject.subject_id,
        UNKNOWN_DRUG.name,
        UNKNOWN_DRUG.his_code,
        2.0,
        "viên",
        2,
        "Uống",
        start,
        None,
        fault="unknown-drug",
    )


def _fmt(value: float) -> str:
    return f"{value:g}"


def meds_rows(courses: list[MedCourse], mrn_of: dict[str, str]) -> list[tuple[MedCourse, list[str]]]:
    """HIS export rows, sorted as the HIS exports them (by patient, then start date)."""
    rows = [
        (
            c,
            [
                mrn_of[c.subject_id],
                c.drug,
                _fmt(c.dose),
                c.unit,
                str(c.times_per_day),
                c.route,
                c.start.isoformat(),
                c.end.isoformat() if c.end else "",
                c.code or "",
                c.code_system or "",
            ],
        )
        for c in courses
    ]
    rows.sort(key=lambda r: (r[1][0], r[1][6], r[1][1]))
    return rows


def write_meds_csv(path: Path, rows: list[tuple[MedCourse, list[str]]]) -> dict[int, MedCourse]:
    """Write meds.csv (CRLF, like the HIS's export); return the course on each CSV line (header = 1)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(MEDS_COLUMNS)
    lines: dict[int, MedCourse] = {}
    for line, (course, row) in enumerate(rows, start=2):
        writer.writerow(row)
        lines[line] = course
    write_text(path, buffer.getvalue())
    return lines


# --- HL7 v2 pharmacy messages ---------------------------------------------------------------------

_PATTERN = {1: "QD", 2: "BID", 3: "TID", 4: "QID"}
_ROUTE = {
    "PO": "PO^Oral^HL70162",
    "Uống": "PO^Uống^HL70162",
    "SC": "SC^Subcutaneous^HL70162",
    "Tiêm dưới da": "SC^Tiêm dưới da^HL70162",
}
_ADMIN_TIMES = {
    1: (time(21, 0),),
    2: (time(6, 30), time(17, 30)),
    3: (time(6, 30), time(11, 0), time(17, 30)),
}


def _give_code(course: MedCourse) -> str:
    text = f"{escape(course.his_code)}^{escape(course.drug)}^99VH"
    if course.code_system == "ATC" and course.atc:
        return f"{text}^{course.atc}^{escape(ATC_DISPLAY.get(course.atc, ''))}^WC"
    if course.code_system == "RxNorm" and course.rxnorm:
        return f"{text}^{course.rxnorm}^^RXNORM"
    return text


def _pid(subject: DemoSubject) -> str:
    name = subject.name
    return (
        f"PID|1||{subject.mrn}^^^VANHANH^MR||{escape(name.family)}^{escape(name.given)}^{escape(name.middle)}"
        f"||{subject.birth_date:%Y%m%d}|{subject.sex}"
    )


@dataclass
class PharmacyOrder:
    course: MedCourse
    subject: DemoSubject
    placer: str
    entered_at: datetime


def pharmacy_messages(
    courses: list[MedCourse], subjects: dict[str, DemoSubject], clock: Clock, seed: int
) -> list[Message]:
    """One RDE^O11 per course (the order as the pharmacy encoded it) and, for insulin given on the
    ward during the infusion admission (Days 1-2 of the intervention arm), one RAS^O17 per course and day."""
    rng = random.Random(f"{seed}:pharmacy")
    orders = sorted(
        (
            PharmacyOrder(
                c,
                subjects[c.subject_id],
                "",
                datetime.combine(c.start, time(8)) + timedelta(minutes=rng.randint(0, 240)),
            )
            for c in courses
        ),
        key=lambda o: (o.entered_at, o.subject.subject_id, o.course.drug),
    )
    counters: dict[date, int] = {}
    for order in orders:
        day = order.entered_at.date()
        counters[day] = counters.get(day, 0) + 1
        order.placer = f"RX{day:%y%m%d}{counters[day]:04d}"
    drafts: list[tuple[datetime, str, list[str], MedCourse]] = []
    for order in orders:
        c, s = order.course, order.subject
        end = f"{c.end:%Y%m%d}" if c.end else ""
        segments = [
            _pid(s),
            f"ORC|NW|{order.placer}^HIS||||||||{clock.ts(order.entered_at)}",
            f"RXE||{_give_code(c)}|{_fmt(c.dose)}||{escape(c.unit)}|{'INJ' if c.insulin else 'TAB'}",
            f"TQ1|1||{_PATTERN.get(c.times_per_day, 'QD')}||||{c.start:%Y%m%d}|{end}",
            f"RXR|{_ROUTE.get(c.route, escape(c.route))}",
        ]
        drafts.append((order.entered_at, "RDE^O11^RDE_O11", segments, c))
        if c.insulin and s.intervention and s.infused_on:
            given = 0  # RXA-2 counts the order's administrations across days
            for day in (s.infused_on, s.infused_on + timedelta(days=1)):
                if not c.active_on(day):
                    continue
                rxa = []
                for at in _ADMIN_TIMES.get(c.times_per_day, (time(8),)):
                    given += 1
                    when = clock.ts(datetime.combine(day, at))
                    rxa.append(
                        f"RXA|0|{given}|{when}|{when}|{_give_code(c)}|{_fmt(c.dose)}|{escape(c.unit)}|INJ"
                        "||||||||||||CP"
                    )
                sent = datetime.combine(day, time(22)) + timedelta(minutes=rng.randint(0, 59))
                ras = [
                    _pid(s),
                    f"ORC|RE|{order.placer}^HIS",
                    *rxa,
                    f"RXR|{_ROUTE.get(c.route, escape(c.route))}",
                ]
                drafts.append((sent, "RAS^O17^RAS_O17", ras, c))
    drafts.sort(key=lambda d: (d[0], d[2][0], d[1]))
    messages: list[Message] = []
    counters = {}
    for sent, message_type, segments, course in drafts:
        day = sent.date()
        counters[day] = counters.get(day, 0) + 1
        control_id = f"HIS{day:%y%m%d}{counters[day]:05d}"
        header = msh(clock, HIS_APP, HIS_FACILITY, sent, message_type, control_id)
        message = Message(control_id, sent, [header, *segments], message_type[:7], course.subject_id)
        if course.fault:
            message.fault = {"kind": f"meds-{course.fault}"}
        messages.append(message)
    return messages


def write_pharmacy(out: Path, folder: str, messages: list[Message]) -> dict[str, str]:
    """One file per day of messages (as the HIS's interface engine drops them); control id -> file."""
    by_day: dict[date, list[Message]] = {}
    for message in messages:
        by_day.setdefault(message.sent_at.date(), []).append(message)
    where: dict[str, str] = {}
    (out / folder).mkdir(parents=True, exist_ok=True)
    for day, group in sorted(by_day.items()):
        name = f"{folder}/HIS_{day:%Y%m%d}.hl7"
        write_text(out / name, "".join(m.text("\r") for m in group), mkdir=False)
        where.update({m.control_id: name for m in group})
    return where
