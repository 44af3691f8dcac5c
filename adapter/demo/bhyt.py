"""The synthetic trial's medications and labs as the HIS's BHYT claim export (GIAMDINHHS XML, QĐ 130/4750).

A writer over `TrialFacts` (see adapter/demo/generate.py `WRITERS`): `write_bhyt(facts, out, ctx)` writes
`out/bhyt/BHYT_<yyyymm>.xml`, one file per month of encounters, and returns its manifest section.

What a Vietnamese HIS would have sent for the same story the other formats tell:
- every 30 days from a course's start, an outpatient refill encounter (MA_LOAI_KCB 05) dispensing each
  running course for up to 30 days: XML2 rows with the active-ingredient code from drugs.yaml (`vn_codes`,
  empty where the map has none: the importer then goes by name), the dose in tablets (mg / strength) or
  insulin units, LIEU_DUNG in the official `x/lần * n lần/ngày * d ngày [t/ngày]` form or, for a share of
  oral rows, the times-of-day form (days then follow from SO_LUONG); weekend refills carry NGAY_YL moved
  back to Friday and the real NGAY_TH_YL;
- every lab draw as XML4 rows in the encounter of its day: glucose and HbA1c under their national service
  codes, C-peptide, insulin, TNF-alpha and IL-1 beta under the hospital's own codes, a share of values with
  a decimal comma, below-limit values as `<x`;
- in each file, a few encounters of patients who are not in the study (they must be dropped).
Only encounters from 60 days before enrollment to the end of follow-up are written (refill history
before that would only make the files longer). Deterministic for a seed, like every demo output.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from adapter.bhyt.writer import Table, write_envelope
from adapter.demo.cohort import draw_mrns
from adapter.demo.facts import DemoSubject, LabDraw, MedCourse, TrialFacts
from adapter.demo.names import draw_name
from adapter.meds.drugs import DrugMap, DrugNotFound, load_drug_map
from adapter.study import default_mappings_dir

FOLDER = "bhyt"
FACILITY = "79999"  # a 5-character facility code that no real facility uses in the synthetic data
REFILL_DAYS = 30
HISTORY_DAYS = 60
STRANGERS_PER_FILE = 2
COMMA_SHARE = 0.3  # results written with a decimal comma
PERIOD_FORM_SHARE = 0.3  # LIEU_DUNG written as `Sáng: 1 Viên, tối: 1 Viên [...]`

# study parameter -> (MA_DICH_VU, TEN_CHI_SO, DON_VI_DO): national codes where public (vn-bhyt-xml.md §5),
# the hospital's own elsewhere
LAB_ROWS = {
    "GLUC": ("23.0075.1494", "Glucose", "mmol/L"),
    "HBA1C": ("23.0083.1523", "HbA1c", "%"),
    "CPEP": ("VH.CPEP", "C-Peptide", "ng/mL"),
    "INS": ("VH.INS", "Insulin", "µU/mL"),
    "TNFA": ("VH.TNFA", "TNF-α", "pg/mL"),
    "IL1B": ("VH.IL1B", "IL-1β", "pg/mL"),
}
_STRENGTH = re.compile(r"(\d+(?:[.,]\d+)?)\s*mg", re.IGNORECASE)
_PERIODS = {
    1: ("Sáng",),
    2: ("Sáng", "tối"),
    3: ("Sáng", "trưa", "chiều"),
    4: ("Sáng", "trưa", "chiều", "tối"),
}


@dataclass
class _Encounter:
    """One visit of an enrolled subject: the refills dispensed and the draws taken that day."""

    subject: DemoSubject
    day: date
    refills: list[tuple[MedCourse, int]] = field(default_factory=list)  # (course, days covered)
    draws: list[LabDraw] = field(default_factory=list)
    ma_lk: str = ""


def _num(value: float, comma: bool = False) -> str:
    text = f"{value:g}"
    return text.replace(".", ",") if comma else text


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M")


def _working_day(day: date) -> date:
    """NGAY_YL's billing rule: an order on a weekend is dated the previous working day."""
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _window(subject: DemoSubject, facts: TrialFacts) -> tuple[date, date]:
    last_day = max(v.window[1] for v in facts.study.visits)
    if subject.dropout_day is not None:
        last_day = min(last_day, subject.dropout_day)
    return subject.enrolled_on - timedelta(days=HISTORY_DAYS), subject.date_of(last_day)


def _refills(course: MedCourse, start: date, end: date) -> list[tuple[date, int]]:
    """(dispensing day, days covered) of the refills of a course that fall in [start, end]."""
    last = min(course.end, end) if course.end else end
    out = []
    day = course.start
    while day <= last:
        covered = min(REFILL_DAYS, (last - day).days + 1)
        if day + timedelta(days=covered - 1) >= start:
            out.append((day, covered))
        day += timedelta(days=REFILL_DAYS)
    return out


