"""OBX values, units, reference ranges, interpretation and status, read the way labs really send them.

Rules (HL7 V2-to-FHIR IG where it speaks, design.md where it is silent):
- A number (NM, or ST/TX holding only a number) becomes a Quantity: `<0.1` and `>500` keep their
  comparator, `065.88` reads as 65.88. When the number as JSON differs from what the lab wrote
  (`065.88`, `5.60`), the lab's text rides along in the core `originalText` extension on the Quantity.
- SN: `<^5.0` -> Quantity with comparator; `^10^-^20` -> Range; `^1^:^128` or `/` -> Ratio;
  `^2^+` and `<>` -> string (IG).
- What cannot be read as a number becomes valueString with the original text: never an invalid
  resource, never a guessed value (`5,6` is not read as 5.6: the comma is ambiguous).
"""

from __future__ import annotations

import re
from typing import Any

from adapter.hl7.codes import LabDictionary, Unit

UCUM = "http://unitsofmeasure.org"
ORIGINAL_TEXT = "http://hl7.org/fhir/StructureDefinition/originalText"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(_NUM)
_WITH_COMPARATOR = re.compile(rf"(<=|>=|=<|=>|<|>|≤|≥|=)?\s*({_NUM})")
_COMPARATOR = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "=<": "<=", "=>": ">=", "≤": "<=", "≥": ">="}
_RANGE = re.compile(rf"\(?\s*({_NUM})\s*(?:-|–|—|_|to|\.\.\.?)\s*({_NUM})\s*\)?\s*(.*)")
_BOUND = re.compile(rf"(<=|>=|=<|=>|<|>|≤|≥)\s*({_NUM})\s*(.*)")

# HL7 table 0085 (OBX-11) -> Observation.status. IG for A C D F P W X; local policy for the rest
# (../shared/reference/hl7v2-anchors.md §6a): I -> registered, R/S -> preliminary, B (appended) ->
# amended, U/V (final without or after verification) -> final. N (not asked) and O (order detail
# only) carry no result and are not sent; anything else -> unknown.
OBX_STATUS = {
    "A": "amended",
    "B": "amended",
    "C": "corrected",
    "D": "entered-in-error",
    "F": "final",
    "I": "registered",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "V": "final",
    "W": "entered-in-error",
    "X": "cancelled",
}
OBX_NO_RESULT = {"N": "not asked", "O": "order detail only"}
# Statuses that stand without a value: pending, cancelled, or withdrawn results.
VALUELESS_STATUSES = {"registered", "cancelled", "entered-in-error"}

# HL7 table 0123 (OBR-25) -> DiagnosticReport.status (IG; A "some results available" -> partial).
OBR_STATUS = {
    "O": "registered",
    "I": "registered",
    "S": "registered",
    "P": "preliminary",
    "A": "partial",
    "R": "partial",
    "C": "corrected",
    "F": "final",
    "X": "cancelled",
}

# Version rank among equal source times (see dtm.version_stamp): later in the workflow wins.
STATUS_RANK = {
    "unknown": 5,
    "registered": 10,
    "partial": 15,
    "preliminary": 20,
    "final": 30,
    "amended": 40,
    "appended": 45,
    "corrected": 50,
    "cancelled": 60,
    "entered-in-error": 70,
}

# HL7 table 0078 -> v3 ObservationInterpretation: identity map (IG ConceptMap), displays where the
# reference gives them (../shared/reference/hl7v2-anchors.md §6b).
_INTERPRETATION_CODES = [
    "<",
    ">",
    "A",
    "AA",
    "B",
    "CAR",
    "D",
    "DET",
    "E",
    "EX",
    "EXP",
    "H",
    "HH",
    "HU",
    "I",
    "IE",
    "IND",
    "L",
    "LL",
    "LU",
    "MS",
    "N",
    "NCL",
    "ND",
    "NEG",
    "NR",
    "NS",
    "POS",
    "R",
    "RR",
    "S",
    "SDD",
    "SYN-R",
    "SYN-S",
    "U",
    "VS",
    "UNE",
    "W",
    "WR",
]
_INTERPRETATION_DISPLAY = {
    "H": "High",
    "HH": "Critical high",
    "L": "Low",
    "LL": "Critical low",
    "A": "Abnormal",
    "AA": "Critical abnormal",
    "N": "Normal",
}
INTERPRETATION = {code: _INTERPRETATION_DISPLAY.get(code) for code in _INTERPRETATION_CODES}


def json_number(text: str) -> int | float:
    """A decimal text as a JSON number: integers stay integers, `065.88` -> 65.88."""
    text = text.lstrip("+")
    if "." not in text:
        return int(text)
    return float(text)


def read_number(text: str) -> tuple[str | None, int | float] | None:
    """(comparator, number) from text like `5.6`, `<0.1`, `>= 500`; None when it is not just that."""
    m = _WITH_COMPARATOR.fullmatch(text.strip())
    if not m:
        return None
    return _COMPARATOR.get(m.group(1) or ""), json_number(m.group(2))


