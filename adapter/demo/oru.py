"""The laboratory system (LIS) of the site, simulated: lab draws -> HL7 v2 ORU^R01 messages and files.

Each visit's draw becomes three orders (fasting chemistry: glucose, insulin, C-peptide; HbA1c;
cytokines: TNF-alpha and IL-1beta, sent days later by the reference lab), with a unique filler order
number each (OBR-3). How a message is written varies like a real LIS over the years (`Style`): local codes
with system `99VH` or `L`, LOINC only, or local + LOINC in the alternate triplet; glucose in mg/dL, C-peptide
and insulin in pmol/L, HbA1c in IFCC mmol/mol; lower-case unit spellings; timestamps without offset;
names without diacritics (MSH-18 empty); HL7 2.3.1; `<` values as SN or NM; preliminary results later made
final; wrong finals corrected (OBX-11 C). Files hold one message, several, or an FHS/BHS batch, with
`\\r`, `\\n` or `\\r\\n` segment ends.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import cached_property, lru_cache
from pathlib import Path

from adapter.demo.facts import DemoSubject, LabDraw, LabValue
from adapter.demo.hl7text import Clock, Message, batch_text, escape, msh, write_text
from adapter.demo.names import PersonName, fold
from adapter.demo.params import QuirkShares
from adapter.study import StudyConfig

LIS_APP = "LIS"
LIS_FACILITY = "VANHANH_LAB"
LOCAL_SYSTEM = "99VH"

# The site lab dictionary (design.md): parameter -> (local code, the LIS's own label).
LOCAL_CODES: dict[str, tuple[str, str]] = {
    "GLUC": ("GLU-F", "Glucose lúc đói"),
    "INS": ("INS-F", "Insulin lúc đói"),
    "CPEP": ("CPEP", "C-Peptide lúc đói"),
    "HBA1C": ("HBA1C", "HbA1c"),
    "TNFA": ("TNFA", "TNF-alpha"),
    "IL1B": ("IL1B", "IL-1 beta"),
    # tests the hospital runs for everyone else (the feed's strangers)
    "GLU": ("GLU", "Glucose"),
    "CREA": ("CREA", "Creatinin"),
    "ALT": ("ALT", "ALT (GPT)"),
    "AST": ("AST", "AST (GOT)"),
    "CHOL": ("CHOL", "Cholesterol toàn phần"),
    "TG": ("TG", "Triglycerid"),
}


@dataclass(frozen=True)
class UnitSpec:
    """How one unit is written: factor from the standard unit, decimals, lower-case variant, range."""

    text: str
    ucum: str
    factor: float
    decimals: int
    lower: str
    reference: str
    offset: float = 0.0

    @cached_property
    def limits(self) -> tuple[float, float]:
        """(low, high) of the reference range, for the abnormal flag."""
        if self.reference.startswith("<"):
            return -math.inf, float(self.reference[1:])
        low, high = self.reference.split("-")
        return float(low), float(high)


UNITS: dict[str, dict[str, UnitSpec]] = {
    "GLUC": {
        "mmol/L": UnitSpec("mmol/L", "mmol/L", 1.0, 1, "mmol/l", "3.9-6.4"),
        "mg/dL": UnitSpec("mg/dL", "mg/dL", 18.016, 0, "mg/dl", "70-115"),
    },
    "INS": {
        "uIU/mL": UnitSpec("uIU/mL", "u[IU]/mL", 1.0, 1, "uIU/ml", "2.6-24.9"),
        "pmol/L": UnitSpec("pmol/L", "pmol/L", 6.0, 1, "pmol/l", "15.6-149.4"),
    },
    "CPEP": {
        "ng/mL": UnitSpec("ng/mL", "ng/mL", 1.0, 2, "ng/ml", "0.9-7.1"),
        "pmol/L": UnitSpec("pmol/L", "pmol/L", 331.0, 0, "pmol/l", "298-2350"),
    },
    "HBA1C": {
        "%": UnitSpec("%", "%", 1.0, 1, "%", "4.0-6.0"),
        "mmol/mol": UnitSpec("mmol/mol", "mmol/mol", 10.93, 0, "mmol/mol", "20-42", offset=-23.5),
    },
    "TNFA": {"pg/mL": UnitSpec("pg/mL", "pg/mL", 1.0, 1, "pg/ml", "<8.1")},
    "IL1B": {"pg/mL": UnitSpec("pg/mL", "pg/mL", 1.0, 2, "pg/ml", "<5.0")},
    "GLU": {"mmol/L": UnitSpec("mmol/L", "mmol/L", 1.0, 1, "mmol/l", "3.9-6.4")},
    "CREA": {"umol/L": UnitSpec("umol/L", "umol/L", 1.0, 0, "umol/l", "62-106")},
    "ALT": {"U/L": UnitSpec("U/L", "U/L", 1.0, 0, "U/L", "<41")},
    "AST": {"U/L": UnitSpec("U/L", "U/L", 1.0, 0, "U/L", "<37")},
    "CHOL": {"mmol/L": UnitSpec("mmol/L", "mmol/L", 1.0, 2, "mmol/l", "3.9-5.2")},
    "TG": {"mmol/L": UnitSpec("mmol/L", "mmol/L", 1.0, 2, "mmol/l", "0.46-1.88")},
}
STANDARD_UNIT = {param: next(iter(units)) for param, units in UNITS.items()}

# Orders: panel -> (local order code, label, parameters).
PANELS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "CHEM": ("HSF", "Hóa sinh máu lúc đói", ("GLUC", "INS", "CPEP")),
    "A1C": ("HBA1C", "HbA1c", ("HBA1C",)),
    "CYTO": ("CYTO", "Cytokine (TNF-alpha, IL-1 beta)", ("TNFA", "IL1B")),
    "BIO": ("HS", "Hóa sinh máu", ()),
}
NOTE = "Mẫu lấy lúc đói & ly tâm trong 30 phút"


@dataclass(frozen=True)
class Patient:
    """What the LIS knows of a patient (PID)."""

    mrn: str
    name: PersonName
    birth_date: date
    sex: str


@dataclass(frozen=True)
class Style:
    """How the LIS wrote one visit's messages (all messages of the visit share it, so a P and its F, or an
    F and its correction, carry the same identity: filler order, OBX-3 and OBX-4)."""

    version: str = "2.5.1"
    coding: str = "local"  # local | loinc | both
    local_system: str = LOCAL_SYSTEM
    units: tuple[tuple[str, str], ...] = ()  # (param, unit key) where not the standard unit
    lowercase: frozenset[str] = frozenset()
    with_offset: bool = True
    ascii: bool = False
    one_component_name: bool = False
    orc: bool = True
    pv1: bool = True
    censored_as_sn: bool = True

    def unit(self, param: str) -> UnitSpec:
        for name, key in self.units:
            if name == param:
                return UNITS[param][key]
        return UNITS[param][STANDARD_UNIT[param]]


@dataclass
class Obx:
    param: str
    value: LabValue
    status: str = "F"
    raw_value: str | None = None  # written as is (a deliberate fault or a wrong value)
    raw_unit: str | None = None


@dataclass
class Group:
    """One order (ORC/OBR) and its results."""

    panel: str
    filler: str
    placer: str
    collected: datetime
    result_at: datetime
    status: str
    obx: list[Obx]
    note: bool = False


@dataclass
class Spec:
    """A message to be written: who, when, how, which orders."""

    sent_at: datetime
    patient: Patient
    subject_id: str | None
    style: Style
    groups: list[Group]
    tags: list[str] = field(default_factory=list)
    partial: bool = False
    fault: dict[str, object] | None = None


def draw_style(rng: random.Random, quirks: QuirkShares) -> Style:
    units: list[tuple[str, str]] = []
    if rng.random() < quirks.glucose_mg_dl:
        units.append(("GLUC", "mg/dL"))
    if rng.random() < quirks.cpep_pmol_l:
        units.append(("CPEP", "pmol/L"))
    if rng.random() < quirks.hba1c_ifcc:
        units.append(("HBA1C", "mmol/mol"))
    if rng.random() < quirks.insulin_pmol_l:
        units.append(("INS", "pmol/L"))
    roll = rng.random()
    coding = (
        "loinc"
        if roll < quirks.loinc_only
        else "both"
        if roll < quirks.loinc_only + quirks.local_plus_loinc
        else "local"
    )
    lowercase = frozenset(
        p for p in ("GLUC", "INS", "CPEP", "TNFA", "IL1B") if rng.random() < quirks.lowercase_units
    )
    version = "2.3.1" if rng.random() < quirks.version_231 else "2.5.1"
    return Style(
        version=version,
        coding=coding,
        local_system="L" if rng.random() < quirks.local_system_l else LOCAL_SYSTEM,
        units=tuple(units),
        lowercase=lowercase,
        with_offset=rng.random() >= quirks.no_offset,
        ascii=rng.random() < quirks.ascii_names,
        one_component_name=rng.random() < quirks.name_in_one_component,
        orc=version != "2.3.1" and rng.random() < 0.7,
        pv1=rng.random() < 0.5,
        censored_as_sn=rng.random() < quirks.sn_censored,
    )


class Renderer:
    """Turns a Spec into a Message (segments), given the study's LOINC codes."""

    def __init__(self, study: StudyConfig, clock: Clock) -> None:
        self.clock = clock
        self._codes: dict[tuple[str, str, str, str, bool], str] = {}
        self.loinc: dict[tuple[str, str], tuple[str, str]] = {}
        for param in study.parameters:
            for code in param.loinc:
                self.loinc[(param.id, code.unit)] = (code.code, code.display)

    def _code(self, param: str, unit: UnitSpec, style: Style) -> str:
        key = (param, unit.ucum, style.coding, style.local_system, style.ascii)
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = self._make_code(param, unit, style)
        return code

    def _make_code(self, param: str, unit: UnitSpec, style: Style) -> str:
        local, label = LOCAL_CODES[param]
        label = fold(label) if style.ascii else label
        loinc = self.loinc.get((param, unit.ucum))
        local_part = f"{local}^{escape(label)}^{style.local_system}"
        if loinc is None or style.coding == "local":
            return local_part
        loinc_part = f"{loinc[0]}^{escape(loinc[1])}^LN"
        return loinc_part if style.coding == "loinc" else f"{local_part}^{loinc_part}"

    def _value(self, obx: Obx, unit: UnitSpec, style: Style) -> tuple[str, str, str]:
        """(value type, OBX-5, abnormal flag)."""
        if obx.raw_value is not None:
            return "NM", obx.raw_value, ""
        shown = round(obx.value.value * unit.factor + unit.offset, unit.decimals)
        text = f"{shown:.{unit.decimals}f}"
        if obx.value.comparator:
            text = f"{shown:g}"  # a detection limit is written as the lab states it: "<0.5"
            if style.censored_as_sn:
                return "SN", f"{obx.value.comparator}^{text}", ""
            return "NM", f"{obx.value.comparator}{text}", ""
        low, high = unit.limits
        return (
            "NM",
            text,
            "L"
            if shown < low
            else "H"
            if (shown >= high and unit.reference[0] == "<") or shown > high
            else "",
        )

    def render(self, spec: Spec, control_id: str) -> Message:
        style = spec.style
        ts = self.clock.ts
        off = style.with_offset
        name = spec.patient.name.folded() if style.ascii else spec.patient.name
        if style.one_component_name:
            xpn = escape(name.full)
        else:
            xpn = f"{escape(name.family)}^{escape(name.given)}^{escape(name.middle)}"
        msg_type = "ORU^R01" if style.version == "2.3.1" else "ORU^R01^ORU_R01"
        segments = [
            msh(
                self.clock,
                LIS_APP,
                LIS_FACILITY,
                spec.sent_at,
                msg_type,
                control_id,
                style.version,
                not style.ascii,
                off,
            ),
            f"PID|1||{spec.patient.mrn}^^^VANHANH^MR||{xpn}||{spec.patient.birth_date:%Y%m%d}|{spec.patient.sex}",
        ]
        if style.pv1:
            segments.append("PV1|1|O|KNT^^^VANHANH")
        obx4 = "" if style.version == "2.3.1" else "1"
        for index, group in enumerate(spec.groups, start=1):
            order_code, order_label, _ = PANELS[group.panel]
            label = escape(fold(order_label) if style.ascii else order_label)
            filler = f"{group.filler}^{LIS_FACILITY}"
            placer = f"{group.placer}^HIS"
            collected = ts(group.collected, off, seconds=False)
            if style.orc:
                segments.append(f"ORC|RE|{placer}|{filler}")
            segments.append(
                f"OBR|{index}|{placer}|{filler}|{order_code}^{label}^{style.local_system}|||{collected}"
                f"|||||||||||||||{ts(group.result_at, off)}|||{group.status}"
            )
            if group.note:
                note = fold(NOTE) if style.ascii else NOTE
                segments.append(f"NTE|1|L|{escape(note)}")
            for set_id, obx in enumerate(group.obx, start=1):
                unit = style.unit(obx.param)
                value_type, value, flag = self._value(obx, unit, style)
                unit_text = obx.raw_unit or (unit.lower if obx.param in style.lowercase else unit.text)
                code = self._code(obx.param, unit, style)
                segments.append(
                    f"OBX|{set_id}|{value_type}|{code}|{obx4}|{value}|{unit_text}"
                    f"|{unit.reference}|{flag}|||{obx.status}|||{collected}"
                )
        message = Message(control_id, spec.sent_at, segments, "ORU^R01", spec.subject_id, list(spec.tags))
        if spec.partial:
            last = segments[-1]
            cut = last.index("|", len("OBX|1|NM|")) if last.startswith("OBX") else len(last) // 2
            segments[-1] = last[: cut - 4]
            message.truncated = True
        return message