class _DrugRows:
    """XML2 rows for one course's refills, in the HIS's terms (tablets, units, pens)."""

    def __init__(self, drugs: DrugMap, rng: random.Random) -> None:
        self.drugs = drugs
        self.rng = rng

    def ma_thuoc(self, name: str) -> str:
        try:
            entry = self.drugs.by_name(name).entry
        except DrugNotFound:
            return ""
        return entry.vn_codes[0] if entry is not None and entry.vn_codes else ""

    def row(self, course: MedCourse, ma_lk: str, stt: int, day: date, days: int) -> dict[str, str]:
        if course.insulin:
            amount, unit, dvt, strength, route = course.dose, "UI", "Bút", "100UI/ml x 3ml", "2.02"
            quantity = math.ceil(course.daily_dose * days / 300)
        elif course.unit.lower() == "mg" and (found := _STRENGTH.search(course.drug)):
            per_tablet = float(found.group(1).replace(",", "."))
            amount, unit, dvt, strength, route = (
                course.dose / per_tablet,
                "Viên",
                "Viên",
                found.group(0),
                "1.01",
            )
            quantity = math.ceil(amount * course.times_per_day * days)
        else:
            amount, unit, dvt, strength, route = course.dose, course.unit, "Viên", "", "1.01"
            quantity = math.ceil(amount * course.times_per_day * days)
        daily = amount * course.times_per_day
        # The times-of-day form states no days: the importer then counts them from SO_LUONG, which is
        # exact in tablets but rounds up in whole pens, so insulin always gets the official form.
        if not course.insulin and course.times_per_day in _PERIODS and self.rng.random() < PERIOD_FORM_SHARE:
            parts = ", ".join(f"{p}: {_num(amount)} {unit}" for p in _PERIODS[course.times_per_day])
            dose_text = f"{parts} [{_num(daily)} {unit}/ ngày]"
        else:
            per_time = f"{_num(amount)} {unit}/lần * {course.times_per_day} lần/ngày * {days} ngày"
            dose_text = f"{per_time} [{_num(daily)} {unit}/ngày]"
        ordered = datetime.combine(_working_day(day), time(9, 0))
        done = datetime.combine(day, time(9, 30))
        return {
            "MA_LK": ma_lk,
            "STT": str(stt),
            "MA_THUOC": self.ma_thuoc(course.drug),
            "MA_NHOM": "4",
            "TEN_THUOC": course.drug,
            "DON_VI_TINH": dvt,
            "HAM_LUONG": strength,
            "DUONG_DUNG": route,
            "LIEU_DUNG": dose_text,
            "CACH_DUNG": "Tiêm dưới da" if course.insulin else "Sau ăn",
            "SO_DANG_KY": "",
            "PHAM_VI": "1",
            "SO_LUONG": str(quantity),
            "DON_GIA": "0",
            "THANH_TIEN_BV": "0",
            "MA_KHOA": "K01",
            "NGAY_YL": _stamp(ordered),
            "NGAY_TH_YL": _stamp(done),
        }


def _lab_rows(draw: LabDraw, ma_lk: str, rng: random.Random) -> list[dict[str, str]]:
    rows = []
    result_time = draw.collected_at + timedelta(hours=2)
    for param, value in sorted(draw.values.items()):
        if param not in LAB_ROWS:
            continue
        service, name, unit = LAB_ROWS[param]
        text = f"{value.comparator}{_num(round(value.value, 2), comma=rng.random() < COMMA_SHARE)}"
        rows.append(
            {
                "MA_LK": ma_lk,
                "STT": str(len(rows) + 1),
                "MA_DICH_VU": service,
                "MA_CHI_SO": "",
                "TEN_CHI_SO": name,
                "GIA_TRI": text,
                "DON_VI_DO": unit,
                "MO_TA": "",
                "KET_LUAN": "",
                "NGAY_KQ": _stamp(result_time),
            }
        )
    return rows


def _xml1(subject: DemoSubject, name: str, ma_lk: str, day: date, stt: int) -> dict[str, str]:
    return {
        "MA_LK": ma_lk,
        "STT": str(stt),
        "MA_BN": subject.mrn,
        "HO_TEN": name,
        "NGAY_SINH": subject.birth_date.strftime("%Y%m%d") + "0000",
        "GIOI_TINH": "1" if subject.sex == "M" else "2",
        "MA_BENH_CHINH": "E11.9",
        "NGAY_VAO": _stamp(datetime.combine(day, time(7, 30))),
        "NGAY_RA": _stamp(datetime.combine(day, time(11, 0))),
        "MA_LOAI_KCB": "05",
        "MA_CSKCB": FACILITY,
    }


