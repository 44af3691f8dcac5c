"""XML4 (CHI_TIET_CLS) rows of one encounter -> Observations, for study parameters only.

An indicator is recognised (in this order) by its service code MA_DICH_VU in `mappings/lab-codes.yaml`
(`bhyt:`, single-indicator services such as glucose 23.0075.1494 and HbA1c 23.0083.1523), then by the rules
of `mappings/bhyt.yaml` (`labs:`: service code, TEN_CHI_SO pattern, unit). The unit DON_VI_DO goes through
units.yaml like an OBX-6, and the LOINC code is the study parameter's code whose property fits it (the
HL7 importer's lab dictionary does all three). GIA_TRI is read like an OBX value (comparators, `065.88`),
plus the decimal comma Vietnamese labs write (`6,5`); the lab's text is kept when it differs. NGAY_KQ, the
result time in the site's timezone, is the observation time: XML4 has no collection time.

Identity: facility + MA_LK + study parameter + the row's occurrence among that encounter's rows for the
parameter, ordered by NGAY_KQ then STT. A re-export with corrected values, units or times updates the same
Observations; an inpatient stay with a glucose every day gets one Observation per result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapter.bhyt.config import BhytConfig
from adapter.bhyt.container import Record
from adapter.bhyt.meds import Encounter, RowOutcome
from adapter.bhyt.times import TimeError, fhir_time, parse_local
from adapter.hl7 import values
from adapter.hl7.codes import Identified, LabDictionary, Unit
from adapter.hl7.oru import CATEGORY_LAB, LOINC
from adapter.ids import patient_id, reference, stable_id
from adapter.meds.drugs import fold
from adapter.model import Resource
from adapter.study import Parameter, StudyConfig

_DECIMAL_COMMA = re.compile(r"\s*(<=|>=|=<|=>|<|>|≤|≥)?\s*([+-]?\d+),(\d+)\s*")


@dataclass(slots=True)
class LabRow:
    """The fields of one XML4 row the mapping needs (no reader id, no free-text description)."""

    index: int
    stt: str
    ma_dich_vu: str
    ma_chi_so: str
    ten_chi_so: str
    gia_tri: str
    don_vi_do: str
    ngay_kq: str

    @classmethod
    def from_record(cls, record: Record) -> LabRow:
        get = record.get
        return cls(
            record.index,
            get("STT"),
            get("MA_DICH_VU"),
            get("MA_CHI_SO"),
            get("TEN_CHI_SO"),
            get("GIA_TRI"),
            get("DON_VI_DO"),
            get("NGAY_KQ"),
        )


@dataclass
class _Found:
    row: LabRow
    parameter: Parameter
    unit: Unit | None
    when: Any
    notes: list[str]


def identify(row: LabRow, cfg: BhytConfig, labs: LabDictionary) -> tuple[Parameter | None, Unit | None, str]:
    """(study parameter, unit, note or reason) for one row; the parameter is None when it is not one."""
    unit = labs.unit(row.don_vi_do)
    params = {p.id: p for p in labs.study.parameters}
    entry = labs.codes.bhyt.get(row.ma_dich_vu.strip())
    if entry is not None:
        if not row.don_vi_do.strip() and entry.unit:
            return params[entry.parameter], labs.unit(entry.unit), "DON_VI_DO empty: unit from lab-codes.yaml"
        return params[entry.parameter], unit, ""
    name = fold(row.ten_chi_so or row.ma_chi_so)
    for rule in cfg.labs:
        if rule.service and rule.service != row.ma_dich_vu.strip():
            continue
        if rule.pattern is not None and not rule.pattern.search(name):
            continue
        if rule.units and (unit is None or unit.ucum not in rule.units):
            continue
        param = params.get(rule.parameter)
        if param is not None:
            return param, unit, ""
    return None, unit, "not a study parameter"


def map_lab_rows(
    rows: list[LabRow], enc: Encounter, study: StudyConfig, cfg: BhytConfig, labs: LabDictionary
) -> tuple[list[Resource], dict[int, RowOutcome]]:
    """Observations for the XML4 rows of one encounter, and the outcome of every row (by row index)."""
    outcomes: dict[int, RowOutcome] = {}
    found: dict[str, list[_Found]] = {}
    for row in rows:
        outcome = RowOutcome()
        outcomes[row.index] = outcome
        param, unit, why = identify(row, cfg, labs)
        if param is None:
            outcome.status, outcome.reason = "ignored", why
            continue
        notes = [why] if why else []
        if not row.gia_tri.strip():
            outcome.status, outcome.reason = "ignored", "GIA_TRI empty: result not yet available"
            continue
        if not row.ngay_kq.strip():
            outcome.status, outcome.error = "ignored", "NGAY_KQ: empty"
            continue
        try:
            when = parse_local(row.ngay_kq, study.tz)
        except TimeError as exc:
            outcome.status, outcome.error = "ignored", f"NGAY_KQ: {exc}"
            continue
        found.setdefault(param.id, []).append(_Found(row, param, unit, when, notes))
    resources: list[Resource] = []
    for param_id, items in sorted(found.items()):
        items.sort(
            key=lambda f: (_sort_time(f.when), int(f.row.stt) if f.row.stt.isdigit() else 0, f.row.index)
        )
        for ordinal, item in enumerate(items, 1):
            outcome = outcomes[item.row.index]
            resource = _observation(item, ordinal, param_id, enc, study, cfg, labs)
            if resource is None:
                outcome.status, outcome.reason = "ignored", "; ".join(item.notes)
                continue
            outcome.resources.append(f"Observation/{resource['id']}")
            outcome.reason = "; ".join(item.notes) or None
            resources.append(resource)
    return resources, outcomes


def _sort_time(when: Any) -> str:
    return fhir_time(when)[:19]


def _observation(
    item: _Found,
    ordinal: int,
    param_id: str,
    enc: Encounter,
    study: StudyConfig,
    cfg: BhytConfig,
    labs: LabDictionary,
) -> Resource | None:
    row, param, unit = item.row, item.parameter, item.unit
    if unit is None and row.don_vi_do.strip():
        item.notes.append("unit not in units.yaml")
    loinc, loinc_note = labs.choose_loinc(_identified(param), unit)
    if loinc is None:
        item.notes.append(loinc_note or f"no LOINC of {param.id} fits the unit")
        return None
    code_codings: list[dict[str, str]] = [{"system": LOINC, "code": loinc.code, "display": loinc.display}]
    if row.ma_dich_vu.strip():
        code_codings.append({"system": cfg.systems.service, "code": row.ma_dich_vu.strip()})
    if row.ma_chi_so.strip():
        code_codings.append({"system": cfg.systems.indicator, "code": row.ma_chi_so.strip()})
    element, value = _value(row.gia_tri, row.don_vi_do.strip(), unit)
    if element == "valueString":
        item.notes.append("GIA_TRI is not a number: sent as text")
    obs: Resource = {
        "resourceType": "Observation",
        "id": stable_id("obs", "bhyt", enc.facility, enc.ma_lk, param_id, ordinal),
    }
    if enc.last_updated:
        obs["meta"] = {"lastUpdated": enc.last_updated}
    obs.update(
        {
            "status": "final",
            "category": [CATEGORY_LAB],
            "code": {"coding": code_codings, "text": row.ten_chi_so.strip() or param.name},
            "subject": reference("Patient", patient_id(study.study.key, enc.subject_id)),
            "effectiveDateTime": fhir_time(item.when),
        }
    )
    if isinstance(item.when, datetime):
        obs["issued"] = fhir_time(item.when)
    obs[element] = value
    if param.fasting:
        obs["note"] = [{"text": "Fasting state is not recorded in BHYT XML4 (NGAY_KQ is the result time)."}]
    return obs


def _identified(param: Parameter) -> Identified:
    return Identified(parameter=param, local_code=None, lab_loinc=None, default_unit=None)


def _value(text: str, unit_text: str, unit: Unit | None) -> tuple[str, Any]:
    """valueQuantity from a number (comparator, decimal comma), else valueString with the lab's text."""
    raw = text.strip()
    candidate = raw
    comma = _DECIMAL_COMMA.fullmatch(raw)
    if comma:
        candidate = f"{comma.group(1) or ''}{comma.group(2)}.{comma.group(3)}"
    read = values.read_number(candidate)
    if read is None:
        return "valueString", raw
    comparator, number = read
    return "valueQuantity", values.quantity(number, unit_text, unit, comparator, original=raw)