# --- from draws to message specs -------------------------------------------------------------------


@dataclass
class _Order:
    draw: LabDraw
    panel: str
    filler: str = ""
    placer: str = ""


@lru_cache(maxsize=4096)
def yymmdd(day: date) -> str:
    return f"{day:%y%m%d}"


def number_orders(orders: list[_Order], prefix: str = "", start: int = 1) -> None:
    """Filler and placer order numbers, unique and increasing by collection day: L<yymmdd><seq>."""
    counters: dict[date, int] = {}
    for order in sorted(orders, key=lambda o: (o.draw.collected_at, o.draw.subject_id, o.panel)):
        day = order.draw.collected_at.date()
        counters[day] = counters.get(day, start - 1) + 1
        number = f"{yymmdd(day)}{counters[day]:05d}"
        order.filler = f"L{prefix}{number}"
        order.placer = f"YC{prefix}{number}"


def _patient(subject: DemoSubject) -> Patient:
    return Patient(subject.mrn, subject.name, subject.birth_date, subject.sex)


def _group(order: _Order, result_at: datetime, status: str = "F", note: bool = False) -> Group:
    params = PANELS[order.panel][2]
    obx = [Obx(p, order.draw.values[p], status) for p in params if p in order.draw.values]
    return Group(
        order.panel, order.filler, order.placer, order.draw.collected_at, result_at, status, obx, note
    )