def _canonical(comparator: str | None, number: int | float) -> str:
    return f"{comparator or ''}{number!r}"  # repr is what the JSON encoder writes for int and float


def unit_part(unit_text: str, unit: Unit | None) -> dict[str, str]:
    """Quantity.unit/system/code: the lab's own text, and UCUM when the unit table knows it."""
    out: dict[str, str] = {}
    if unit_text or unit:
        out["unit"] = unit_text or (unit.ucum if unit else "")
    if unit is not None:
        out["system"] = UCUM
        out["code"] = unit.ucum
    return out


def quantity(
    number: int | float,
    unit_text: str,
    unit: Unit | None,
    comparator: str | None = None,
    original: str | None = None,
) -> dict[str, Any]:
    q: dict[str, Any] = {}
    if original is not None and original.strip() != _canonical(comparator, number):
        q["extension"] = [{"url": ORIGINAL_TEXT, "valueString": original.strip()}]
    q["value"] = number
    if comparator:
        q["comparator"] = comparator
    q.update(unit_part(unit_text, unit))
    return q


def quantity_from_text(text: str, unit_text: str, unit: Unit | None) -> dict[str, Any] | None:
    """A Quantity from a number with an optional comparator; None when the text is not one."""
    read = read_number(text)
    if read is None:
        return None
    comparator, number = read
    return quantity(number, unit_text, unit, comparator, original=text)


def sn_value(components: list[str], unit_text: str, unit: Unit | None) -> tuple[str, Any]:
    """SN (comparator ^ num1 ^ separator/suffix ^ num2) -> (value[x] element name, value)."""
    parts = [c.strip() for c in components[:4]] + [""] * (4 - min(len(components), 4))
    comp, num1, sep, num2 = parts
    joined = "".join(parts)
    n1 = _NUMBER.fullmatch(num1) is not None
    n2 = _NUMBER.fullmatch(num2) is not None
    comparator = _COMPARATOR.get(comp)
    comparator_ok = comp in ("", "=") or comparator is not None
    if sep in (":", "/") and n1 and n2 and comparator_ok:
        numerator: dict[str, Any] = {"value": json_number(num1)}
        if comparator:
            numerator["comparator"] = comparator
        numerator.update(unit_part(unit_text, unit))
        return "valueRatio", {"numerator": numerator, "denominator": {"value": json_number(num2)}}
    if sep == "-" and n1 and n2 and comp in ("", "="):
        low, high = json_number(num1), json_number(num2)
        return "valueRange", {
            "low": {"value": low, **unit_part(unit_text, unit)},
            "high": {"value": high, **unit_part(unit_text, unit)},
        }
    if not sep and not num2 and n1 and comparator_ok:
        original = f"{comp}{num1}"
        return "valueQuantity", quantity(json_number(num1), unit_text, unit, comparator, original)
    return "valueString", joined


def reference_range(
    text: str, unit_text: str, unit: Unit | None, dictionary: LabDictionary
) -> dict[str, Any] | None:
    """OBX-7 -> referenceRange: low/high when parseable (`3.9-6.1`, `70_105`, `<10`), text always."""
    text = text.strip()
    if not text:
        return None
    core = text.strip("^ ").strip()
    low = high = None
    trailing = ""
    m = _RANGE.fullmatch(core)
    if m:
        low, high, trailing = json_number(m.group(1)), json_number(m.group(2)), m.group(3)
        if low > high:
            low = high = None
    else:
        b = _BOUND.fullmatch(core)
        if b:
            op = _COMPARATOR[b.group(1)]
            bound, trailing = json_number(b.group(2)), b.group(3)
            if op.startswith("<"):
                high = bound
            else:
                low = bound
    trailing = trailing.strip()
    if trailing and trailing != unit_text.strip():
        stated = dictionary.unit(trailing)
        if stated is None or unit is None or stated.ucum != unit.ucum:
            low = high = None  # a range in another unit than the value: keep it as text only
    out: dict[str, Any] = {}
    if low is not None:
        out["low"] = {"value": low, **unit_part(unit_text, unit)}
    if high is not None:
        out["high"] = {"value": high, **unit_part(unit_text, unit)}
    out["text"] = text
    return out


def interpretation(codes: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """OBX-8 codes -> interpretation CodeableConcepts, and the codes table 0078 does not know."""
    out: list[dict[str, Any]] = []
    unknown: list[str] = []
    for code in codes:
        code = code.strip()
        if not code:
            continue
        if code not in INTERPRETATION:
            unknown.append(code[:10])
            continue
        coding = {"system": INTERPRETATION_SYSTEM, "code": code}
        display = INTERPRETATION[code]
        if display:
            coding["display"] = display
        out.append({"coding": [coding]})
    return out, unknown
