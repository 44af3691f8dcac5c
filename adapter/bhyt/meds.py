"""XML2 (CHI_TIET_THUOC) rows of one encounter -> MedicationStatements, through the medication builder.

XML2 is a billing table: a row is a quantity dispensed or used, inpatient stays have one row per drug
per day, and the order time NGAY_YL is moved to the previous working day on weekends (so NGAY_TH_YL, the
time the order was carried out, wins when present). Rows are therefore grouped per product (MA_THUOC +
HAM_LUONG, or the name when there is no code), sorted by time, and cut into runs: consecutive rows with the
same regimen (drug, dose, times per day, route) whose days touch or overlap become one statement with a
period, so an inpatient month is one statement, not thirty; a change of dose starts a new one.

Identity: facility + MA_LK + MA_THUOC (or folded name) + HAM_LUONG + the run's ordinal within its product.
Neither STT nor dates nor dose enter it: a re-exported or corrected file (new LIEU_DUNG, rewritten NGAY_YL,
renumbered rows) updates the same resources instead of adding new ones.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from adapter.bhyt.config import BhytConfig
from adapter.bhyt.container import Record
from adapter.bhyt.dosage import Dosage, parse_lieu_dung
from adapter.bhyt.times import TimeError, add_days, day_of, fhir_time, parse_local
from adapter.meds.dose import UCUM, Dose, DoseError, decimal_json, parse_unit
from adapter.meds.drugs import DrugMap, DrugMatch, DrugNotFound, fold
from adapter.meds.statement import MedicationFacts, medication_statement
from adapter.model import Resource
from adapter.study import StudyConfig

SOURCE_KIND = "bhyt-xml2"
_INSULIN_STRENGTH = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:ui|iu|u|don vi)\s*/\s*(\d+(?:[.,]\d+)?)?\s*ml\b")


@dataclass(slots=True)
class DrugRow:
    """The fields of one XML2 row the mapping needs (no money, no prescriber); strings are interned."""

    index: int
    stt: str
    ma_thuoc: str
    ten_thuoc: str
    ham_luong: str
    so_dang_ky: str
    don_vi_tinh: str
    duong_dung: str
    lieu_dung: str
    cach_dung: str
    so_luong: str
    ma_nhom: str
    ngay_yl: str
    ngay_th_yl: str

    @classmethod
    def from_record(cls, record: Record) -> DrugRow:
        get = record.get
        return cls(
            record.index,
            get("STT"),
            *(
                sys.intern(get(name))
                for name in (
                    "MA_THUOC",
                    "TEN_THUOC",
                    "HAM_LUONG",
                    "SO_DANG_KY",
                    "DON_VI_TINH",
                    "DUONG_DUNG",
                    "LIEU_DUNG",
                    "CACH_DUNG",
                )
            ),
            get("SO_LUONG"),
            get("MA_NHOM"),
            get("NGAY_YL"),
            get("NGAY_TH_YL"),
        )


@dataclass(frozen=True)
class Encounter:
    """What XML1 says about the encounter that matters here (no identifying field)."""

    subject_id: str
    facility: str
    ma_lk: str
    encounter_type: str
    built_on: date | None
    last_updated: str | None


@dataclass(slots=True)
class RowOutcome:
    """What happened to one row: `error` makes its HOSO rejected; `reason` explains an ignore or a note."""

    status: str = "mapped"
    reason: str | None = None
    error: str | None = None
    resources: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Product:
    """The descriptive fields of a row, shared by every row that repeats them (one row per day)."""

    ma_thuoc: str
    ten_thuoc: str
    ham_luong: str
    so_dang_ky: str
    don_vi_tinh: str
    duong_dung: str
    lieu_dung: str
    cach_dung: str


@dataclass(slots=True)
class _Placed:
    """One mapped row, reduced to what grouping and the statement need (shared parts are not copied)."""

    index: int
    stt: int
    when: date | datetime
    start: date
    end: date | None
    product: _Product
    dosage: Dosage
    match: DrugMatch
    signature: tuple[Any, ...]
    notes: tuple[str, ...]


class DrugTable:
    """The XML2 rows of one encounter, read one at a time and kept small until the encounter ends.

    Each row is resolved, dated and parsed as it arrives; what is kept per row is a few numbers and dates
    plus references to shared objects, so a stay with thousands of daily rows stays cheap.
    """

    def __init__(self, enc: Encounter, study: StudyConfig, cfg: BhytConfig, drugs: DrugMap) -> None:
        self.enc, self.study, self.cfg, self.drugs = enc, study, cfg, drugs
        self.outcomes: dict[int, RowOutcome] = {}  # rows not mapped, or mapped with a remark
        self.groups: dict[tuple[str, str], list[_Placed]] = {}
        self._resolved: dict[tuple[str, str, str], DrugMatch | None] = {}
        self._shared: dict[Any, Any] = {}
        self.rows = 0

    def _share(self, value: Any) -> Any:
        return self._shared.setdefault(value, value)

    def add(self, row: DrugRow) -> None:
        self.rows += 1
        outcome = RowOutcome()
        placed = self._place(row, outcome)
        if outcome.status != "mapped" or outcome.reason:
            self.outcomes[row.index] = outcome
        if placed is not None:
            self.groups.setdefault(_product_key(row), []).append(placed)

    def _place(self, row: DrugRow, outcome: RowOutcome) -> _Placed | None:
        """Resolve, date and read one row; None (with the outcome filled in) when it is not mapped."""
        cfg = self.cfg
        if cfg.ignored_drug(row.ma_thuoc) or (
            row.ma_nhom.isdigit() and int(row.ma_nhom) in cfg.ignore_cost_groups
        ):
            outcome.status, outcome.reason = "ignored", "not a medicine for the study (MA_THUOC or MA_NHOM)"
            return None
        key = (row.ma_thuoc, row.ten_thuoc, row.ham_luong)
        if key not in self._resolved:
            self._resolved[key] = _resolve(row, cfg, self.drugs)
        match = self._resolved[key]
        if match is None:
            outcome.status, outcome.reason = "ignored", "drug not in drugs.yaml (unknown_drugs: ignore)"
            return None
        raw, name = (row.ngay_th_yl, "NGAY_TH_YL") if row.ngay_th_yl.strip() else (row.ngay_yl, "NGAY_YL")
        if not raw.strip():
            outcome.status, outcome.error = "ignored", "NGAY_YL: empty"
            return None
        try:
            when = parse_local(raw, self.study.tz)
        except TimeError as exc:
            outcome.status, outcome.error = "ignored", f"{name}: {exc}"
            return None
        dosage = _parse(row.lieu_dung)
        start = day_of(when)
        notes: tuple[str, ...] = ()
        days = dosage.days
        if days is None and self.enc.encounter_type.strip() in cfg.daily_rows_encounter_types:
            days = 1
        if days is None:
            days = _days_from_quantity(row, dosage)
            if days is not None:
                notes = ("period end from the quantity dispensed (SO_LUONG) and the daily dose",)
        reasons = [*dosage.issues, *notes]
        if match.entry is None:
            reasons.append("drug not in drugs.yaml: kept with its MA_THUOC code")
        if reasons:
            outcome.reason = "; ".join(reasons)
        product = self._share(
            _Product(
                row.ma_thuoc,
                row.ten_thuoc,
                row.ham_luong,
                row.so_dang_ky,
                row.don_vi_tinh,
                row.duong_dung,
                row.lieu_dung,
                row.cach_dung,
            )
        )
        signature = self._share(
            (
                match.key,
                dosage.dose,
                dosage.unit,
                dosage.times,
                dosage.period_unit,
                dosage.portions,
                dosage.daily_total,
                row.duong_dung.strip(),
                row.don_vi_tinh.strip(),
            )
        )
        end = add_days(start, days - 1) if days else None
        stt = int(row.stt) if row.stt.isdigit() else 0
        return _Placed(row.index, stt, when, start, end, product, dosage, match, signature, notes)

    def finish(self) -> tuple[list[Resource], dict[int, RowOutcome]]:
        """Statements for the encounter, and the outcome of every row (by row index)."""
        outcomes = self.outcomes
        resources: list[Resource] = []
        for key, placed in sorted(self.groups.items()):
            placed.sort(key=lambda p: (p.start, p.stt, p.index))
            for ordinal, run in enumerate(_runs(placed), 1):
                resource = _statement(run, ordinal, key, self.enc, self.study, self.cfg, self.drugs)
                resources.append(resource)
                ref = f"MedicationStatement/{resource['id']}"
                plain = RowOutcome(resources=[ref])  # one object for all the run's unremarkable rows
                for item in run:
                    outcome = outcomes.get(item.index)
                    if outcome is None:
                        outcomes[item.index] = plain
                    else:
                        outcome.resources.append(ref)
        return resources, outcomes


def map_drug_rows(
    rows: list[DrugRow], enc: Encounter, study: StudyConfig, cfg: BhytConfig, drugs: DrugMap
) -> tuple[list[Resource], dict[int, RowOutcome]]:
    """Statements for the XML2 rows of one encounter, and the outcome of every row (by row index)."""
    table = DrugTable(enc, study, cfg, drugs)
    for row in rows:
        table.add(row)
    return table.finish()


def _product_key(row: DrugRow) -> tuple[str, str]:
    product = row.ma_thuoc.strip() or "name:" + fold(row.ten_thuoc)
    return product, fold(row.ham_luong).replace(" ", "")


@lru_cache(maxsize=4096)
def _parse(text: str) -> Dosage:
    """LIEU_DUNG texts repeat (one row per day): each distinct text is read once."""
    return parse_lieu_dung(text)


def _resolve(row: DrugRow, cfg: BhytConfig, drugs: DrugMap) -> DrugMatch | None:
    """MA_THUOC first; the name and strength when the code does not decide (insulins share codes)."""
    if row.ma_thuoc.strip():
        try:
            return drugs.by_code(row.ma_thuoc, "vn")
        except DrugNotFound:
            pass
    try:
        return drugs.by_name(row.ten_thuoc, row.ham_luong)
    except DrugNotFound:
        pass
    if cfg.unknown_drugs == "ignore":
        return None
    code = row.ma_thuoc.strip() or None
    return DrugMatch(None, cfg.systems.drug_code if code else None, code)


def _days_from_quantity(row: DrugRow, dosage: Dosage) -> int | None:
    """Days covered by the quantity dispensed (SO_LUONG / amount per day), when the units line up.

    The dose is in the row's dispensing unit (`viên` and `viên`), or in IU for an insulin dispensed in pens
    or vials whose HAM_LUONG gives the content (`100UI/ml x 3ml` = 300 IU a pen, `400UI/10ml` = 400 IU).
    """
    daily = dosage.daily_amount or dosage.daily_total
    if not daily or daily <= 0:
        return None
    try:
        quantity = Decimal(row.so_luong.strip().replace(",", "."))
    except ArithmeticError:
        return None
    if quantity <= 0:
        return None
    unit = dosage.unit or dosage.total_unit
    if unit is not None and fold(unit) != fold(row.don_vi_tinh):
        per_unit = _iu_per_container(row.ham_luong) if fold(unit) in _IU_WORDS else None
        if per_unit is None:
            return None
        quantity *= per_unit
    return max(1, math.ceil(quantity / daily))


_IU_WORDS = {"ui", "iu", "u", "don vi", "dv"}
_VOLUME = re.compile(r"[x*×]\s*(\d+(?:[.,]\d+)?)\s*ml\b")


def _iu_per_container(strength: str) -> Decimal | None:
    """IU in one pen or vial from HAM_LUONG; None when the text does not say."""
    folded = fold(strength)
    found = _INSULIN_STRENGTH.search(folded)
    if not found:
        return None
    amount = Decimal(found.group(1).replace(",", "."))
    per = Decimal((found.group(2) or "1").replace(",", "."))
    volume = _VOLUME.search(folded)
    if volume:
        return amount / per * Decimal(volume.group(1).replace(",", "."))
    return amount if per > 1 else None


def _runs(placed: list[_Placed]) -> list[list[_Placed]]:
    """Consecutive rows with one regimen whose days touch or overlap form one run (rows sorted by start)."""
    runs: list[list[_Placed]] = []
    last_day = date.min
    for item in placed:
        if runs and item.signature == runs[-1][0].signature and item.start <= add_days(last_day, 1):
            runs[-1].append(item)
            last_day = max(last_day, item.end or item.start)
            continue
        runs.append([item])
        last_day = item.end or item.start
    return runs


def _statement(
    run: list[_Placed],
    ordinal: int,
    key: tuple[str, str],
    enc: Encounter,
    study: StudyConfig,
    cfg: BhytConfig,
    drugs: DrugMap,
) -> Resource:
    first = run[0]
    row, dosage, match = first.product, first.dosage, first.match
    insulin = drugs.is_insulin(match)
    notes = [*dosage.issues, *run[-1].notes]
    dose, unit_note = _dose(dosage, row, insulin, cfg)
    if unit_note:
        notes.append(unit_note)
    # the run ends where its last row's days end; unknown when that row does not say
    end = None if run[-1].end is None else max(p.end for p in run if p.end)
    route = cfg.route(row.duong_dung) if row.duong_dung.strip() else None
    route_text = _route_text(route, row.duong_dung, drugs)
    facts = MedicationFacts(
        subject_id=enc.subject_id,
        drug=match,
        original_name=_display_name(row),
        identity=("bhyt", enc.facility, enc.ma_lk, key[0], key[1], str(ordinal)),
        dose=dose if dosage.period_unit == "d" and not dosage.varies else None,
        times_per_day=dosage.times if dosage.period_unit == "d" else None,
        route_text=route_text,
        start=fhir_time(first.when),
        end=end.isoformat() if end else None,
        text=row.lieu_dung.strip() or None,
        status=_status(end, enc.built_on),
        last_updated=enc.last_updated,
        source_kind=SOURCE_KIND,
        note=notes,
    )
    resource = medication_statement(facts, study, drugs)
    _add_codings(resource, row, match, cfg)
    resource["dosage"] = [_dosage(resource.get("dosage", [{}])[0], dosage, dose, route, row, cfg)]
    if dosage.varies and dose is not None:
        resource["dosage"] = _portions(resource["dosage"][0], dosage, dose)
    return resource


def _display_name(row: _Product) -> str:
    """TEN_THUOC with HAM_LUONG appended when the name does not already carry the strength."""
    name, strength = row.ten_thuoc.strip(), row.ham_luong.strip()
    if strength and fold(strength).replace(" ", "") not in fold(name).replace(" ", ""):
        return f"{name} {strength}".strip()
    return name or row.ma_thuoc.strip()


def _status(end: date | None, built_on: date | None) -> str | None:
    if end is None or built_on is None:
        return None
    return "completed" if end < built_on else "active"


def _dose(dosage: Dosage, row: _Product, insulin: bool, cfg: BhytConfig) -> tuple[Dose | None, str | None]:
    """The dose per administration in UCUM; insulin must end up in IU (mL converted at the strength)."""
    amount = (
        dosage.dose if dosage.dose is not None else (dosage.portions[0].dose if dosage.portions else None)
    )
    if amount is None:
        return None, None
    unit_text = dosage.unit or row.don_vi_tinh
    code, human = _unit(unit_text, cfg)
    if code is None:
        return None, "dose unit not known (see mappings/bhyt.yaml dose_units)"
    if insulin and code == "mL":
        strength = _INSULIN_STRENGTH.search(fold(row.ham_luong))
        if strength:
            amount_iu = Decimal(strength.group(1).replace(",", "."))
            per_ml = amount_iu / Decimal((strength.group(2) or "1").replace(",", "."))
            note = "insulin dose converted from mL at the product strength"
            return Dose(amount * per_ml, "[IU]", "IU"), note
    if insulin and code != "[IU]":
        return None, "insulin dose not written in units (IU): dose left out"
    return Dose(amount, code, human), None


def _unit(text: str, cfg: BhytConfig) -> tuple[str | None, str]:
    folded = fold(text)
    known = cfg.dose_unit(folded)
    if known is not None:
        return known.code, known.unit
    try:
        return parse_unit(text)
    except DoseError:
        return None, text


def _route_text(route: Any, code: str, drugs: DrugMap) -> str | None:
    if route is None:
        return code.strip() or None
    if route.route:
        entry = next((r for r in drugs.data.routes if r.id == route.route), None)
        if entry is not None:
            return entry.display
    return route.name


def _add_codings(resource: Resource, row: _Product, match: DrugMatch, cfg: BhytConfig) -> None:
    """MA_THUOC and SO_DANG_KY kept as codings of the medication (national codes next to ATC/RxNorm)."""
    concept = resource["medicationCodeableConcept"]
    codings = concept.setdefault("coding", [])
    existing = {(c["system"], c["code"]) for c in codings}
    extra = []
    if row.ma_thuoc.strip():
        extra.append({"system": cfg.systems.drug_code, "code": row.ma_thuoc.strip()})
    if row.so_dang_ky.strip():
        extra.append(
            {
                "system": cfg.systems.registration,
                "code": row.so_dang_ky.strip(),
                "display": _display_name(row),
            }
        )
    codings.extend(c for c in extra if (c["system"], c["code"]) not in existing)


def _dosage(
    built: dict[str, Any], dosage: Dosage, dose: Dose | None, route: Any, row: _Product, cfg: BhytConfig
) -> dict[str, Any]:
    """The builder's Dosage, completed: instructions, times of day, weekly timing, route codings, totals."""
    out: dict[str, Any] = {}
    if built.get("text"):
        out["text"] = built["text"]
    if row.cach_dung.strip():
        out["patientInstruction"] = row.cach_dung.strip()
    timing = dict(built.get("timing", {}).get("repeat", {}))
    if dosage.period_unit == "wk" and dosage.times:
        timing = {"frequency": dosage.times, "period": 1, "periodUnit": "wk"}
    if dosage.portions and not dosage.varies:
        timing["when"] = [p.when for p in dosage.portions]
    if timing:
        out["timing"] = {"repeat": timing}
    route_concept = dict(built.get("route", {}))
    if route is not None or row.duong_dung.strip():
        codings = [{"system": cfg.systems.route, "code": row.duong_dung.strip()}]
        if route is not None:
            codings[0]["display"] = route.name
            if route.snomed is not None:
                codings.append(
                    {
                        "system": "http://snomed.info/sct",
                        "code": route.snomed.code,
                        "display": route.snomed.display,
                    }
                )
        route_concept = {"coding": codings, **route_concept}
    if route_concept:
        out["route"] = route_concept
    if "doseAndRate" in built:
        out["doseAndRate"] = built["doseAndRate"]
    elif dose is not None and dosage.period_unit == "wk" and not dosage.varies:
        out["doseAndRate"] = [{"doseQuantity": dose.as_quantity()}]
    elif dosage.dose is None and not dosage.portions and dosage.daily_total is not None:
        total = _total_rate(dosage, row, cfg)
        if total is not None:
            out["doseAndRate"] = [{"rateRatio": total}]
    return out