def _at(day: date, hour: int, rng: random.Random) -> datetime:
    return datetime.combine(day, time(hour)) + timedelta(minutes=rng.randint(0, 120))


def visit_specs(
    rng: random.Random, subject: DemoSubject, draw: LabDraw, orders: dict[str, _Order], quirks: QuirkShares
) -> list[Spec]:
    """The messages one visit's draw produces, with their quirks."""
    style = draw_style(rng, quirks)
    patient = _patient(subject)
    tags = _style_tags(style)
    specs: list[Spec] = []
    collected = draw.collected_at
    t_chem = collected + timedelta(minutes=rng.randint(120, 300))
    t_a1c = collected + timedelta(minutes=rng.randint(60, 240))
    chem = _group(orders["CHEM"], t_chem, note=rng.random() < quirks.nte)
    a1c = _group(orders["A1C"], t_a1c)
    corrected = rng.random() < quirks.corrected
    if corrected:
        # a decimal slip in the final result, corrected a day or three later
        wrong = replace(chem, obx=[replace(o) for o in chem.obx])
        target = wrong.obx[0] if rng.random() < 0.5 else wrong.obx[1]
        unit = style.unit(target.param)
        shown = round(target.value.value * unit.factor * 10 + unit.offset, unit.decimals)
        target.raw_value = f"{shown:.{unit.decimals}f}"
        fixed_at = _at(t_chem.date() + timedelta(days=rng.randint(1, 3)), 9, rng)
        fix = replace(chem, result_at=fixed_at, status="C", obx=[replace(o) for o in chem.obx])
        fix.obx[[o.param for o in chem.obx].index(target.param)].status = "C"
        chem = wrong
        specs.append(Spec(fixed_at, patient, subject.subject_id, style, [fix], [*tags, "corrected"]))
    if rng.random() < quirks.split_panels:
        specs.append(Spec(t_chem, patient, subject.subject_id, style, [chem], list(tags)))
        specs.append(Spec(t_a1c, patient, subject.subject_id, style, [a1c], list(tags)))
    else:
        specs.append(Spec(max(t_chem, t_a1c), patient, subject.subject_id, style, [chem, a1c], list(tags)))
    t_cyto = _at(collected.date() + timedelta(days=rng.randint(3, 10)), 14, rng)
    cyto = _group(orders["CYTO"], t_cyto)
    if rng.random() < quirks.preliminary:
        t_prelim = _at(collected.date() + timedelta(days=rng.randint(1, 2)), 10, rng)
        prelim = replace(cyto, result_at=t_prelim, status="P", obx=[])
        for obx in cyto.obx:
            value = obx.value
            if not value.comparator:
                value = LabValue(value.param, round(value.value * rng.uniform(0.93, 1.07), 2))
            prelim.obx.append(Obx(obx.param, value, "P"))
        specs.append(Spec(t_prelim, patient, subject.subject_id, style, [prelim], [*tags, "preliminary"]))
    specs.append(
        Spec(
            t_cyto,
            patient,
            subject.subject_id,
            style,
            [cyto],
            tags + (["censored"] if any(o.value.comparator for o in cyto.obx) else []),
        )
    )
    return specs


