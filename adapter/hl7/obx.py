"""Reading one OBX: its code triplets (OBX-3), its unit (OBX-6) and its value (OBX-2/OBX-5).

Value rules are in values.py; this module picks the rule by OBX-2 and says, in `notes`, whenever the
result was read otherwise than the lab declared (an ST holding a number, an NM holding text...).
Notes never quote values (they go to messages.ndjson).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from adapter.hl7 import values as v
from adapter.hl7.codes import Identified, LabDictionary, Unit
from adapter.hl7.dtm import to_datetime
from adapter.hl7.message import Segment

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
QUANTITATIVE = frozenset(("valueQuantity", "valueRange", "valueRatio"))
_TEXT_TYPES = frozenset(("ST", "TX", "FT", ""))
_CODED_TYPES = frozenset(("CWE", "CE", "CNE", "CF", "IS", "ID"))
_TIME_TYPES = frozenset(("DT", "DTM", "TS"))
_SNOMED_NAMES = frozenset(("SCT", "SNM", "SNOMEDCT"))

Triplet = tuple[str, str, str]


def token(text: str) -> str:
    """A code as FHIR allows it: no leading, trailing or repeated whitespace."""
    return " ".join(text.split())


def triplets(seg: Segment, number: int, repetition: int = 1) -> list[Triplet]:
    """The (code, text, coding system) triplets of a CWE/CE: components 1-3, 4-6 and 10-12."""
    comps = seg.components(number, repetition)
    comps += [""] * (12 - len(comps))
    return [
        (token(comps[0]), comps[1].strip(), comps[2].strip()),
        (token(comps[3]), comps[4].strip(), comps[5].strip()),
        (token(comps[9]), comps[10].strip(), comps[11].strip()),
    ]


def read_unit(
    obx: Segment, ident: Identified, dictionary: LabDictionary
) -> tuple[str, Unit | None, str | None]:
    """OBX-6 as (the lab's text, its UCUM unit if known, a note on how it was read).

    Every triplet text is tried (CWE.1, .2, .4, .5): a lab labelling `ug/dl` as UCUM still matches.
    """
    comps = obx.components(6)
    comps += [""] * (5 - len(comps))
    unit_text = comps[0].strip() or comps[1].strip()
    for candidate in (comps[0], comps[1], comps[3], comps[4]):
        unit = dictionary.unit(candidate)
        if unit is not None:
            return unit_text, unit, None
    if not unit_text:
        if ident.default_unit:
            unit = dictionary.unit(ident.default_unit)
            text = unit.ucum if unit else ident.default_unit
            return text, unit, "OBX-6 empty: unit from lab-codes.yaml"
        return "", None, "OBX-6 empty: no unit"
    return unit_text, None, f"unit {unit_text[:20]!r} not in units.yaml: kept as text"


def read_value(
    obx: Segment, unit_text: str, unit: Unit | None, dictionary: LabDictionary, tz: ZoneInfo, notes: list[str]
) -> tuple[str | None, Any]:
    """OBX-5 as (value[x] element name, value); (None, None) when empty, (None, reason) when unsupported."""
    vtype = obx.value(2).strip().upper()
    reps = obx.repetitions(5)
    texts = [obx.text(5, r) for r in range(1, len(reps) + 1)]
    if not any(t.strip() for t in texts):
        return None, None
    if len(texts) > 1 and vtype not in _TEXT_TYPES:
        notes.append(f"OBX-5 repeats ({len(texts)} values): sent as text")
        return "valueString", "\n".join(texts)
    text = texts[0]
    if vtype == "NM":
        q = v.quantity_from_text(text, unit_text, unit)
        if q is not None:
            return "valueQuantity", q
        notes.append("OBX-5 is not a number: sent as text")
        return "valueString", text.strip()
    if vtype == "SN":
        element, value = v.sn_value(obx.components(5), unit_text, unit)
        if element == "valueString":
            notes.append("SN value not a quantity, range or ratio: sent as text")
        return element, value
    if vtype in _TEXT_TYPES:
        if len(texts) == 1:
            q = v.quantity_from_text(text, unit_text, unit)
            if q is not None:
                if vtype:
                    notes.append(f"{vtype} value read as a number")
                return "valueQuantity", q
        return "valueString", "\n".join(texts)
    if vtype in _CODED_TYPES:
        return coded_value(obx, dictionary)
    if vtype in _TIME_TYPES:
        when = to_datetime(obx.value(5), tz)
        if when:
            return "valueDateTime", when
        notes.append(f"{vtype} value unreadable: sent as text")
        return "valueString", text.strip()
    if vtype == "TM":
        return _time_value(obx.value(5).strip(), text, notes)
    if vtype == "NR":
        return _range_value(obx, unit_text, unit, text)
    return None, f"OBX-2 value type {vtype[:6]!r} not supported: result not sent"


def _time_value(raw: str, text: str, notes: list[str]) -> tuple[str, str]:
    if raw.isdigit() and len(raw) in (4, 6) and int(raw[:2]) < 24 and int(raw[2:4]) < 60:
        seconds = raw[4:6] or "00"
        if int(seconds) < 60:
            return "valueTime", f"{raw[:2]}:{raw[2:4]}:{seconds}"
    notes.append("TM value unreadable: sent as text")
    return "valueString", text.strip()


def _range_value(obx: Segment, unit_text: str, unit: Unit | None, text: str) -> tuple[str, Any]:
    low, high = obx.value(5, 1).strip(), obx.value(5, 2).strip()
    rl = v.read_number(low) if low else None
    rh = v.read_number(high) if high else None
    if (rl or rh) and not (rl and rl[0]) and not (rh and rh[0]):
        rng: dict[str, Any] = {}
        if rl:
            rng["low"] = {"value": rl[1], **v.unit_part(unit_text, unit)}
        if rh:
            rng["high"] = {"value": rh[1], **v.unit_part(unit_text, unit)}
        return "valueRange", rng
    return "valueString", text.strip()


def coded_value(obx: Segment, dictionary: LabDictionary) -> tuple[str, Any]:
    """A coded OBX-5 -> CodeableConcept: LOINC, SNOMED CT and local codes; other systems as text."""
    codings = []
    text = obx.value(5, 9).strip()
    for code, label, system in triplets(obx, 5):
        if not code and not label:
            continue
        text = text or label or code
        if not code:
            continue
        if dictionary.is_loinc_system(system):
            codings.append({"system": LOINC, "code": code})
        elif system.upper() in _SNOMED_NAMES:
            codings.append({"system": SNOMED, "code": code})
        elif dictionary.is_local_system(system):
            codings.append({"system": dictionary.local_uri, "code": code})
    if not codings and not text:
        return "valueString", obx.text(5)
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if text:
        concept["text"] = text
    return "valueCodeableConcept", concept