def _total_rate(dosage: Dosage, row: _Product, cfg: BhytConfig) -> dict[str, Any] | None:
    """A daily total without dose or frequency (`4 viên/ngày`): amount per day as a rate."""
    assert dosage.daily_total is not None
    code, human = _unit(dosage.total_unit or row.don_vi_tinh, cfg)
    if code is None:
        return None
    return {
        "numerator": {"value": decimal_json(dosage.daily_total), "unit": human, "system": UCUM, "code": code},
        "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"},
    }


def _portions(base: dict[str, Any], dosage: Dosage, dose: Dose) -> list[dict[str, Any]]:
    """A dose that varies over the day: one Dosage per distinct dose, each with its times of day.

    Summing dose x frequency over the Dosage entries gives the daily amount (`Sáng 10 UI, Tối 8 UI` is
    10 IU once in the morning plus 8 IU once in the evening).
    """
    by_dose: dict[Decimal, list[str]] = {}
    for portion in dosage.portions:
        by_dose.setdefault(portion.dose, []).append(portion.when)
    scale = dose.value / dosage.portions[0].dose  # 1, or the mL -> IU factor
    entries = []
    for sequence, (amount, whens) in enumerate(by_dose.items(), 1):
        entry: dict[str, Any] = {"sequence": sequence}
        if sequence == 1:
            entry.update({k: base[k] for k in ("text", "patientInstruction") if k in base})
        entry["timing"] = {"repeat": {"frequency": len(whens), "period": 1, "periodUnit": "d", "when": whens}}
        if "route" in base:
            entry["route"] = base["route"]
        quantity = Dose(amount * scale, dose.unit_code, dose.unit).as_quantity()
        entry["doseAndRate"] = [{"doseQuantity": quantity}]
        entries.append(entry)
    return entries