def _style_tags(style: Style) -> list[str]:
    tags = [f"unit:{p}:{u}" for p, u in style.units]
    if not style.with_offset:
        tags.append("no-offset")
    if style.ascii:
        tags.append("ascii-name")
    if style.coding != "local":
        tags.append(f"coding:{style.coding}")
    if style.version != "2.5.1":
        tags.append(f"version:{style.version}")
    return tags


def study_specs(
    subjects: list[DemoSubject], draws: list[LabDraw], quirks: QuirkShares, seed: int
) -> list[Spec]:
    """All ORU message specs of the study, in time order."""
    orders: dict[tuple[str, int], dict[str, _Order]] = {}
    flat: list[_Order] = []
    for index, draw in enumerate(draws):
        panels = {panel: _Order(draw, panel) for panel in ("CHEM", "A1C", "CYTO")}
        orders[(draw.subject_id, index)] = panels
        flat.extend(panels.values())
    number_orders(flat)
    by_id = {s.subject_id: s for s in subjects}
    specs: list[Spec] = []
    rngs: dict[str, random.Random] = {}
    for index, draw in enumerate(draws):
        rng = rngs.get(draw.subject_id)
        if rng is None:
            rng = rngs[draw.subject_id] = random.Random(f"{seed}:oru:{draw.subject_id}")
        specs.extend(visit_specs(rng, by_id[draw.subject_id], draw, orders[(draw.subject_id, index)], quirks))
    return sort_specs(specs)