def _encounters(facts: TrialFacts) -> list[_Encounter]:
    """Every enrolled subject's refill and lab encounters in the export window, in time order, keyed."""
    by_key: dict[tuple[str, date], _Encounter] = {}

    def encounter(subject: DemoSubject, day: date) -> _Encounter:
        return by_key.setdefault((subject.subject_id, day), _Encounter(subject, day))

    for course in sorted(facts.meds, key=lambda c: (c.subject_id, c.start, c.drug)):
        subject = facts.by_id[course.subject_id]
        start, end = _window(subject, facts)
        for day, days in _refills(course, start, end):
            encounter(subject, day).refills.append((course, days))
    for draw in sorted(facts.labs, key=lambda d: (d.subject_id, d.collected_at)):
        encounter(facts.by_id[draw.subject_id], draw.collected_at.date()).draws.append(draw)
    ordered = sorted(by_key.values(), key=lambda e: (e.day, e.subject.subject_id))
    for number, enc in enumerate(ordered, 1):
        enc.ma_lk = f"{FACILITY}.{enc.day:%y%m%d}.{number:05d}"
    return ordered


def _tables(enc: _Encounter, name: str, stt: int, rows: _DrugRows, rng: random.Random) -> list[Table]:
    tables = [Table("XML1", [_xml1(enc.subject, name, enc.ma_lk, enc.day, stt)])]
    drugs = [rows.row(course, enc.ma_lk, n, enc.day, days) for n, (course, days) in enumerate(enc.refills, 1)]
    labs = [row for draw in enc.draws for row in _lab_rows(draw, enc.ma_lk, rng)]
    for n, row in enumerate(labs, 1):
        row["STT"] = str(n)
    if drugs:
        tables.append(Table("XML2", drugs))
    if labs:
        tables.append(Table("XML4", labs))
    return tables


def _strangers(month: date, count: int, rng: random.Random, known: set[str]) -> list[list[Table]]:
    """Encounters of patients who are not in the study, with their own names and MRNs."""
    out = []
    mrns = [m for m in draw_mrns(rng, count + len(known)) if m not in known][:count]
    for n, mrn in enumerate(mrns, 1):
        sex = rng.choice("MF")
        day = month + timedelta(days=rng.randint(0, 27))
        ma_lk = f"{FACILITY}.{day:%y%m%d}.9{n:04d}"
        stranger = DemoSubject(
            subject_id="",
            mrn=mrn,
            arm="",
            intervention=False,
            enrolled_on=day,
            infused_on=None,
            sex=sex,
            birth_date=date(1955 + rng.randint(0, 40), rng.randint(1, 12), rng.randint(1, 28)),
            weight_kg=60.0,
            name=draw_name(rng, sex),
            day1=day,
        )
        xml1 = _xml1(stranger, stranger.name.full, ma_lk, day, n)
        result = {
            "MA_LK": ma_lk,
            "STT": "1",
            "MA_DICH_VU": "23.0075.1494",
            "MA_CHI_SO": "",
            "TEN_CHI_SO": "Glucose",
            "GIA_TRI": _num(round(rng.uniform(4.5, 15.0), 1), comma=True),
            "DON_VI_DO": "mmol/L",
            "NGAY_KQ": _stamp(datetime.combine(day, time(9, 30))),
        }
        out.append([Table("XML1", [xml1]), Table("XML4", [result])])
    return out


def write_bhyt(facts: TrialFacts, out: Path, ctx: Any = None) -> dict[str, Any]:
    """Write out/bhyt/BHYT_<yyyymm>.xml; return the manifest section (counts only)."""
    rng = random.Random(f"{facts.seed}:bhyt")
    rows = _DrugRows(load_drug_map(default_mappings_dir()), rng)
    by_month: dict[date, list[_Encounter]] = defaultdict(list)
    for enc in _encounters(facts):
        by_month[enc.day.replace(day=1)].append(enc)
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    known = {s.mrn for s in facts.subjects}
    stats = {"files": 0, "encounters": 0, "stranger_encounters": 0, "drug_rows": 0, "lab_rows": 0}
    for month, encounters in sorted(by_month.items()):
        hosos = [_tables(enc, enc.subject.name.full, stt, rows, rng) for stt, enc in enumerate(encounters, 1)]
        for tables in hosos:
            stats["drug_rows"] += sum(len(t.records) for t in tables if t.kind == "XML2")  # type: ignore[arg-type]
            stats["lab_rows"] += sum(len(t.records) for t in tables if t.kind == "XML4")  # type: ignore[arg-type]
        strangers = _strangers(month, STRANGERS_PER_FILE, rng, known)
        hosos[1:1] = strangers  # not at the end: the importer must read past them
        next_month = (month + timedelta(days=32)).replace(day=1)
        with (folder / f"BHYT_{month:%Y%m}.xml").open("wb") as handle:
            write_envelope(handle, hosos, facility=FACILITY, built_on=f"{next_month:%Y%m%d}")
        stats["files"] += 1
        stats["encounters"] += len(encounters)
        stats["stranger_encounters"] += len(strangers)
    return {**stats, "folder": FOLDER, "format": "QĐ 130/4750 (GIAMDINHHS)"}