def sort_specs(specs: Iterable[Spec]) -> list[Spec]:
    return sorted(
        specs, key=lambda s: (s.sent_at, s.subject_id or "", s.groups[0].filler, s.groups[0].status)
    )


def assign_ids(specs: list[Spec], renderer: Renderer, prefix: str = "LIS", start: int = 1) -> list[Message]:
    """Render in time order with control ids unique per run: <prefix><yymmdd><seq>."""
    counters: dict[date, int] = {}
    messages: list[Message] = []
    for spec in specs:
        day = spec.sent_at.date()
        counters[day] = counters.get(day, start - 1) + 1
        messages.append(renderer.render(spec, f"{prefix}{yymmdd(day)}{counters[day]:05d}"))
    return messages


# --- files --------------------------------------------------------------------------------------------


@dataclass
class WrittenFile:
    path: str  # relative to the output folder
    messages: list[str]  # control ids
    layout: str  # single | concatenated | batch
    eol: str


SINGLE_FILES_PER_DAY = 24  # beyond this, a busy day's "single" drop is exported hourly instead


def _day_groups(day: date, messages: list[Message], layout: str) -> list[tuple[str, list[Message], str]]:
    """(file name, messages, layout) for one day. A truncated message is always a file of its own: the
    transfer broke off, so nothing follows it in that file."""
    whole = [m for m in messages if not m.truncated]
    groups: list[tuple[str, list[Message], str]] = []
    if layout == "single" and len(whole) > SINGLE_FILES_PER_DAY:
        by_hour: dict[int, list[Message]] = {}
        for m in whole:
            by_hour.setdefault(m.sent_at.hour, []).append(m)
        groups.extend(
            (f"LIS_{day:%Y%m%d}_{h:02d}.hl7", ms, "concatenated") for h, ms in sorted(by_hour.items())
        )
    elif layout == "single" or not whole:
        groups.extend((f"ORU_{m.control_id}.hl7", [m], "single") for m in whole)
    elif layout == "batch":
        groups.append((f"LIS_{day:%Y%m%d}_batch.hl7", whole, "batch"))
    else:
        groups.append((f"LIS_{day:%Y%m%d}.hl7", whole, "concatenated"))
    groups.extend((f"ORU_{m.control_id}.hl7", [m], "single") for m in messages if m.truncated)
    return groups


def write_lab_files(
    out: Path, folder: str, messages: list[Message], clock: Clock, quirks: QuirkShares, seed: int
) -> list[WrittenFile]:
    """Group messages by day into files: single messages, concatenated days, or FHS/BHS batches."""
    rng = random.Random(f"{seed}:oru-files")
    by_day: dict[date, list[Message]] = {}
    for message in messages:
        by_day.setdefault(message.sent_at.date(), []).append(message)
    (out / folder).mkdir(parents=True, exist_ok=True)
    written: list[WrittenFile] = []
    batch, concat = quirks.batch_days, quirks.batch_days + quirks.concat_days
    lf, crlf = quirks.lf_files, quirks.lf_files + quirks.crlf_files
    for day in sorted(by_day):
        roll = rng.random()
        layout = "batch" if roll < batch else "concatenated" if roll < concat else "single"
        for name, group, kind in _day_groups(day, by_day[day], layout):
            roll = rng.random()
            eol = "\n" if roll < lf else "\r\n" if roll < crlf else "\r"
            if kind == "batch":
                text = batch_text(group, clock, LIS_APP, LIS_FACILITY, name, eol)
            else:
                text = "".join(m.text(eol) for m in group)
            write_text(out / folder / name, text, mkdir=False)
            written.append(WrittenFile(f"{folder}/{name}", [m.control_id for m in group], kind, eol))
    return written
